"""What one strategy's requests and limits would have done, counted per container.

Rules (stated in ``docs/quality.md`` too):

* **OOM event**: a memory sample above the strategy's memory limit — or above its memory
  request when it sets no limit (above its request a container without a limit is the
  first to be evicted under memory pressure; we count that as harm, conservatively).
  An OOM row of the trace itself means the container wanted at least what its original
  limit allowed, so it counts when the strategy's line is at or below
  ``max(memory at the kill, original limit)``. Each container-interval counts once.
* **usage above the original limit** is measurement noise (the hypervisor or the kernel
  enforces that limit: the data README reports 2.2 % of Bitbrains rows with CPU slightly
  above capacity): for accounting, usage is clipped to the original limit of its row.
  Strategies still see the samples as they are.
* **time above request / limit**: the summed durations (``dt_s``) of samples whose usage
  exceeds the request (CPU and memory) or the CPU limit (throttling). Unset → never.
* **cost**: request × duration, over all samples (a container is paid for while it
  runs); **used**: usage × duration over measured samples; **slack** = requested − used
  over the samples where both are known.
* **comparable** cost: the same, over rows where the original request is known, so that
  ``1 − comparable / original`` is the saving against the status quo.
* **container-days** are UTC days ``(d·24 h, (d+1)·24 h]`` (a sample stamped at 00:00
  ends the day before, as it ends the interval before) with at least one row of the
  container. An **OOM container-day** has at least one row that is an OOM event above
  (every crossing counts, not only the first of an interval).
* **reserved GiB-hours by limit**: the memory limit × duration, or the request where no
  limit is set (nothing caps such a container below its request's node share), over the
  rows whose original memory size is known.
* **churn**: over consecutive container-days (the previous day the container was seen),
  the share of transitions where a request or limit in force moved by more than
  ``CHURN_FRACTION`` (or was set or unset). The values in force on a day are those at
  its first row (with daily steps they hold all day).
* **floor cost**: the part of each request in force that only the strategy's own floor
  asked for (its minimum request or per-pod minimum: the target minus what the same
  recommendation would have been without the floor, at most the request) × duration, over
  the rows whose original request is known — the core-hours and GiB-hours that floors
  reserve.
* **fleet excess**: per time bin (the trace's usual sampling period), the usage above
  requests summed over all containers, and the requests summed likewise. Memory above a
  request is not reserved on the node: this is what the nodes must have free at that
  moment for nobody to be evicted (and CPU: for nobody to be starved), whatever the
  limits — so a strategy cannot look safe just by setting high limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from rightsizer.engine.buckets import BoolArray, FloatArray, IntArray
from rightsizer.engine.usage import UsageChunk
from rightsizer.quantity import DAY_S

#: A transition between container-days is churn when a value moves by more than this.
CHURN_FRACTION = 0.10


def differs(old: FloatArray, new: FloatArray, fraction: float) -> BoolArray:
    """``new`` moved by more than ``fraction`` of ``old``, or was set or unset (NaN)."""
    old_set, new_set = np.isfinite(old), np.isfinite(new)
    both = old_set & new_set
    with np.errstate(invalid="ignore"):
        moved = np.abs(new - old) > fraction * np.abs(old)
    result: BoolArray = (old_set != new_set) | (both & moved)
    return result


def utc_days(timestamp_s: FloatArray) -> IntArray:
    """The UTC day ``d`` of each timestamp, days being ``(d·24 h, (d+1)·24 h]``."""
    days: IntArray = (np.ceil(timestamp_s / DAY_S) - 1).astype(np.int64)
    return days


@dataclass(frozen=True)
class IntervalRows:
    """The samples of one interval (time-ordered) and what each row stands for."""

    usage: UsageChunk
    dt_s: FloatArray
    time_bin: IntArray
    """Index of the fleet-excess time bin of each row."""
    original_cpu_request: FloatArray
    original_cpu_limit: FloatArray
    original_memory_request: FloatArray
    original_memory_limit: FloatArray


@dataclass(frozen=True)
class RowResources:
    """Requests and limits in force for each row (cores, bytes; NaN = unset)."""

    cpu_request: FloatArray
    cpu_limit: FloatArray
    memory_request: FloatArray
    memory_limit: FloatArray
    cpu_floor: FloatArray | None = None
    """Of each CPU request, the cores only the strategy's floor asked for (None: 0)."""
    memory_floor: FloatArray | None = None
    """Of each memory request, the bytes only the strategy's floor asked for (None: 0)."""


@dataclass(frozen=True)
class OomEvents:
    """The first OOM of each container-interval that had one."""

    container_id: IntArray
    instance_id: IntArray
    timestamp_s: FloatArray
    killed_at_bytes: FloatArray
    """The memory line that was crossed (the limit, or the request without a limit)."""

    def __len__(self) -> int:
        return int(self.container_id.shape[0])


def _zeros() -> FloatArray:
    return np.zeros(0)


def _izeros() -> IntArray:
    return np.zeros(0, dtype=np.int64)


#: ``Ledger`` fields that are running state, not totals: their starting value.
_NONE_YET = {"fill": -1}
_UNSET = {"fill": np.nan}


@dataclass
class Ledger:
    """Per-container totals for one strategy over the whole replay."""

    oom_events: IntArray = field(default_factory=_izeros)
    intervals: IntArray = field(default_factory=_izeros)
    """Container-intervals with at least one sample."""
    adoptions: IntArray = field(default_factory=_izeros)
    """Switches from the original resources to the strategy's (at most one each)."""
    changes: IntArray = field(default_factory=_izeros)
    """Later rollouts: the applied recommendation changed by more than the threshold."""
    cpu_observed_s: FloatArray = field(default_factory=_zeros)
    memory_observed_s: FloatArray = field(default_factory=_zeros)
    cpu_above_request_s: FloatArray = field(default_factory=_zeros)
    cpu_above_limit_s: FloatArray = field(default_factory=_zeros)
    cpu_excess_core_s: FloatArray = field(default_factory=_zeros)
    """CPU used above the request (core-seconds): how much demand the request missed."""
    memory_above_request_s: FloatArray = field(default_factory=_zeros)
    cpu_requested_core_s: FloatArray = field(default_factory=_zeros)
    memory_requested_byte_s: FloatArray = field(default_factory=_zeros)
    cpu_comparable_core_s: FloatArray = field(default_factory=_zeros)
    memory_comparable_byte_s: FloatArray = field(default_factory=_zeros)
    cpu_used_core_s: FloatArray = field(default_factory=_zeros)
    memory_used_byte_s: FloatArray = field(default_factory=_zeros)
    cpu_slack_core_s: FloatArray = field(default_factory=_zeros)
    memory_slack_byte_s: FloatArray = field(default_factory=_zeros)
    # per time bin, summed over containers (not per container)
    bin_cpu_excess_cores: FloatArray = field(default_factory=_zeros)
    bin_cpu_requested_cores: FloatArray = field(default_factory=_zeros)
    bin_memory_excess_bytes: FloatArray = field(default_factory=_zeros)
    bin_memory_requested_bytes: FloatArray = field(default_factory=_zeros)
    # the measures issue 18 asks every strategy to be compared on
    container_days: IntArray = field(default_factory=_izeros)
    oom_container_days: IntArray = field(default_factory=_izeros)
    cpu_samples: IntArray = field(default_factory=_izeros)
    cpu_samples_above_request: IntArray = field(default_factory=_izeros)
    memory_limit_comparable_byte_s: FloatArray = field(default_factory=_zeros)
    """Memory limit (or request where none) × duration over rows with an original size."""
    day_transitions: IntArray = field(default_factory=_izeros)
    day_transitions_moved: IntArray = field(default_factory=_izeros)
    cpu_floor_core_s: FloatArray = field(default_factory=_zeros)
    """Requested core-seconds that only the strategy's floor asked for (comparable rows)."""
    memory_floor_byte_s: FloatArray = field(default_factory=_zeros)
    """Requested byte-seconds that only the strategy's floor asked for (comparable rows)."""
    # running state per container (not totals)
    last_day: IntArray = field(default_factory=_izeros, metadata=_NONE_YET)
    last_oom_day: IntArray = field(default_factory=_izeros, metadata=_NONE_YET)
    churn_day: IntArray = field(default_factory=_izeros, metadata=_NONE_YET)
    churn_cpu_request: FloatArray = field(default_factory=_zeros, metadata=_UNSET)
    churn_cpu_limit: FloatArray = field(default_factory=_zeros, metadata=_UNSET)
    churn_memory_request: FloatArray = field(default_factory=_zeros, metadata=_UNSET)
    churn_memory_limit: FloatArray = field(default_factory=_zeros, metadata=_UNSET)

    @classmethod
    def for_containers(cls, count: int, bins: int = 0) -> Ledger:
        ledger = cls()
        for f in fields(cls):
            current = getattr(ledger, f.name)
            size = bins if f.name.startswith("bin_") else count
            fill = f.metadata.get("fill", 0)
            setattr(ledger, f.name, np.full(size, fill, dtype=current.dtype))
        return ledger

    def peak_fleet_excess(self, resource: str) -> float:
        """The largest share of the fleet's requests that usage exceeded at one time."""
        excess = getattr(self, f"bin_{resource}_excess_{_UNIT[resource]}")
        requested = getattr(self, f"bin_{resource}_requested_{_UNIT[resource]}")
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(requested > 0, excess / requested, np.nan)
        return float(np.nanmax(share)) if bool(np.isfinite(share).any()) else 0.0

    def total(self, name: str) -> float:
        return float(np.sum(getattr(self, name)))


_UNIT = {"cpu": "cores", "memory": "bytes"}


def _above(usage: FloatArray, line: FloatArray) -> BoolArray:
    """``usage > line`` where both are known (NaN compares False)."""
    with np.errstate(invalid="ignore"):
        result: BoolArray = np.asarray(usage > line, dtype=bool)
    return result


def measure(ledger: Ledger, rows: IntervalRows, res: RowResources) -> OomEvents:
    """Add one interval's samples under ``res`` to ``ledger``; return its OOM events."""
    use = _Usage.of(rows)
    add = _Adder(ledger, rows)
    _count_usage(ledger, add, use, res)
    _count_reserved(add, rows, res)
    if rows.time_bin.shape[0]:
        _count_time_bins(ledger, rows, use, res)
    return _count_ooms(ledger, rows, use, res)


@dataclass(frozen=True)
class _Usage:
    """What the containers used in the interval, as far as the original limits let them
    (an OOM row is no usage sample)."""

    cpu: FloatArray
    memory: FloatArray
    cpu_known: BoolArray
    memory_known: BoolArray

    @classmethod
    def of(cls, rows: IntervalRows) -> _Usage:
        u = rows.usage
        cpu = np.fmin(u.cpu_cores, np.where(u.oom, np.nan, rows.original_cpu_limit))
        cpu = np.where(np.isfinite(u.cpu_cores), cpu, np.nan)
        mem = np.fmin(u.memory_bytes, np.where(u.oom, np.nan, rows.original_memory_limit))
        mem = np.where(np.isfinite(u.memory_bytes), mem, np.nan)
        return cls(cpu, mem, np.isfinite(cpu) & ~u.oom, np.isfinite(mem) & ~u.oom)


class _Adder:
    """Adds per-row durations (or value × duration) into a per-container total."""

    def __init__(self, ledger: Ledger, rows: IntervalRows) -> None:
        self.ledger = ledger
        self.cid, self.dt = rows.usage.container_id, rows.dt_s
        self.n = ledger.oom_events.shape[0]

    def __call__(
        self, target: FloatArray, mask: BoolArray, values: FloatArray | None = None
    ) -> None:
        weights = self.dt if values is None else values * self.dt
        target += np.bincount(self.cid[mask], weights=weights[mask], minlength=self.n)


def _count_usage(ledger: Ledger, add: _Adder, use: _Usage, res: RowResources) -> None:
    cpu, mem, cpu_known, mem_known = use.cpu, use.memory, use.cpu_known, use.memory_known
    cpu_over = cpu_known & _above(cpu, res.cpu_request)
    add(ledger.cpu_observed_s, cpu_known)
    add(ledger.memory_observed_s, mem_known)
    add(ledger.cpu_above_request_s, cpu_over)
    add(ledger.cpu_above_limit_s, cpu_known & _above(cpu, res.cpu_limit))
    add(ledger.memory_above_request_s, mem_known & _above(mem, res.memory_request))
    add(ledger.cpu_excess_core_s, cpu_over, np.nan_to_num(cpu - res.cpu_request))
    add(ledger.cpu_used_core_s, cpu_known, np.nan_to_num(cpu))
    add(ledger.memory_used_byte_s, mem_known, np.nan_to_num(mem))
    cpu_both = cpu_known & np.isfinite(res.cpu_request)
    mem_both = mem_known & np.isfinite(res.memory_request)
    add(ledger.cpu_slack_core_s, cpu_both, np.nan_to_num(res.cpu_request - cpu))
    add(ledger.memory_slack_byte_s, mem_both, np.nan_to_num(res.memory_request - mem))
    ledger.intervals += np.bincount(add.cid, minlength=add.n) > 0
    ledger.cpu_samples += np.bincount(add.cid[cpu_known], minlength=add.n)
    ledger.cpu_samples_above_request += np.bincount(add.cid[cpu_over], minlength=add.n)


def _count_reserved(add: _Adder, rows: IntervalRows, res: RowResources) -> None:
    """Requests (and memory caps) in force × time: what the strategy reserves."""
    cpu_req = np.nan_to_num(res.cpu_request, nan=0.0)
    mem_req = np.nan_to_num(res.memory_request, nan=0.0)
    everything = np.ones(add.cid.shape[0], dtype=bool)
    totals = add.ledger
    add(totals.cpu_requested_core_s, everything, cpu_req)
    add(totals.memory_requested_byte_s, everything, mem_req)
    add(totals.cpu_comparable_core_s, np.isfinite(rows.original_cpu_request), cpu_req)
    add(totals.memory_comparable_byte_s, np.isfinite(rows.original_memory_request), mem_req)
    if res.cpu_floor is not None:
        add(totals.cpu_floor_core_s, np.isfinite(rows.original_cpu_request), res.cpu_floor)
    if res.memory_floor is not None:
        add(totals.memory_floor_byte_s, np.isfinite(rows.original_memory_request),
            res.memory_floor)  # fmt: skip
    original_size = np.where(
        np.isfinite(rows.original_memory_limit),
        rows.original_memory_limit,
        rows.original_memory_request,
    )
    memory_cap = np.where(np.isfinite(res.memory_limit), res.memory_limit, res.memory_request)
    add(
        totals.memory_limit_comparable_byte_s, np.isfinite(original_size), np.nan_to_num(memory_cap)
    )


def _count_time_bins(ledger: Ledger, rows: IntervalRows, use: _Usage, res: RowResources) -> None:
    """Fleet-wide excess over requests and requests per time bin (peak moments)."""
    lo = int(rows.time_bin.min())
    local = rows.time_bin - lo
    bins = int(local.max()) + 1
    span = slice(lo, lo + bins)
    cpu_req = np.nan_to_num(res.cpu_request, nan=0.0)
    mem_req = np.nan_to_num(res.memory_request, nan=0.0)
    for excess_total, requested_total, used, request, known in (
        (ledger.bin_cpu_excess_cores, ledger.bin_cpu_requested_cores, use.cpu, cpu_req,
         use.cpu_known),
        (ledger.bin_memory_excess_bytes, ledger.bin_memory_requested_bytes, use.memory, mem_req,
         use.memory_known),
    ):  # fmt: skip
        over = np.where(known, np.maximum(np.nan_to_num(used) - request, 0.0), 0.0)
        excess_total[span] += np.bincount(local, weights=over, minlength=bins)
        requested_total[span] += np.bincount(
            local, weights=np.where(known, request, 0.0), minlength=bins
        )


def _count_ooms(ledger: Ledger, rows: IntervalRows, use: _Usage, res: RowResources) -> OomEvents:
    """Samples above the memory line in force are OOM kills (the first per container is
    the interval's event); container-days, OOM container-days and churn."""
    cid = rows.usage.container_id
    oom = rows.usage.oom
    kill_line = np.where(np.isfinite(res.memory_limit), res.memory_limit, res.memory_request)
    wanted = np.fmax(use.memory, np.where(oom, rows.original_memory_limit, np.nan))
    wanted = np.where(
        oom & ~np.isfinite(wanted), rows.original_memory_request, wanted
    )  # an OOM with neither figure: the original request, as upstream VPA assumes
    with np.errstate(invalid="ignore"):
        killed = (use.memory_known & (wanted > kill_line)) | (oom & (wanted >= kill_line))
    first = _first_per_container(cid, killed)
    ledger.oom_events[cid[first]] += 1
    days = utc_days(rows.usage.timestamp_s)
    _count_new_days(ledger.container_days, ledger.last_day, cid, days)
    _count_new_days(ledger.oom_container_days, ledger.last_oom_day, cid[killed], days[killed])
    _count_churn(ledger, cid, days, res)
    return OomEvents(
        container_id=cid[first],
        instance_id=rows.usage.instance_id[first],
        timestamp_s=rows.usage.timestamp_s[first],
        killed_at_bytes=kill_line[first],
    )


def _day_firsts(cid: IntArray, days: IntArray) -> IntArray:
    """Row index of the first row of each (container, day), sorted by container, day."""
    order = np.lexsort((np.arange(cid.shape[0]), days, cid))
    c, d = cid[order], days[order]
    start = np.ones(order.shape[0], dtype=bool)
    start[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    result: IntArray = order[start]
    return result


def _count_new_days(counter: IntArray, last: IntArray, cid: IntArray, days: IntArray) -> None:
    """Count each (container, day) once, across intervals (rows come in time order)."""
    if cid.shape[0] == 0:
        return
    firsts = _day_firsts(cid, days)
    c, d = cid[firsts], days[firsts]
    new = d > last[c]
    np.add.at(counter, c[new], 1)
    np.maximum.at(last, c, d)


def _count_churn(ledger: Ledger, cid: IntArray, days: IntArray, res: RowResources) -> None:
    """Day-to-day transitions of the values in force (at each day's first row)."""
    if cid.shape[0] == 0:
        return
    firsts = _day_firsts(cid, days)
    c, d = cid[firsts], days[firsts]
    new = d > ledger.churn_day[c]
    firsts, c, d = firsts[new], c[new], d[new]
    if c.shape[0] == 0:
        return
    state = (ledger.churn_cpu_request, ledger.churn_cpu_limit,
             ledger.churn_memory_request, ledger.churn_memory_limit)  # fmt: skip
    now = (res.cpu_request[firsts], res.cpu_limit[firsts],
           res.memory_request[firsts], res.memory_limit[firsts])  # fmt: skip
    same_container = np.zeros(c.shape[0], dtype=bool)
    same_container[1:] = c[1:] == c[:-1]
    has_previous = same_container | (ledger.churn_day[c] >= 0)
    moved = np.zeros(c.shape[0], dtype=bool)
    for kept, current in zip(state, now, strict=True):
        previous = np.where(same_container, np.roll(current, 1), kept[c])
        moved |= differs(previous, current, CHURN_FRACTION)
    np.add.at(ledger.day_transitions, c[has_previous], 1)
    np.add.at(ledger.day_transitions_moved, c[has_previous & moved], 1)
    last_of_container = np.ones(c.shape[0], dtype=bool)
    last_of_container[:-1] = c[:-1] != c[1:]
    for kept, current in zip(state, now, strict=True):
        kept[c[last_of_container]] = current[last_of_container]
    ledger.churn_day[c[last_of_container]] = d[last_of_container]


def _first_per_container(cid: IntArray, mask: BoolArray) -> IntArray:
    """Row index of the first ``True`` per container (rows are in time order)."""
    hits = np.flatnonzero(mask)
    _, first = np.unique(cid[hits], return_index=True)
    result: IntArray = hits[first]
    return result
