"""The walk through time: recommend from the past, apply, measure the next interval.

At every step boundary each strategy recommends from what its state has seen so far (only
samples stamped at or before the boundary: no peeking ahead). The recommendation is
applied as an operator with a minimum-change threshold would apply it, held for the
interval, and that interval's samples are measured against it (``ledger.measure``). Then
the interval's samples — plus, with ``oom_feedback``, one OOM event per container that
the strategy's own memory line would have killed — are fed to the strategy's state,
which is therefore built incrementally, chunk by chunk, never from the full history.

Rules:

* **warm-up**: a container keeps its original requests and limits until its first sample
  is at least ``warmup_s`` old at a boundary; without originals it has none until then.
* **min change**: a recommendation replaces the one in force only when a request or
  limit moves by more than ``min_change_fraction`` of it (or is set/unset) and — where
  the strategy gives a hysteresis band (``ContainerRecommendation.keep``) — the value in
  force is outside its band (``model/change.py``, the rule Apply and Annotate use); the
  first switch from the originals is an *adoption* (no band: the originals are not the
  strategy's), every later one a *change* (a rollout).
* a resource a strategy has no figure for (no samples of it) stays as it is.
* **history**: ``percentile`` sees only the last ``history_s`` (KRR's history window,
  kept in a ring of steps); ``vpa`` and strategies with their own decay see everything
  they were fed, weighted as they weigh it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rightsizer.backtest.grid import StepGrid, step_grid
from rightsizer.backtest.ledger import (
    IntervalRows,
    Ledger,
    OomEvents,
    RowResources,
    differs,
    measure,
)
from rightsizer.backtest.windowed import WindowedPercentileUsage
from rightsizer.engine.buckets import BoolArray, FloatArray, IntArray
from rightsizer.engine.policy import SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.strategies import SizingContext, Strategy
from rightsizer.engine.strategies.base import UsageState
from rightsizer.engine.strategies.percentile import PercentileStrategy
from rightsizer.engine.usage import ContainerKey, UsageChunk
from rightsizer.model.change import must_move_array
from rightsizer.quantity import DAY_S

if TYPE_CHECKING:  # the trace (and pandas) are imported when a backtest runs
    from rightsizer.backtest.trace import ReplayTrace

ORIGINAL = "original"

#: Called after each step with (steps done, steps in all, boundary reached in Unix s).
ProgressCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class BacktestSettings:
    every_s: float = DAY_S
    """Recompute recommendations this often (steps aligned to the Unix epoch)."""
    history_s: float | None = 14 * DAY_S
    """Trailing window for ``percentile`` (None: all history)."""
    warmup_s: float = DAY_S
    """History a container needs before a recommendation replaces its originals."""
    min_change_fraction: float = 0.10
    """Apply a new recommendation only if something moves by more than this."""
    oom_feedback: bool = True
    """Tell each strategy about the OOMs its own recommendations caused."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.every_s) and self.every_s > 0):
            raise ValueError("the step (every) must be a positive duration")
        if self.history_s is not None and not self.history_s > 0:
            raise ValueError("the history window must be positive")
        if self.warmup_s < 0:
            raise ValueError("the warm-up must not be negative")
        if not 0 <= self.min_change_fraction < 10:
            raise ValueError("the minimum change is a fraction ≥ 0")

    @property
    def history_steps(self) -> int | None:
        if self.history_s is None:
            return None
        return max(1, math.ceil(self.history_s / self.every_s - 1e-9))


@dataclass(frozen=True)
class Contender:
    """A strategy under test, with its sizing policy and the label it is reported as."""

    label: str
    strategy: Strategy
    policy: SizingPolicy


@dataclass
class AppliedHistory:
    """What a strategy had in force per step (rows) and container (columns); NaN where
    the originals were still in force or the value was unset."""

    cpu_request: FloatArray
    cpu_limit: FloatArray
    memory_request: FloatArray
    memory_limit: FloatArray

    @classmethod
    def empty(cls, steps: int, containers: int) -> AppliedHistory:
        def nan() -> FloatArray:
            return np.full((steps, containers), np.nan)

        return cls(nan(), nan(), nan(), nan())


@dataclass(frozen=True)
class Decisions:
    """The values in force after each change a strategy made (its adoption included):
    one row per container and boundary where something was rolled out, in time order.
    Cores and bytes; NaN = not set."""

    container_id: IntArray
    time_s: FloatArray
    cpu_request: FloatArray
    cpu_limit: FloatArray
    memory_request: FloatArray
    memory_limit: FloatArray

    def __len__(self) -> int:
        return int(self.container_id.shape[0])


@dataclass
class StrategyOutcome:
    label: str
    ledger: Ledger
    applied: AppliedHistory | None
    """None for the original resources (they are per row in the trace)."""
    decisions: Decisions | None = None
    """None for the original resources."""


@dataclass
class BacktestResult:
    trace: ReplayTrace
    grid: StepGrid
    settings: BacktestSettings
    outcomes: list[StrategyOutcome]
    """The originals first, then the contenders in the order given."""


class _Run:
    """One contender's state, what it has in force, and its ledger."""

    def __init__(
        self, contender: Contender, trace: ReplayTrace, settings: BacktestSettings
    ) -> None:
        self.contender = contender
        n = trace.containers
        strategy = contender.strategy
        steps = settings.history_steps
        self.state: UsageState = (
            WindowedPercentileUsage(steps)
            if isinstance(strategy, PercentileStrategy) and steps is not None
            else strategy.new_state()
        )
        self.adopted: BoolArray = np.zeros(n, dtype=bool)
        self.cpu_request = np.full(n, np.nan)
        self.cpu_limit = np.full(n, np.nan)
        self.memory_request = np.full(n, np.nan)
        self.memory_limit = np.full(n, np.nan)
        self.cpu_floor = np.zeros(n)
        """Cores of the CPU request in force that only the strategy's floor asked for."""
        self.memory_floor = np.zeros(n)
        """Bytes of the memory request in force that only the strategy's floor asked for."""
        self.ledger = Ledger.for_containers(n, trace.bins)
        self._decided: list[tuple[IntArray, float, tuple[FloatArray, ...]]] = []

    def record(self, taken: BoolArray, time_s: float) -> None:
        """Note the values now in force where ``taken`` (a rollout at ``time_s``)."""
        cid = np.flatnonzero(taken)
        if cid.shape[0]:
            values = (self.cpu_request, self.cpu_limit, self.memory_request, self.memory_limit)
            self._decided.append((cid, time_s, tuple(v[cid].copy() for v in values)))

    def decisions(self) -> Decisions:
        parts = self._decided
        if not parts:
            empty = np.zeros(0)
            return Decisions(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
        cid = np.concatenate([p[0] for p in parts])
        time_s = np.concatenate([np.full(p[0].shape[0], p[1]) for p in parts])
        values = [np.concatenate([p[2][i] for p in parts]) for i in range(4)]
        return Decisions(cid, time_s, *values)

    def end_step(self) -> None:
        if isinstance(self.state, WindowedPercentileUsage):
            self.state.close_step()


class _Originals:
    """The latest original resources per container, as of the current boundary."""

    def __init__(self, containers: int) -> None:
        self.cpu_request = np.full(containers, np.nan)
        self.cpu_limit = np.full(containers, np.nan)
        self.memory_request = np.full(containers, np.nan)
        self.memory_limit = np.full(containers, np.nan)

    def update(self, trace: ReplayTrace, rows: slice) -> None:
        cid = trace.usage.container_id[rows]
        if cid.shape[0] == 0:
            return
        # the last row of each container in the interval (rows are in time order)
        rev_unique, rev_index = np.unique(cid[::-1], return_index=True)
        last = cid.shape[0] - 1 - rev_index
        for mine, theirs in (
            (self.cpu_request, trace.cpu_request_cores),
            (self.cpu_limit, trace.cpu_limit_cores),
            (self.memory_request, trace.memory_request_bytes),
            (self.memory_limit, trace.memory_limit_bytes),
        ):
            mine[rev_unique] = theirs[rows][last]

    def context(
        self, keys: Sequence[ContainerKey]
    ) -> tuple[dict[ContainerKey, Resources], dict[ContainerKey, Resources]]:
        requests: dict[ContainerKey, Resources] = {}
        limits: dict[ContainerKey, Resources] = {}
        for cid, key in enumerate(keys):
            requests[key] = Resources(
                _millicores(self.cpu_request[cid]), _bytes(self.memory_request[cid])
            )
            limits[key] = Resources(
                _millicores(self.cpu_limit[cid]), _bytes(self.memory_limit[cid])
            )
        return requests, limits


def _millicores(cores: float) -> int | None:
    return None if not math.isfinite(cores) else math.ceil(round(cores * 1000.0, 6))


def _bytes(value: float) -> int | None:
    return None if not math.isfinite(value) else math.ceil(value)


@dataclass
class _Recommended:
    """A step's recommendations as arrays per container (cores, bytes; NaN = unset)."""

    cpu_request: FloatArray
    cpu_limit: FloatArray
    memory_request: FloatArray
    memory_limit: FloatArray
    has_cpu: BoolArray
    has_memory: BoolArray
    cpu_floor: FloatArray
    memory_floor: FloatArray
    keep_low: tuple[FloatArray, FloatArray, FloatArray, FloatArray]
    """Per value (CPU request, CPU limit, memory request, memory limit): the low end of
    the band the value in force may stay in (hysteresis; NaN: none)."""
    keep_high: tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def _keep_bands(
    recs: list[ContainerRecommendation], trace: ReplayTrace
) -> tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]]:
    """The strategy's hysteresis bands as arrays (cores, bytes; NaN: no bound)."""
    n = trace.containers
    low = tuple(np.full(n, np.nan) for _ in range(4))
    high = tuple(np.full(n, np.nan) for _ in range(4))
    for rec in recs:
        band = rec.keep
        cid = trace.registry.find_container(rec.key)
        if band is None or cid is None:
            continue
        for i, (res, attr, scale) in enumerate(
            (
                ("request", "cpu_millicores", 1000.0),
                ("limit", "cpu_millicores", 1000.0),
                ("request", "memory_bytes", 1.0),
                ("limit", "memory_bytes", 1.0),
            )
        ):
            lo = getattr(getattr(band, f"{res}_low"), attr)
            hi = getattr(getattr(band, f"{res}_high"), attr)
            low[i][cid] = np.nan if lo is None else lo / scale
            high[i][cid] = np.nan if hi is None else hi / scale
    return low, high


def _recommendation_arrays(recs: list[ContainerRecommendation], trace: ReplayTrace) -> _Recommended:
    """New values per container, which containers have a CPU / memory figure at all, and
    how much of each request only the strategy's floor asked for."""
    n = trace.containers
    cpu_req, cpu_lim = np.full(n, np.nan), np.full(n, np.nan)
    mem_req, mem_lim = np.full(n, np.nan), np.full(n, np.nan)
    has_cpu, has_mem = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    cpu_floor, mem_floor = np.zeros(n), np.zeros(n)
    for rec in recs:
        cid = trace.registry.find_container(rec.key)
        if cid is None:
            continue
        if rec.target.cpu_millicores:
            has_cpu[cid] = True
            cpu_req[cid] = rec.target.cpu_millicores / 1000.0
            added = min(rec.floor_added.cpu_millicores or 0, rec.target.cpu_millicores)
            cpu_floor[cid] = added / 1000.0
            if rec.limits.cpu_millicores is not None:
                cpu_lim[cid] = rec.limits.cpu_millicores / 1000.0
        if rec.target.memory_bytes:
            has_mem[cid] = True
            mem_req[cid] = float(rec.target.memory_bytes)
            mem_floor[cid] = float(min(rec.floor_added.memory_bytes or 0, rec.target.memory_bytes))
            if rec.limits.memory_bytes is not None:
                mem_lim[cid] = float(rec.limits.memory_bytes)
    low, high = _keep_bands(recs, trace)
    return _Recommended(
        cpu_req, cpu_lim, mem_req, mem_lim, has_cpu, has_mem, cpu_floor, mem_floor,
        (low[0], low[1], low[2], low[3]), (high[0], high[1], high[2], high[3]),
    )  # fmt: skip


def _apply(
    run: _Run,
    recs: list[ContainerRecommendation],
    trace: ReplayTrace,
    originals: _Originals,
    ready: BoolArray,
    fraction: float,
) -> BoolArray:
    """Roll out what passes the rules; returns which containers got new values."""
    r = _recommendation_arrays(recs, trace)
    has_cpu, has_mem = r.has_cpu, r.has_memory
    in_force = [
        np.where(run.adopted, mine, orig)
        for mine, orig in (
            (run.cpu_request, originals.cpu_request),
            (run.cpu_limit, originals.cpu_limit),
            (run.memory_request, originals.memory_request),
            (run.memory_limit, originals.memory_limit),
        )
    ]
    new = [
        np.where(has_cpu, r.cpu_request, in_force[0]),
        np.where(has_cpu, r.cpu_limit, in_force[1]),
        np.where(has_mem, r.memory_request, in_force[2]),
        np.where(has_mem, r.memory_limit, in_force[3]),
    ]
    eligible = ready & (has_cpu | has_mem)
    adopt = eligible & ~run.adopted
    moved = np.zeros(trace.containers, dtype=bool)
    for old, fresh, low, high in zip(in_force, new, r.keep_low, r.keep_high, strict=True):
        moved |= must_move_array(differs(old, fresh, fraction), old, low, high)
    change = eligible & run.adopted & moved
    take = adopt | change
    for mine, fresh in zip(
        (run.cpu_request, run.cpu_limit, run.memory_request, run.memory_limit), new, strict=True
    ):
        mine[take] = fresh[take]
    run.cpu_floor[take & has_cpu] = r.cpu_floor[take & has_cpu]
    run.memory_floor[take & has_mem] = r.memory_floor[take & has_mem]
    run.adopted |= adopt
    run.ledger.adoptions += adopt
    run.ledger.changes += change
    return take


def _interval_rows(trace: ReplayTrace, rows: slice) -> IntervalRows:
    u = trace.usage
    return IntervalRows(
        usage=UsageChunk(
            u.container_id[rows],
            u.instance_id[rows],
            u.timestamp_s[rows],
            u.cpu_cores[rows],
            u.memory_bytes[rows],
            u.oom[rows],
        ),
        dt_s=trace.dt_s[rows],
        time_bin=trace.time_bin[rows],
        original_cpu_request=trace.cpu_request_cores[rows],
        original_cpu_limit=trace.cpu_limit_cores[rows],
        original_memory_request=trace.memory_request_bytes[rows],
        original_memory_limit=trace.memory_limit_bytes[rows],
    )


def _row_resources(run: _Run | None, trace: ReplayTrace, rows: slice) -> RowResources:
    orig = RowResources(
        trace.cpu_request_cores[rows],
        trace.cpu_limit_cores[rows],
        trace.memory_request_bytes[rows],
        trace.memory_limit_bytes[rows],
    )
    if run is None:
        return orig
    cid = trace.usage.container_id[rows]
    mine = run.adopted[cid]
    return RowResources(
        np.where(mine, run.cpu_request[cid], orig.cpu_request),
        np.where(mine, run.cpu_limit[cid], orig.cpu_limit),
        np.where(mine, run.memory_request[cid], orig.memory_request),
        np.where(mine, run.memory_limit[cid], orig.memory_limit),
        cpu_floor=np.where(mine, run.cpu_floor[cid], 0.0),
        memory_floor=np.where(mine, run.memory_floor[cid], 0.0),
    )


def _with_ooms(chunk: UsageChunk, events: OomEvents) -> UsageChunk:
    if len(events) == 0:
        return chunk
    return UsageChunk(
        container_id=np.concatenate([chunk.container_id, events.container_id]),
        instance_id=np.concatenate([chunk.instance_id, events.instance_id]),
        timestamp_s=np.concatenate([chunk.timestamp_s, events.timestamp_s]),
        cpu_cores=np.concatenate([chunk.cpu_cores, np.full(len(events), np.nan)]),
        memory_bytes=np.concatenate([chunk.memory_bytes, events.killed_at_bytes]),
        oom=np.concatenate([chunk.oom, np.ones(len(events), dtype=bool)]),
    ).time_ordered()


def run_backtest(
    trace: ReplayTrace,
    contenders: Sequence[Contender],
    settings: BacktestSettings | None = None,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Replay ``trace`` under every contender (and the originals) and count the outcome."""
    settings = settings or BacktestSettings()
    if trace.rows == 0:
        raise ValueError("the trace has no samples")
    ts = trace.usage.timestamp_s
    grid = step_grid(float(ts[0]), float(ts[-1]), settings.every_s)
    n = trace.containers
    first_seen = trace.first_seen_s()
    runs = [_Run(c, trace, settings) for c in contenders]
    applied = [AppliedHistory.empty(grid.steps, n) for _ in runs]
    original_ledger = Ledger.for_containers(n, trace.bins)
    originals = _Originals(n)
    keys = trace.registry.containers

    for k in range(grid.steps):
        after, until = grid.interval(k)
        rows = trace.rows_in(after, until)
        ready = first_seen <= after - settings.warmup_s
        if k > 0:
            requests, limits = originals.context(keys)
            for run in runs:
                context = SizingContext(
                    policy=run.contender.policy, current_requests=requests, current_limits=limits
                )
                recs = run.contender.strategy.recommend(run.state, trace.registry, context)
                taken = _apply(run, recs, trace, originals, ready, settings.min_change_fraction)
                run.record(taken, after)
        interval = _interval_rows(trace, rows)
        measure(original_ledger, interval, _row_resources(None, trace, rows))
        chunk = trace.usage.take(np.arange(rows.start, rows.stop))
        for run, history in zip(runs, applied, strict=True):
            events = measure(run.ledger, interval, _row_resources(run, trace, rows))
            feed = _with_ooms(chunk, events) if settings.oom_feedback else chunk
            run.state.add(feed)
            run.end_step()
            for mine, record in (
                (run.cpu_request, history.cpu_request),
                (run.cpu_limit, history.cpu_limit),
                (run.memory_request, history.memory_request),
                (run.memory_limit, history.memory_limit),
            ):
                record[k] = np.where(run.adopted, mine, np.nan)
        originals.update(trace, rows)
        if progress is not None:
            progress(k + 1, grid.steps, until)

    outcomes = [StrategyOutcome(ORIGINAL, original_ledger, None)]
    outcomes.extend(
        StrategyOutcome(run.contender.label, run.ledger, history, run.decisions())
        for run, history in zip(runs, applied, strict=True)
    )
    return BacktestResult(trace=trace, grid=grid, settings=settings, outcomes=outcomes)
