"""The backtest's accounting on synthetic traces whose answers are known exactly.

Traces here: one container, a sample every 5 minutes stamped at the end of its interval,
days starting at 00:00 UTC, so interval ``k`` is day ``k`` and holds 288 samples. Most
tests replay a stub strategy whose recommendations are fixed, so every figure can be
written down by hand; a few replay the real strategies on shapes with obvious outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from rightsizer.backtest.grid import step_grid
from rightsizer.backtest.ledger import Ledger
from rightsizer.backtest.replay import (
    BacktestResult,
    BacktestSettings,
    Contender,
    run_backtest,
)
from rightsizer.backtest.summary import render_markdown, render_table, summarize, worst_containers
from rightsizer.backtest.trace import build_trace, sample_durations
from rightsizer.engine.policy import SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.strategies import SizingContext, build_strategy
from rightsizer.engine.strategies.base import UsageState
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.samples.frame import validate_samples

DAY = 86_400
STEP = 300
PER_DAY = DAY // STEP
DAY0 = 1_700_006_400  # 2023-11-15 00:00 UTC
GIB = 2**30
KEY = ("ns", "Deployment/app", "app")


def trace_frame(
    cpu: Sequence[float] | np.ndarray,
    memory: Sequence[float] | np.ndarray,
    *,
    cpu_request: float = 2.0,
    cpu_limit: float | None = 2.0,
    memory_request: float = 4 * GIB,
    memory_limit: float | None = 4 * GIB,
) -> pd.DataFrame:
    """One container, sample ``i`` stamped at ``DAY0 + 300·(i+1)``."""
    n = len(cpu)
    frame = pd.DataFrame(
        {
            "timestamp": DAY0 + STEP * (np.arange(n) + 1.0),
            "namespace": KEY[0],
            "workload": KEY[1],
            "pod": "app-0",
            "container": KEY[2],
            "cpu": np.asarray(cpu, dtype=float),
            "memory": np.asarray(memory, dtype=float),
            "cpu_request": cpu_request,
            "cpu_limit": np.nan if cpu_limit is None else cpu_limit,
            "memory_request": memory_request,
            "memory_limit": np.nan if memory_limit is None else memory_limit,
        }
    )
    return validate_samples(frame, "test")


@dataclass
class SeenState:
    """Remembers what it was fed (for the no-peeking test)."""

    latest_s: float = -np.inf
    rows: int = 0

    def add(self, chunk: UsageChunk) -> None:
        if len(chunk):
            self.latest_s = max(self.latest_s, float(chunk.timestamp_s.max()))
            self.rows += len(chunk)


@dataclass
class ScriptedStrategy:
    """Recommends ``script[i]`` = (cpu m, cpu limit m | None, memory B, memory limit B |
    None) for every container at its i-th call (the last entry repeats)."""

    script: list[tuple[int, int | None, int, int | None]]
    name: str = "scripted"
    seen_at_call: list[float] = field(default_factory=list)

    def new_state(self) -> SeenState:
        return SeenState()

    def recommend(
        self, state: UsageState, registry: ContainerRegistry, context: SizingContext
    ) -> list[ContainerRecommendation]:
        assert isinstance(state, SeenState)
        self.seen_at_call.append(state.latest_s)
        cpu, cpu_lim, mem, mem_lim = self.script[min(len(self.seen_at_call) - 1,
                                                     len(self.script) - 1)]  # fmt: skip
        rec = Resources(cpu, mem)
        return [
            ContainerRecommendation(
                namespace=ns, workload=workload, container=container, target=rec,
                lower_bound=rec, upper_bound=rec, uncapped_target=rec,
                limits=Resources(cpu_lim, mem_lim), cpu_samples=state.rows,
                memory_samples=state.rows, confidence=1.0, current_requests=Resources(),
                current_limits=Resources(), peak_memory_bytes=0.0, oom_kills=0,
            )
            for ns, workload, container in registry.containers
        ]  # fmt: skip


def replay(
    frame: pd.DataFrame,
    *strategies: ScriptedStrategy | str,
    warmup_s: float = 0.0,
    **settings: float | bool | None,
) -> BacktestResult:
    contenders = []
    for s in strategies:
        if isinstance(s, str):
            strategy, policy = build_strategy(s)
            contenders.append(Contender(s, strategy, policy))
        else:
            contenders.append(Contender(s.name, s, SizingPolicy()))
    return run_backtest(
        build_trace(frame),
        contenders,
        BacktestSettings(warmup_s=warmup_s, **settings),  # type: ignore[arg-type]
    )


def ledger(result: BacktestResult, label: str) -> Ledger:
    return next(o.ledger for o in result.outcomes if o.label == label)


def total(result: BacktestResult, label: str, name: str) -> float:
    return ledger(result, label).total(name)


# -- the grid and sample durations ------------------------------------------------------
def test_steps_are_epoch_aligned_and_a_boundary_sample_ends_its_interval() -> None:
    grid = step_grid(DAY0 + 300, DAY0 + 3 * DAY, DAY)
    assert grid.start_s == DAY0
    assert grid.steps == 3
    assert grid.interval(2) == (DAY0 + 2 * DAY, DAY0 + 3 * DAY)
    assert step_grid(DAY0, DAY0, DAY).start_s == DAY0 - DAY  # DAY0 ends the day before
    assert step_grid(DAY0 + 7, DAY0 + 7, 3600).steps == 1


def test_a_sample_stands_for_the_gap_before_it_but_at_most_the_usual_period() -> None:
    ts = np.asarray([0.0, 300, 600, 900, 4500, 4800, 100.0, 100.0])
    inst = np.asarray([0, 0, 0, 0, 0, 0, 1, 1])
    oom = np.asarray([False] * 7 + [True])
    dt = sample_durations(inst, ts, oom)
    # instance 0: usual period 300 (median gap); the 3600-s gap counts as 300
    assert dt[:6].tolist() == [300.0] * 6
    # instance 1 has one usage sample: the overall usual period; an OOM row stands for 0 s
    assert dt[6:].tolist() == [300.0, 0.0]


# -- constant load ----------------------------------------------------------------------
def test_constant_load_exact_cost_and_no_harm() -> None:
    n = 3 * PER_DAY
    frame = trace_frame([0.5] * n, [1.0 * GIB] * n)
    result = replay(frame, ScriptedStrategy([(1000, None, 2 * GIB, 2 * GIB)]))
    assert result.grid.steps == 3
    # day 0: originals (2 cores, 4 GiB); days 1–2: the recommendation (1 core, 2 GiB)
    assert total(result, "scripted", "cpu_requested_core_s") == 2 * DAY + 1 * 2 * DAY
    assert total(result, "scripted", "memory_requested_byte_s") == 4 * GIB * DAY + 2 * GIB * 2 * DAY
    assert total(result, "original", "cpu_requested_core_s") == 2 * 3 * DAY
    assert total(result, "scripted", "cpu_used_core_s") == 0.5 * 3 * DAY
    assert total(result, "scripted", "cpu_slack_core_s") == (2 - 0.5) * DAY + (1 - 0.5) * 2 * DAY
    for name in ("oom_events", "cpu_above_request_s", "cpu_above_limit_s",
                 "memory_above_request_s", "changes"):  # fmt: skip
        assert total(result, "scripted", name) == 0, name
    assert total(result, "scripted", "adoptions") == 1
    assert total(result, "scripted", "intervals") == 3
    summary = {s.label: s for s in summarize(result)}["scripted"]
    assert summary.cpu_savings == pytest.approx(1 - 4 / 6)
    assert summary.memory_savings == pytest.approx(1 - 8 / 12)


def test_the_real_strategies_hold_a_constant_load_without_harm_or_churn() -> None:
    n = 5 * PER_DAY
    frame = trace_frame([0.5] * n, [1.0 * GIB] * n)
    result = replay(frame, "vpa", "percentile", "headroom", warmup_s=DAY)
    for label in ("vpa", "percentile", "headroom"):
        assert total(result, label, "oom_events") == 0, label
        assert total(result, label, "cpu_above_request_s") == 0, label
        assert total(result, label, "adoptions") == 1, label
        # headroom's memory limit shrinks as history grows — 1 GiB × (1.15 + 1/days):
        # 2.15 GiB on day 1, 1.65 on day 2 (−23 %) and 1.48 on day 3 (−10.1 %) are rolled
        # out, 1.40 on day 4 (−5.6 %) is not
        assert total(result, label, "changes") == (2 if label == "headroom" else 0), label


# -- daily cycle ------------------------------------------------------------------------
def daily_cycle(days: int) -> np.ndarray:
    """1 core for the 144 samples stamped (08:00, 20:00], 0.2 cores otherwise."""
    slot = np.arange(days * PER_DAY) % PER_DAY  # sample i ends at (slot + 1) × 5 min
    return np.where((slot >= 95) & (slot < 239), 1.0, 0.2)


def test_daily_cycle_time_above_request_and_limit() -> None:
    cpu = daily_cycle(3)
    assert int((cpu[:PER_DAY] == 1.0).sum()) == 144
    frame = trace_frame(cpu, [GIB] * cpu.shape[0])
    throttled = ScriptedStrategy([(500, 800, 2 * GIB, 2 * GIB)], name="throttled")
    roomy = ScriptedStrategy([(500, 1500, 2 * GIB, 2 * GIB)], name="roomy")
    result = replay(frame, throttled, roomy)
    half_day = 144 * STEP
    for label in ("throttled", "roomy"):
        assert total(result, label, "cpu_above_request_s") == 2 * half_day
        assert total(result, label, "cpu_excess_core_s") == pytest.approx(2 * half_day * 0.5)
        assert total(result, label, "cpu_observed_s") == 3 * DAY
    assert total(result, "throttled", "cpu_above_limit_s") == 2 * half_day
    assert total(result, "roomy", "cpu_above_limit_s") == 0
    assert total(result, "original", "cpu_above_request_s") == 0


def test_percentile_covers_a_daily_cycle_after_one_day() -> None:
    cpu = daily_cycle(4)
    result = replay(trace_frame(cpu, [GIB] * cpu.shape[0]), "percentile", warmup_s=DAY)
    # from day 1 on, p95 of the history is the 1-core plateau: never above the request
    assert total(result, "percentile", "cpu_above_request_s") == 0
    assert total(result, "percentile", "adoptions") == 1


# -- a step up --------------------------------------------------------------------------
def test_step_up_counts_one_oom_per_container_interval() -> None:
    mem = np.r_[[1.0 * GIB] * 2 * PER_DAY, [3.0 * GIB] * 2 * PER_DAY]
    frame = trace_frame([0.1] * mem.shape[0], mem)
    result = replay(frame, "percentile", warmup_s=DAY)
    # day 2 runs at 3 GiB under a request of 1.15 GiB: one OOM event, a day above request
    assert total(result, "percentile", "oom_events") == 1
    assert total(result, "percentile", "memory_above_request_s") == DAY
    # on day 3 the peak is 3 GiB × 1.15: the request grew (one change) and holds
    assert total(result, "percentile", "changes") == 1
    applied = result.outcomes[1].applied
    assert applied is not None
    assert applied.memory_request[3, 0] == math.ceil(3 * 1.15 * 1024) * 2**20  # whole MiB


def test_an_oom_is_fed_back_to_the_strategy_that_caused_it() -> None:
    mem = np.r_[[1.0 * GIB] * 2 * PER_DAY, [1.3 * GIB] * PER_DAY, [1.0 * GIB] * PER_DAY]
    frame = trace_frame([0.1] * mem.shape[0], mem)
    with_feedback = replay(frame, "vpa", warmup_s=DAY)
    without = replay(frame, "vpa", warmup_s=DAY, oom_feedback=False)
    assert total(with_feedback, "vpa", "oom_events") >= 1
    after_oom = [r.outcomes[1].applied for r in (with_feedback, without)]
    assert after_oom[0] is not None and after_oom[1] is not None
    # VPA's OOM bump: at least the crossed line × 1.2 (plus its 15 % margin)
    line = after_oom[0].memory_limit[2, 0]
    assert after_oom[0].memory_request[3, 0] >= 1.2 * line
    assert after_oom[0].memory_request[3, 0] > after_oom[1].memory_request[3, 0]


# -- a rare spike -----------------------------------------------------------------------
def test_rare_spike_is_one_oom_and_one_sample_above_request() -> None:
    n = 4 * PER_DAY
    mem = np.full(n, 1.0 * GIB)
    cpu = np.full(n, 0.2)
    spike = 3 * PER_DAY + 100
    mem[spike] = 5 * GIB
    cpu[spike] = 1.8
    frame = trace_frame(cpu, mem)
    result = replay(frame, ScriptedStrategy([(300, None, 2 * GIB, 3 * GIB)]))
    assert total(result, "scripted", "oom_events") == 1
    assert total(result, "scripted", "memory_above_request_s") == STEP
    assert total(result, "scripted", "cpu_above_request_s") == STEP
    assert total(result, "scripted", "cpu_excess_core_s") == pytest.approx((1.8 - 0.3) * STEP)
    # 5 GiB is above the original 4 GiB limit, which the kernel enforces: for the
    # originals that sample is noise and counts as 4 GiB
    assert total(result, "original", "oom_events") == 0
    # without a memory limit the request is the line: still one event
    no_limit = replay(frame, ScriptedStrategy([(300, None, 2 * GIB, None)]))
    assert total(no_limit, "scripted", "oom_events") == 1


def test_usage_above_the_original_limit_counts_as_the_limit() -> None:
    # 2.2 % of Bitbrains rows show CPU slightly above capacity: noise, not demand
    cpu = np.full(PER_DAY * 2, 2.05)
    result = replay(trace_frame(cpu, [GIB] * cpu.shape[0]),
                    ScriptedStrategy([(2000, None, GIB, GIB)]))  # fmt: skip
    assert total(result, "original", "cpu_above_request_s") == 0
    assert total(result, "scripted", "cpu_above_request_s") == 0
    assert total(result, "scripted", "cpu_used_core_s") == 2.0 * 2 * DAY


# -- OOMs recorded in the trace ---------------------------------------------------------
def test_an_oom_row_means_the_container_wanted_at_least_its_original_limit() -> None:
    n = 2 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    oom = frame.iloc[[PER_DAY + 10]].copy()
    oom["memory"] = np.nan
    oom["cpu"] = np.nan
    oom["oom"] = True
    frame = pd.concat([frame, oom], ignore_index=True)
    below = ScriptedStrategy([(200, None, 2 * GIB, 2 * GIB)], name="below")
    above = ScriptedStrategy([(200, None, 2 * GIB, 5 * GIB)], name="above")
    result = replay(frame, below, above)
    assert total(result, "original", "oom_events") == 1
    assert total(result, "below", "oom_events") == 1
    assert total(result, "above", "oom_events") == 0
    assert total(result, "above", "cpu_observed_s") == 2 * DAY  # the OOM row is no time


# -- min change, warm-up, no peeking ----------------------------------------------------
@pytest.mark.parametrize(("step", "changes"), [(1.03, 0), (1.25, 3)])
def test_only_changes_beyond_the_threshold_are_rolled_out(step: float, changes: int) -> None:
    n = 5 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    # each step compared with what is in force: 1.03 drifts to +9.3 % in three steps
    script = [(int(1000 * step**i), None, 2 * GIB, 2 * GIB) for i in range(4)]
    result = replay(frame, ScriptedStrategy(script))
    assert total(result, "scripted", "adoptions") == 1
    assert total(result, "scripted", "changes") == changes


def test_warm_up_keeps_the_originals_until_a_day_of_history() -> None:
    n = 3 * PER_DAY
    frame = trace_frame([0.5] * n, [GIB] * n).iloc[1:]  # first sample: 00:05–00:10
    result = replay(frame, ScriptedStrategy([(1000, None, 2 * GIB, 2 * GIB)]), warmup_s=DAY)
    # at the day-1 boundary the history is 23 h 55 min long: originals for two days
    assert total(result, "scripted", "cpu_requested_core_s") == 2 * (2 * DAY - STEP) + 1 * DAY
    applied = result.outcomes[1].applied
    assert applied is not None
    assert np.isnan(applied.cpu_request[1, 0])
    assert applied.cpu_request[2, 0] == 1.0
    # a sample stamped 00:05 measures from 00:00: a full day at the next boundary
    full = replay(trace_frame([0.5] * n, [GIB] * n), ScriptedStrategy([(1000, None, GIB, GIB)]),
                  warmup_s=DAY)  # fmt: skip
    assert total(full, "scripted", "adoptions") == 1
    assert full.outcomes[1].applied is not None
    assert full.outcomes[1].applied.cpu_request[1, 0] == 1.0


def test_recommendations_only_see_samples_up_to_their_boundary() -> None:
    n = 4 * PER_DAY + 7
    frame = trace_frame([0.5] * n, [GIB] * n)
    spy = ScriptedStrategy([(1000, None, 2 * GIB, 2 * GIB)])
    result = replay(frame, spy)
    boundaries = [result.grid.boundary(k) for k in range(1, result.grid.steps)]
    assert spy.seen_at_call == boundaries  # samples up to and including each boundary


def test_tables_show_every_strategy() -> None:
    n = 2 * PER_DAY
    result = replay(trace_frame([0.5] * n, [GIB] * n), "percentile", "headroom")
    summaries = summarize(result)
    assert [s.label for s in summaries] == ["original", "percentile", "headroom"]
    table = render_table(summaries).splitlines()
    assert table[0].split()[:3] == ["STRATEGY", "COST", "SAVED"]
    assert len(table) == 4
    markdown = render_markdown(summaries).splitlines()
    assert markdown[1].startswith("|---|")
    assert len(markdown) == 5


def test_fleet_excess_is_the_worst_moment_summed_over_containers() -> None:
    n = 2 * PER_DAY
    a = trace_frame([0.5] * n, [GIB] * n, cpu_request=1.0, memory_request=2 * GIB)
    b = trace_frame([0.5] * n, [GIB] * n, cpu_request=1.0, memory_request=2 * GIB)
    b["workload"] = "Deployment/other"
    b["pod"] = "other-0"
    a.loc[100, ["cpu", "memory"]] = [1.5, 3 * GIB]  # A over its requests ...
    b.loc[100, "cpu"] = 1.25  # ... and B at the same moment
    b.loc[200, "memory"] = 4 * GIB  # B alone, later, 2 GiB over: the worst for memory
    result = replay(pd.concat([a, b], ignore_index=True))
    original = ledger(result, "original")
    assert original.peak_fleet_excess("cpu") == pytest.approx((0.5 + 0.25) / 2.0)
    assert original.peak_fleet_excess("memory") == pytest.approx(2 * GIB / (4 * GIB))
    assert original.peak_fleet_excess("memory") > (1 * GIB) / (4 * GIB)  # sample 100


def test_the_worst_container_of_each_strategy_is_charted_first() -> None:
    n = 2 * PER_DAY
    frames = []
    for name, peak, every in (("calm", 1.0, 40), ("spiky", 3.0, 40), ("wild", 9.0, 20)):
        mem = np.full(n, 1.0 * GIB)
        mem[PER_DAY + 50 :: every] = peak * GIB  # repeated peaks on day 1
        frame = trace_frame([0.1] * n, mem)
        frame["workload"] = f"Deployment/{name}"
        frames.append(frame)
    tight = ScriptedStrategy([(200, None, int(2.5 * GIB), int(2.5 * GIB))], name="tight")
    loose = ScriptedStrategy([(200, None, 10 * GIB, 10 * GIB)], name="loose")
    result = replay(pd.concat(frames, ignore_index=True), tight, loose)
    names = [result.trace.registry.containers[c][1] for c in worst_containers(result, 3)]
    # tight: spiky and wild both OOM once, wild twice as long above its request
    assert names[0] == "Deployment/wild"
    assert set(names) == {"Deployment/wild", "Deployment/spiky", "Deployment/calm"}
    assert worst_containers(result, 0).shape == (0,)
