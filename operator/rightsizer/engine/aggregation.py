"""Per-container usage state as upstream VPA keeps it (``vpa-algorithm.md`` §1.2–1.4, §1.8).

``UsageAggregates`` holds, for every container (namespace, workload, container):

* a decaying CPU histogram fed with every CPU sample (base weight 0.1),
* a decaying memory histogram fed with one *peak* per pod per aggregation window (24 h),
* the CPU sample count and first/last CPU sample times (→ confidence),

and for every instance (pod × container) the open memory window: its end, its usage and
OOM peaks. Closed windows live in the histogram; the open window's peak is added on top
when estimating (``memory_histogram()``) and left out of checkpoints — exactly the state
upstream VPA's histogram would hold, without the subtract/add churn per sample.

Every sample is first turned into whole millicores / whole bytes (``upstream_amounts``),
as upstream turns it into an integer ``ResourceAmount`` before any histogram sees it.

OOM kills and zero-byte peaks need upstream's sequential rules; instances that have
them in a chunk take an exact per-sample path, all others a vectorised one. Both give
the same state (a property test checks this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from rightsizer.engine.buckets import CPU_SCHEME, MEMORY_SCHEME, FloatArray, IntArray
from rightsizer.engine.estimators import confidence
from rightsizer.engine.histogram import DecayingHistograms, HistogramCheckpoint
from rightsizer.engine.usage import UsageChunk
from rightsizer.quantity import DAY_S

#: VPA's ``minSampleWeight``: every CPU sample weighs 0.1 before decay.
CPU_SAMPLE_WEIGHT = 0.1
#: VPA's ``epsilon = 0.001 × minSampleWeight``: lighter buckets count as empty.
HISTOGRAM_EPSILON = 0.001 * CPU_SAMPLE_WEIGHT
#: Memory peaks are added with weight 1.
MEMORY_PEAK_WEIGHT = 1.0


@dataclass(frozen=True)
class AggregationSettings:
    """How samples are aggregated; defaults are upstream VPA's flags."""

    cpu_half_life_s: float = DAY_S
    """Half-life of CPU sample weights (``--cpu-histogram-decay-half-life``)."""
    memory_half_life_s: float = DAY_S
    """Half-life of memory peak weights (``--memory-histogram-decay-half-life``)."""
    memory_aggregation_interval_s: float = DAY_S
    """One memory peak per pod per this window (``--memory-aggregation-interval``)."""
    memory_aggregation_interval_count: int = 8
    """Windows kept before an idle aggregate expires (``--memory-aggregation-interval-count``)."""
    cpu_sample_weight: float = CPU_SAMPLE_WEIGHT
    """Base weight of each CPU sample."""
    oom_bump_up_ratio: float = 1.2
    """Memory needed after an OOM: at least this × memory used (``--oom-bump-up-ratio``)."""
    oom_min_bump_up_bytes: float = 104_857_600.0
    """…and at least memory used + this (``--oom-min-bump-up-bytes``, 100 MiB)."""

    def __post_init__(self) -> None:
        if min(self.cpu_half_life_s, self.memory_half_life_s) <= 0:
            raise ValueError("half-lives must be positive")
        if self.memory_aggregation_interval_s <= 0 or self.memory_aggregation_interval_count < 1:
            raise ValueError("memory aggregation interval and count must be positive")
        if self.cpu_sample_weight <= 0:
            raise ValueError("cpu_sample_weight must be positive")
        if self.oom_bump_up_ratio < 1 or self.oom_min_bump_up_bytes < 0:
            raise ValueError("oom_bump_up_ratio must be ≥ 1 and oom_min_bump_up_bytes ≥ 0")


def oom_memory_needed(used_bytes: float, settings: AggregationSettings) -> float:
    """§1.4: ``max(used + min bump, trunc(used × ratio))`` in whole bytes."""
    scaled = math.floor(used_bytes * settings.oom_bump_up_ratio)
    return float(max(math.floor(used_bytes + settings.oom_min_bump_up_bytes), scaled))


def upstream_amounts(chunk: UsageChunk) -> UsageChunk:
    """The chunk with CPU in whole millicores and memory in whole bytes, as upstream's
    ``ResourceAmount`` (int64) holds every sample before it enters a histogram.

    Raw float cores (samples files, Prometheus) are truncated, ``int64(cores × 1000.0)`` —
    upstream's ``CPUAmountFromCores`` on its Prometheus history path; a constant 0.2585
    cores is 258m there, bucket 16, not bucket 17 where 0.2585 itself falls. Memory bytes
    are truncated likewise (``MemoryAmountFromBytes``). Metrics-server values come already
    rounded up by the source (``MilliValue()``/``Value()``, ``cpu_whole_millicores``), and
    are only brought back to their exact millicore here: ``m / 1000 × 1000`` is not always
    ``m`` in floating point.
    """
    scaled = chunk.cpu_cores * 1000.0
    millicores = np.rint(scaled) if chunk.cpu_whole_millicores else np.trunc(scaled)
    return replace(chunk, cpu_cores=millicores / 1000.0, memory_bytes=np.trunc(chunk.memory_bytes))


_Array = TypeVar("_Array", FloatArray, IntArray)


def _grown(array: _Array, size: int, fill: float) -> _Array:
    if array.shape[0] >= size:
        return array
    extra = np.full(size - array.shape[0], fill, dtype=array.dtype)
    grown: _Array = np.concatenate([array, extra])
    return grown


def _picked(array: FloatArray, ids: IntArray, known: int, fill: float) -> FloatArray:
    """``array[ids]``, with ``fill`` for ids the array has not grown to yet."""
    result: FloatArray = np.full(ids.shape[0], fill)
    inside = ids < known
    result[inside] = array[ids[inside]]
    return result


@dataclass(frozen=True)
class OpenWindow:
    """One pod's open memory window as a checkpoint keeps it."""

    end_s: float
    usage_peak_bytes: float
    oom_peak_bytes: float
    last_memory_s: float
    last_cpu_s: float


class UsageAggregates:
    """Histograms and counters per container, open memory windows per instance."""

    def __init__(self, settings: AggregationSettings | None = None) -> None:
        self.settings = settings or AggregationSettings()
        s = self.settings
        self.cpu = DecayingHistograms(
            CPU_SCHEME, half_life_s=s.cpu_half_life_s, epsilon=HISTOGRAM_EPSILON
        )
        self.memory = DecayingHistograms(
            MEMORY_SCHEME, half_life_s=s.memory_half_life_s, epsilon=HISTOGRAM_EPSILON
        )
        # per container
        self.cpu_sample_count: IntArray = np.zeros(0, dtype=np.int64)
        self.first_cpu_sample_s: FloatArray = np.zeros(0)
        self.last_cpu_sample_s: FloatArray = np.zeros(0)
        self.memory_sample_count: IntArray = np.zeros(0, dtype=np.int64)
        self.peak_memory_bytes: FloatArray = np.zeros(0)
        self.oom_count: IntArray = np.zeros(0, dtype=np.int64)
        # per instance
        self.instance_container: IntArray = np.zeros(0, dtype=np.int64)
        self.last_cpu_s: FloatArray = np.zeros(0)
        self.last_memory_s: FloatArray = np.zeros(0)
        self.window_end_s: FloatArray = np.zeros(0)
        self.usage_peak_bytes: FloatArray = np.zeros(0)
        self.oom_peak_bytes: FloatArray = np.zeros(0)

    # -- sizing -------------------------------------------------------------------------
    @property
    def containers(self) -> int:
        return self.cpu.rows

    def grow_containers(self, count: int) -> None:
        """Make room for ``count`` containers (new ones are empty)."""
        if count <= self.containers:
            return
        self.cpu.grow(count)
        self.memory.grow(count)
        self.cpu_sample_count = _grown(self.cpu_sample_count, count, 0)
        self.first_cpu_sample_s = _grown(self.first_cpu_sample_s, count, np.nan)
        self.last_cpu_sample_s = _grown(self.last_cpu_sample_s, count, np.nan)
        self.memory_sample_count = _grown(self.memory_sample_count, count, 0)
        self.peak_memory_bytes = _grown(self.peak_memory_bytes, count, 0.0)
        self.oom_count = _grown(self.oom_count, count, 0)

    def _ensure(self, chunk: UsageChunk) -> None:
        if len(chunk) == 0:
            return
        self.grow_containers(int(chunk.container_id.max()) + 1)
        n_i = int(chunk.instance_id.max()) + 1
        old = self.instance_container.shape[0]
        if n_i > old:
            self.instance_container = _grown(self.instance_container, n_i, -1)
            self.last_cpu_s = _grown(self.last_cpu_s, n_i, -np.inf)
            self.last_memory_s = _grown(self.last_memory_s, n_i, -np.inf)
            self.window_end_s = _grown(self.window_end_s, n_i, np.nan)
            self.usage_peak_bytes = _grown(self.usage_peak_bytes, n_i, 0.0)
            self.oom_peak_bytes = _grown(self.oom_peak_bytes, n_i, 0.0)
        unknown = self.instance_container[chunk.instance_id] < 0
        if unknown.any():
            self.instance_container[chunk.instance_id[unknown]] = chunk.container_id[unknown]

    def restore_open_window(self, instance: int, container: int, window: OpenWindow) -> None:
        """Put back one pod's open memory window (from a checkpoint)."""
        self._ensure(
            UsageChunk(
                np.asarray([container]), np.asarray([instance]), np.zeros(1),
                np.full(1, np.nan), np.full(1, np.nan), np.zeros(1, dtype=bool),
            )
        )  # fmt: skip
        self.window_end_s[instance] = window.end_s
        self.usage_peak_bytes[instance] = window.usage_peak_bytes
        self.oom_peak_bytes[instance] = window.oom_peak_bytes
        self.last_memory_s[instance] = window.last_memory_s
        self.last_cpu_s[instance] = window.last_cpu_s

    # -- adding -------------------------------------------------------------------------
    def add(self, chunk: UsageChunk) -> None:
        """Add a chunk of samples. Chunks must come in time order; within a chunk rows
        may be in any order. Values are quantised as upstream's (``upstream_amounts``);
        negative, NaN and out-of-order samples are dropped, as upstream VPA drops them."""
        chunk = upstream_amounts(chunk.time_ordered())
        self._ensure(chunk)
        self._add_cpu(chunk)
        self._add_memory(chunk)

    def _add_cpu(self, chunk: UsageChunk) -> None:
        inst = chunk.instance_id
        ts = chunk.timestamp_s
        cpu = chunk.cpu_cores
        keep = np.isfinite(cpu) & (cpu >= 0) & (ts > self.last_cpu_s[inst])
        weight = chunk.weights(keep)
        count = chunk.counts(keep)
        if not keep.all():
            inst, ts, cpu = inst[keep], ts[keep], cpu[keep]
        if ts.shape[0] == 0:
            return
        cid = self.instance_container[inst]
        self.cpu.add(cid, cpu, ts, self.settings.cpu_sample_weight * weight)
        np.add.at(self.cpu_sample_count, cid, count)
        np.fmin.at(self.first_cpu_sample_s, cid, ts)
        np.fmax.at(self.last_cpu_sample_s, cid, ts)
        np.maximum.at(self.last_cpu_s, inst, ts)

    def _add_memory(self, chunk: UsageChunk) -> None:
        is_mem = np.isfinite(chunk.memory_bytes) & (chunk.memory_bytes >= 0) & ~chunk.oom
        touched_oom = np.unique(chunk.instance_id[chunk.oom])
        zero_peak = np.unique(chunk.instance_id[is_mem & (chunk.memory_bytes == 0)])
        carried_zero = np.flatnonzero(
            np.isfinite(self.window_end_s)
            & (np.maximum(self.usage_peak_bytes, self.oom_peak_bytes) == 0)
        )
        exact = np.union1d(np.union1d(touched_oom, zero_peak), carried_zero)
        on_exact = np.isin(chunk.instance_id, exact) if exact.shape[0] else None
        fast = is_mem if on_exact is None else is_mem & ~on_exact
        self._add_memory_vectorised(
            chunk.instance_id[fast],
            chunk.timestamp_s[fast],
            chunk.memory_bytes[fast],
            chunk.counts(fast),
        )
        if on_exact is not None and on_exact.any():
            self._add_memory_exact(chunk.take(on_exact))

    def _add_memory_vectorised(
        self, inst: IntArray, ts: FloatArray, mem: FloatArray, count: IntArray
    ) -> None:
        """Window peaks for instances without OOMs or zero peaks in this chunk.

        Within a window, a sample replaces the peak only when it exceeds both the usage
        and the OOM peak; so a continuing window's usage peak becomes the chunk's maximum
        if that beats the old combined peak, and stays otherwise.
        """
        keep = ts >= self.last_memory_s[inst]
        if not keep.all():
            inst, ts, mem, count = inst[keep], ts[keep], mem[keep], count[keep]
        if inst.shape[0] == 0:
            return
        interval = self.settings.memory_aggregation_interval_s
        n_inst = self.instance_container.shape[0]
        containers = self.instance_container
        first_ts = np.full(n_inst, np.inf)
        np.minimum.at(first_ts, inst, ts)
        np.maximum.at(self.last_memory_s, inst, ts)
        np.add.at(self.memory_sample_count, containers[inst], count)
        np.maximum.at(self.peak_memory_bytes, containers[inst], mem)

        present = np.flatnonzero(np.isfinite(first_ts))
        had_window = np.isfinite(self.window_end_s[present])
        anchor = np.where(had_window, self.window_end_s[present], first_ts[present] + interval)
        local = np.full(n_inst, -1, dtype=np.int64)
        local[present] = np.arange(present.shape[0])
        li = local[inst]
        a = anchor[li]
        k = np.where(ts < a, 0, np.floor((ts - a) / interval) + 1).astype(np.int64)
        n_k = int(k.max()) + 1
        flat_peaks = np.full(present.shape[0] * n_k, -1.0)
        np.maximum.at(flat_peaks, li * n_k + k, mem)
        peaks = flat_peaks.reshape(present.shape[0], n_k)

        old_usage = self.usage_peak_bytes[present]
        old_oom = self.oom_peak_bytes[present]
        old_combined = np.where(had_window, np.maximum(old_usage, old_oom), -1.0)
        new_in_first = peaks[:, 0]
        usage_first = np.where(new_in_first > old_combined, new_in_first, old_usage)
        combined_first = np.maximum(new_in_first, old_combined)
        peaks[:, 0] = combined_first

        windows = peaks >= 0
        last_k = n_k - 1 - np.argmax(windows[:, ::-1], axis=1)
        closed = windows & (np.arange(n_k)[None, :] < last_k[:, None])
        rows, cols = np.nonzero(closed)
        if rows.shape[0]:
            ends = anchor[rows] + cols * interval
            self.memory.add(containers[present[rows]], peaks[rows, cols], ends, MEMORY_PEAK_WEIGHT)
        stays = last_k == 0  # the carried (or first) window is still the open one
        self.window_end_s[present] = anchor + last_k * interval
        open_peak = peaks[np.arange(present.shape[0]), last_k]
        self.usage_peak_bytes[present] = np.where(stays, usage_first, open_peak)
        self.oom_peak_bytes[present] = np.where(stays & had_window, old_oom, 0.0)

    def _add_memory_exact(self, chunk: UsageChunk) -> None:
        """Upstream's sequential rules, sample by sample (OOMs, zero peaks)."""
        # Usage samples before OOMs at the same time, as the recommender loop orders them.
        order = np.lexsort((chunk.oom, chunk.timestamp_s, chunk.instance_id))
        inst_a = chunk.instance_id[order]
        ts_a = chunk.timestamp_s[order]
        mem_a = chunk.memory_bytes[order]
        oom_a = chunk.oom[order]
        count_a = chunk.counts(np.ones(len(chunk), dtype=bool))[order]
        for inst, ts, mem, oom, count in zip(
            inst_a.tolist(),
            ts_a.tolist(),
            mem_a.tolist(),
            oom_a.tolist(),
            count_a.tolist(),
            strict=True,
        ):
            if oom:
                self.record_oom(inst, ts, 0.0 if math.isnan(mem) else mem)
            elif math.isfinite(mem) and mem >= 0:
                cid = int(self.instance_container[inst])
                if self._memory_sample(inst, ts, mem, is_oom=False):
                    self.memory_sample_count[cid] += count
                    self.peak_memory_bytes[cid] = max(self.peak_memory_bytes[cid], mem)

    def record_oom(self, inst: int, ts: float, reported_bytes: float) -> bool:
        """§1.4: an OOM kill at ``ts``; ``reported_bytes`` is the memory at the kill or the
        request. Returns False when the OOM is older than the open window and is dropped."""
        interval = self.settings.memory_aggregation_interval_s
        window_end = self.window_end_s[inst]
        if math.isfinite(window_end) and ts < window_end - interval:
            return False
        used = max(reported_bytes, float(self.usage_peak_bytes[inst]))
        needed = oom_memory_needed(used, self.settings)
        cid = int(self.instance_container[inst])
        self.oom_count[cid] += 1
        return self._memory_sample(inst, ts, needed, is_oom=True)

    def _memory_sample(self, inst: int, ts: float, usage: float, *, is_oom: bool) -> bool:
        """VPA's ``ContainerState.addMemorySample`` on the open-window model."""
        if not is_oom and ts < self.last_memory_s[inst]:
            return False
        self.last_memory_s[inst] = ts
        interval = self.settings.memory_aggregation_interval_s
        window_end = float(self.window_end_s[inst])
        usage_peak = float(self.usage_peak_bytes[inst])
        oom_peak = float(self.oom_peak_bytes[inst])
        if math.isfinite(window_end) and ts < window_end:
            old = max(usage_peak, oom_peak)
            if old == 0 or usage <= old:
                return True  # upstream ignores samples once a window's peak is zero
        else:
            if math.isfinite(window_end):
                cid = self.instance_container[inst : inst + 1]
                peak = max(usage_peak, oom_peak)
                self.memory.add(cid, np.asarray([peak]), np.asarray([window_end]), 1.0)
            else:
                window_end = ts
            shift = math.floor((ts - window_end) / interval) * interval + interval
            self.window_end_s[inst] = window_end + shift
            self.usage_peak_bytes[inst] = 0.0
            self.oom_peak_bytes[inst] = 0.0
        if is_oom:
            self.oom_peak_bytes[inst] = usage
        else:
            self.usage_peak_bytes[inst] = usage
        return True

    # -- forgetting (``retention.py`` decides what) ---------------------------------------
    def close_windows(self, instances: IntArray) -> None:
        """Move these instances' open-window peaks into the histogram for good.

        Upstream's aggregate histogram already holds a pod's current peak, so it keeps that
        peak when the pod is forgotten; here the open peak lives beside the histogram and
        is added now, at the same time and weight ``memory_histogram()`` adds it.
        """
        inst = instances[instances < self.window_end_s.shape[0]]
        inst = inst[np.isfinite(self.window_end_s[inst])]
        if inst.shape[0] == 0:
            return
        peaks = np.maximum(self.usage_peak_bytes[inst], self.oom_peak_bytes[inst])
        containers = self.instance_container[inst]
        self.memory.add(containers, peaks, self.window_end_s[inst], MEMORY_PEAK_WEIGHT)
        self.window_end_s[inst] = np.nan

    def keep(self, containers: IntArray, instances: IntArray, instance_container: IntArray) -> None:
        """Keep only ``containers`` and ``instances`` (old ids), renumbered by position;
        ``instance_container`` is each kept instance's new container id. The open windows
        of the instances that go are closed into the histogram first."""
        gone = np.setdiff1d(np.arange(self.window_end_s.shape[0]), instances)
        self.close_windows(gone)
        if containers.shape[0]:
            self.grow_containers(int(containers.max()) + 1)
        self.cpu.keep_rows(containers)
        self.memory.keep_rows(containers)
        self.cpu_sample_count = self.cpu_sample_count[containers]
        self.first_cpu_sample_s = self.first_cpu_sample_s[containers]
        self.last_cpu_sample_s = self.last_cpu_sample_s[containers]
        self.memory_sample_count = self.memory_sample_count[containers]
        self.peak_memory_bytes = self.peak_memory_bytes[containers]
        self.oom_count = self.oom_count[containers]
        known = self.window_end_s.shape[0]
        self.instance_container = instance_container.astype(np.int64)
        self.last_cpu_s = _picked(self.last_cpu_s, instances, known, -np.inf)
        self.last_memory_s = _picked(self.last_memory_s, instances, known, -np.inf)
        self.window_end_s = _picked(self.window_end_s, instances, known, np.nan)
        self.usage_peak_bytes = _picked(self.usage_peak_bytes, instances, known, 0.0)
        self.oom_peak_bytes = _picked(self.oom_peak_bytes, instances, known, 0.0)

    # -- reading ------------------------------------------------------------------------
    def memory_histogram(self) -> DecayingHistograms:
        """Closed windows plus every instance's open-window peak (what VPA estimates from)."""
        hist = self.memory.copy()
        open_ = np.flatnonzero(np.isfinite(self.window_end_s))
        if open_.shape[0]:
            peaks = np.maximum(self.usage_peak_bytes[open_], self.oom_peak_bytes[open_])
            hist.add(
                self.instance_container[open_],
                peaks,
                self.window_end_s[open_],
                MEMORY_PEAK_WEIGHT,
            )
        return hist

    def confidence(self, interval_cpu_s: float = DAY_S) -> FloatArray:
        """§1.5: ``min(span / I, N / I_minutes)`` per container, from CPU samples."""
        span = np.nan_to_num(self.last_cpu_sample_s - self.first_cpu_sample_s, nan=0.0)
        return confidence(span, self.cpu_sample_count, interval_cpu_s)

    def expired(self, now_s: float) -> IntArray:
        """Containers whose last CPU sample is at least interval × count old (§1.3)."""
        horizon = (
            self.settings.memory_aggregation_interval_s
            * self.settings.memory_aggregation_interval_count
        )
        last = np.nan_to_num(self.last_cpu_sample_s, nan=-np.inf)
        return np.flatnonzero(now_s - last >= horizon)

    # -- checkpoints (§1.8) -------------------------------------------------------------
    def save_checkpoint(self, container: int) -> dict[str, object]:
        """VPA-style checkpoint of one container (closed windows only, as upstream)."""
        first = self.first_cpu_sample_s[container]
        last = self.last_cpu_sample_s[container]
        return {
            "version": "v3",
            "firstSampleStart": None if np.isnan(first) else float(first),
            "lastSampleStart": None if np.isnan(last) else float(last),
            "totalSamplesCount": int(self.cpu_sample_count[container]),
            "cpuHistogram": self.cpu.save_checkpoint(container).to_dict(),
            "memoryHistogram": self.memory.save_checkpoint(container).to_dict(),
        }

    def load_checkpoint(self, container: int, data: dict[str, object]) -> None:
        """Restore one container's state from ``save_checkpoint`` output."""
        if data.get("version") != "v3":
            raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
        self.grow_containers(container + 1)
        cpu = data.get("cpuHistogram")
        memory = data.get("memoryHistogram")
        if not isinstance(cpu, dict) or not isinstance(memory, dict):
            raise ValueError("checkpoint lacks cpuHistogram/memoryHistogram")
        self.cpu.load_checkpoint(container, HistogramCheckpoint.from_dict(cpu))
        self.memory.load_checkpoint(container, HistogramCheckpoint.from_dict(memory))
        first, last = data.get("firstSampleStart"), data.get("lastSampleStart")
        if isinstance(first, int | float):
            self.first_cpu_sample_s[container] = np.fmin(self.first_cpu_sample_s[container], first)
        if isinstance(last, int | float):
            self.last_cpu_sample_s[container] = np.fmax(self.last_cpu_sample_s[container], last)
        count = data.get("totalSamplesCount", 0)
        self.cpu_sample_count[container] += int(count) if isinstance(count, int) else 0
