"""A samples frame as the backtest replays it: time-ordered arrays, one row per sample.

Besides the usage the engine sees (``UsageChunk``), every row carries the requests and
limits the container really had when sampled (the status quo to compare against) and
``dt_s``, the time the sample stands for:

* a usage sample stands for the time since the previous sample of the same pod, but at
  most that pod's usual sampling period (its median gap), so that a gap in the data
  counts as unobserved time, not as time spent at the last value;
* the first sample of a pod stands for one usual period;
* an OOM row is an event, not a measurement, and stands for no time (``dt_s = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rightsizer.engine.buckets import BoolArray, FloatArray, IntArray
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.samples.encode import encode
from rightsizer.samples.frame import drop_duplicate_samples

#: The sampling period assumed for a pod with a single sample and nothing to go by.
FALLBACK_PERIOD_S = 60.0


@dataclass(frozen=True)
class ReplayTrace:
    """All samples in time order, with the original resources per row (NaN = unset)."""

    registry: ContainerRegistry
    usage: UsageChunk
    dt_s: FloatArray
    cpu_request_cores: FloatArray
    cpu_limit_cores: FloatArray
    memory_request_bytes: FloatArray
    memory_limit_bytes: FloatArray
    time_bin: IntArray
    """Fleet-excess time bin of each row: ``floor((t − first) / bin_s)``."""
    bin_s: float
    """The usual sampling period of the trace (median ``dt_s``)."""

    @property
    def bins(self) -> int:
        return int(self.time_bin.max()) + 1 if self.time_bin.shape[0] else 0

    @property
    def containers(self) -> int:
        return len(self.registry.containers)

    @property
    def rows(self) -> int:
        return len(self.usage)

    def first_seen_s(self) -> FloatArray:
        """When each container's history starts: the start of the time its first sample
        measures (its timestamp − ``dt_s``), for the warm-up."""
        first = np.full(self.containers, np.inf)
        np.minimum.at(first, self.usage.container_id, self.usage.timestamp_s - self.dt_s)
        return first

    def rows_in(self, after_s: float, until_s: float) -> slice:
        """The rows with ``after_s < timestamp ≤ until_s`` (a contiguous range)."""
        ts = self.usage.timestamp_s
        lo = int(np.searchsorted(ts, after_s, side="right"))
        hi = int(np.searchsorted(ts, until_s, side="right"))
        return slice(lo, hi)


def sample_durations(instance_id: IntArray, timestamp_s: FloatArray, oom: BoolArray) -> FloatArray:
    """``dt_s`` per row as described in the module docstring (rows in time order)."""
    n = timestamp_s.shape[0]
    dt = np.zeros(n)
    usage_rows = np.flatnonzero(~oom)
    if usage_rows.shape[0] == 0:
        return dt
    inst = instance_id[usage_rows]
    ts = timestamp_s[usage_rows]
    order = np.lexsort((ts, inst))
    inst_o, ts_o = inst[order], ts[order]
    same = np.zeros(inst_o.shape[0], dtype=bool)
    same[1:] = inst_o[1:] == inst_o[:-1]
    gaps = np.full(inst_o.shape[0], np.nan)
    gaps[1:] = ts_o[1:] - ts_o[:-1]
    gaps[~same] = np.nan
    period = pd.Series(gaps).groupby(inst_o).median()
    overall = float(np.nanmedian(gaps)) if bool(np.isfinite(gaps).any()) else FALLBACK_PERIOD_S
    per_instance = np.full(int(instance_id.max()) + 1, overall)
    known = period.dropna()
    per_instance[known.index.to_numpy(dtype=np.int64)] = known.to_numpy(dtype=np.float64)
    usual = per_instance[inst_o]
    ordered = np.where(same, np.minimum(np.nan_to_num(gaps, nan=np.inf), usual), usual)
    result = np.empty(inst_o.shape[0])
    result[order] = ordered
    dt[usage_rows] = result
    return dt


def build_trace(frame: pd.DataFrame) -> ReplayTrace:
    """Encode a validated samples frame for replay (duplicates dropped, as ``recommend``)."""
    frame = drop_duplicate_samples(frame)
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    registry = ContainerRegistry()
    usage = encode(frame, registry)

    def column(name: str) -> FloatArray:
        values: FloatArray = frame[name].to_numpy(dtype=np.float64)
        return values

    dt = sample_durations(usage.instance_id, usage.timestamp_s, usage.oom)
    positive = dt[dt > 0]
    bin_s = float(np.median(positive)) if positive.shape[0] else FALLBACK_PERIOD_S
    ts = usage.timestamp_s
    time_bin = (
        np.floor((ts - ts[0]) / bin_s).astype(np.int64) if ts.shape[0] else np.zeros(0, np.int64)
    )
    return ReplayTrace(
        registry=registry,
        usage=usage,
        dt_s=dt,
        cpu_request_cores=column("cpu_request"),
        cpu_limit_cores=column("cpu_limit"),
        memory_request_bytes=column("memory_request"),
        memory_limit_bytes=column("memory_limit"),
        time_bin=time_bin,
        bin_s=bin_s,
    )
