"""Strategy ``percentile`` (KRR-like): CPU request = p95 of samples, memory = max × 1.15.

No decay and no confidence maths: every sample in the window counts the same. The CPU
percentile is read from a fine non-decaying histogram (buckets 1 % apart, answer = the
bucket's upper edge, so at most 1 % above the exact sample percentile) — which keeps
memory bounded however long the history is. Memory uses the exact maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from rightsizer.engine.buckets import FloatArray, IntArray, exponential_table_scheme
from rightsizer.engine.estimators import Estimates, confidence
from rightsizer.engine.histogram import DecayingHistograms
from rightsizer.engine.policy import LimitMode, LimitPolicy, SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation
from rightsizer.engine.strategies.base import (
    Arrays,
    RawRecommendations,
    SizingContext,
    SnapshotKindError,
    UsageState,
    finalize,
)
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.quantity import DAY_S

#: Fine CPU buckets: 0.1 millicore first bucket, 1 % growth, up to 1000 cores.
FINE_CPU_SCHEME = exponential_table_scheme(1000.0, 0.0001, 1.01)
MIB = 2**20


@dataclass(frozen=True)
class PercentileSettings:
    cpu_percentile: float = 0.95
    """CPU request = this percentile of all CPU samples (fraction)."""
    memory_buffer_ratio: float = 1.15
    """Memory request = peak working set × this."""
    min_cpu_millicores: int = 10
    """Floor for the CPU request."""
    min_memory_bytes: int = 100 * MIB
    """Floor for the memory request."""

    def __post_init__(self) -> None:
        if not 0 <= self.cpu_percentile <= 1:
            raise ValueError("cpu_percentile must be a fraction within [0, 1]")
        if self.memory_buffer_ratio < 1:
            raise ValueError("memory_buffer_ratio must be ≥ 1")
        if self.min_cpu_millicores < 0 or self.min_memory_bytes < 0:
            raise ValueError("floors must not be negative")


def _grow(array: FloatArray, size: int, fill: float) -> FloatArray:
    if array.shape[0] >= size:
        return array
    grown: FloatArray = np.concatenate([array, np.full(size - array.shape[0], fill)])
    return grown


class PercentileUsage:
    """All-time CPU distribution and memory maximum per container."""

    KIND: ClassVar[str] = "PercentileUsage"
    """The name of this state's checkpoint format (``history/checkpoints.py``)."""

    def __init__(self) -> None:
        self.cpu = DecayingHistograms(FINE_CPU_SCHEME, half_life_s=None, epsilon=0.0)
        self.peak_memory_bytes: FloatArray = np.zeros(0)
        self.cpu_samples: IntArray = np.zeros(0, dtype=np.int64)
        self.memory_samples: IntArray = np.zeros(0, dtype=np.int64)
        self.oom_kills: IntArray = np.zeros(0, dtype=np.int64)
        self.first_s: FloatArray = np.zeros(0)
        self.last_s: FloatArray = np.zeros(0)

    _ROW_ARRAYS = ("peak_memory_bytes", "cpu_samples", "memory_samples", "oom_kills",
                   "first_s", "last_s")  # fmt: skip

    def snapshot(self) -> dict[str, npt.NDArray[np.generic]]:
        """The whole state as arrays (for checkpoints)."""
        arrays = self.cpu.to_arrays("cpu_")
        arrays.update({name: getattr(self, name) for name in self._ROW_ARRAYS})
        return arrays

    @classmethod
    def restore(cls, arrays: Mapping[str, npt.NDArray[np.generic]]) -> PercentileUsage:
        state = cls()
        state.cpu.load_arrays("cpu_", arrays)
        for name in cls._ROW_ARRAYS:
            setattr(state, name, np.asarray(arrays[name]))
        return state

    def grow(self, count: int) -> None:
        if count <= self.cpu.rows:
            return
        self.cpu.grow(count)
        self.peak_memory_bytes = _grow(self.peak_memory_bytes, count, 0.0)
        self.cpu_samples = _grow(self.cpu_samples.astype(np.float64), count, 0).astype(np.int64)
        self.memory_samples = _grow(self.memory_samples.astype(np.float64), count, 0).astype(
            np.int64
        )
        self.oom_kills = _grow(self.oom_kills.astype(np.float64), count, 0).astype(np.int64)
        self.first_s = _grow(self.first_s, count, np.nan)
        self.last_s = _grow(self.last_s, count, np.nan)

    def keep(self, containers: IntArray, instances: IntArray, instance_container: IntArray) -> None:
        """Keep only ``containers`` (old ids), renumbered by position (no per-pod state)."""
        if containers.shape[0]:
            self.grow(int(containers.max()) + 1)
        self.cpu.keep_rows(containers)
        for name in self._ROW_ARRAYS:
            setattr(self, name, getattr(self, name)[containers])

    def add(self, chunk: UsageChunk) -> None:
        if len(chunk) == 0:
            return
        self.grow(int(chunk.container_id.max()) + 1)
        cid, ts = chunk.container_id, chunk.timestamp_s
        cpu_ok = np.isfinite(chunk.cpu_cores) & (chunk.cpu_cores >= 0)
        self.cpu.add(cid[cpu_ok], chunk.cpu_cores[cpu_ok], ts[cpu_ok], chunk.weights(cpu_ok))
        np.add.at(self.cpu_samples, cid[cpu_ok], chunk.counts(cpu_ok))
        np.fmin.at(self.first_s, cid[cpu_ok], ts[cpu_ok])
        np.fmax.at(self.last_s, cid[cpu_ok], ts[cpu_ok])
        mem_ok = np.isfinite(chunk.memory_bytes) & (chunk.memory_bytes >= 0) & ~chunk.oom
        np.maximum.at(self.peak_memory_bytes, cid[mem_ok], chunk.memory_bytes[mem_ok])
        np.add.at(self.memory_samples, cid[mem_ok], chunk.counts(mem_ok))
        np.add.at(self.oom_kills, cid[chunk.oom], 1)


@dataclass(frozen=True)
class PercentileStrategy:
    settings: PercentileSettings = field(default_factory=PercentileSettings)
    name: str = "percentile"

    @staticmethod
    def default_policy() -> SizingPolicy:
        """No CPU limit; memory limit = request; memory rounded up to whole MiB."""
        return SizingPolicy(
            cpu_limit=LimitPolicy(LimitMode.UNSET),
            memory_limit=LimitPolicy(LimitMode.EQUAL_TO_REQUEST),
            round_memory_bytes=MIB,
        )

    def new_state(self) -> PercentileUsage:
        return PercentileUsage()

    def restore_state(self, kind: str, arrays: Arrays) -> PercentileUsage:
        if kind != PercentileUsage.KIND:
            raise SnapshotKindError(f"a {kind} snapshot is not a {PercentileUsage.KIND}")
        return PercentileUsage.restore(arrays)

    def raw(self, state: PercentileUsage, registry: ContainerRegistry) -> RawRecommendations:
        s = self.settings
        state.grow(len(registry.containers))
        cpu_m = np.ceil(state.cpu.percentile(s.cpu_percentile) * 1000.0 - 1e-9)
        cpu = np.where(state.cpu_samples > 0, np.maximum(cpu_m, s.min_cpu_millicores), 0)
        mem_free = np.ceil(state.peak_memory_bytes * s.memory_buffer_ratio - 1e-6)
        mem = np.where(state.memory_samples > 0, np.maximum(mem_free, s.min_memory_bytes), 0)
        cpu_i = cpu.astype(np.int64)
        mem_i = mem.astype(np.int64)
        span_s = np.nan_to_num(state.last_s - state.first_s, nan=0.0)
        conf = confidence(span_s, state.cpu_samples, DAY_S)
        return RawRecommendations(
            cpu=Estimates(cpu_i, cpu_i, cpu_i),
            memory=Estimates(mem_i, mem_i, mem_i),
            cpu_samples=state.cpu_samples,
            memory_samples=state.memory_samples,
            confidence=conf,
            peak_memory_bytes=state.peak_memory_bytes,
            oom_kills=state.oom_kills,
            history_span_s=span_s,
            unfloored_target=(
                np.where(state.cpu_samples > 0, cpu_m, 0).astype(np.int64),
                np.where(state.memory_samples > 0, mem_free, 0).astype(np.int64),
            ),
        )

    def recommend(
        self, state: UsageState, registry: ContainerRegistry, context: SizingContext
    ) -> list[ContainerRecommendation]:
        assert isinstance(state, PercentileUsage)
        return finalize(self.raw(state, registry), registry, context)
