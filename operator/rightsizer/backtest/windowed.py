"""The ``percentile`` strategy's state over a trailing window of steps (KRR's
``--history_duration``), kept incrementally.

``PercentileUsage`` never forgets. Here every step's contribution is also kept apart —
its CPU histogram as sparse (cell, count) pairs, its memory peak, counts and first/last
sample times per container — in a ring of the last ``window_steps`` steps. When a step
falls out of the window its counts are subtracted from the running histogram (counts are
whole numbers, so the float sums stay exact) and the peak and first/last times are
recomputed from the steps still in the ring. Each step costs O(samples in the step),
never O(history).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from rightsizer.engine.buckets import FloatArray, IntArray
from rightsizer.engine.strategies.percentile import PercentileUsage
from rightsizer.engine.usage import UsageChunk


@dataclass(frozen=True)
class _StepPart:
    cells: IntArray
    """Flat ``container × bucket`` indices of the CPU histogram cells touched."""
    counts: FloatArray
    containers: IntArray
    peak_memory_bytes: FloatArray
    cpu_samples: IntArray
    memory_samples: IntArray
    oom_kills: IntArray
    first_s: FloatArray
    last_s: FloatArray


class WindowedPercentileUsage(PercentileUsage):
    """``PercentileUsage`` restricted to the last ``window_steps`` closed steps plus the
    step being filled. Call ``close_step()`` at every step boundary."""

    def __init__(self, window_steps: int) -> None:
        if window_steps < 1:
            raise ValueError("the window must hold at least one step")
        super().__init__()
        self.window_steps = window_steps
        self._ring: deque[_StepPart] = deque()
        self._open: list[UsageChunk] = []

    def add(self, chunk: UsageChunk) -> None:
        super().add(chunk)
        if len(chunk):
            self._open.append(chunk)

    def close_step(self) -> None:
        """End the current step; forget the step that falls out of the window."""
        self._ring.append(self._summarise(self._open))
        self._open = []
        if len(self._ring) > self.window_steps:
            self._forget(self._ring.popleft())

    def _summarise(self, chunks: list[UsageChunk]) -> _StepPart:
        nb = self.cpu.scheme.num_buckets
        if not chunks:
            empty_i = np.zeros(0, dtype=np.int64)
            empty_f = np.zeros(0)
            return _StepPart(empty_i, empty_f, empty_i, empty_f, empty_i, empty_i, empty_i,
                             empty_f, empty_f)  # fmt: skip
        cid = np.concatenate([c.container_id for c in chunks])
        ts = np.concatenate([c.timestamp_s for c in chunks])
        cpu = np.concatenate([c.cpu_cores for c in chunks])
        mem = np.concatenate([c.memory_bytes for c in chunks])
        oom = np.concatenate([c.oom for c in chunks])
        cpu_ok = np.isfinite(cpu) & (cpu >= 0)
        cells = cid[cpu_ok] * nb + self.cpu.scheme.find_buckets(cpu[cpu_ok])
        cells_u, counts = np.unique(cells, return_counts=True)
        containers = np.unique(cid)
        local = np.searchsorted(containers, cid)
        k = containers.shape[0]
        mem_ok = np.isfinite(mem) & (mem >= 0) & ~oom
        peak = np.zeros(k)
        np.maximum.at(peak, local[mem_ok], mem[mem_ok])
        first = np.full(k, np.nan)
        last = np.full(k, np.nan)
        np.fmin.at(first, local[cpu_ok], ts[cpu_ok])
        np.fmax.at(last, local[cpu_ok], ts[cpu_ok])
        return _StepPart(
            cells=cells_u,
            counts=counts.astype(np.float64),
            containers=containers,
            peak_memory_bytes=peak,
            cpu_samples=np.bincount(local[cpu_ok], minlength=k).astype(np.int64),
            memory_samples=np.bincount(local[mem_ok], minlength=k).astype(np.int64),
            oom_kills=np.bincount(local[oom], minlength=k).astype(np.int64),
            first_s=first,
            last_s=last,
        )

    def _forget(self, part: _StepPart) -> None:
        nb = self.cpu.scheme.num_buckets
        self.cpu.take_away(part.cells, part.counts)
        np.subtract.at(self.cpu.total, part.cells // nb, part.counts)
        self.cpu_samples[part.containers] -= part.cpu_samples
        self.memory_samples[part.containers] -= part.memory_samples
        self.oom_kills[part.containers] -= part.oom_kills
        peak = np.zeros_like(self.peak_memory_bytes)
        first = np.full_like(self.first_s, np.nan)
        last = np.full_like(self.last_s, np.nan)
        for kept in [*self._ring, self._summarise(self._open)]:
            np.maximum.at(peak, kept.containers, kept.peak_memory_bytes)
            np.fmin.at(first, kept.containers, kept.first_s)
            np.fmax.at(last, kept.containers, kept.last_s)
        self.peak_memory_bytes = peak
        self.first_s = first
        self.last_s = last
