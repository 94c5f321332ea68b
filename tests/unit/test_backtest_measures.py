"""The measures issue 18 asks every strategy to be compared on, and ``--decisions``.

Hand-built traces (one container, a sample every 5 minutes, days from 00:00 UTC, see
``test_backtest``) under scripted strategies, so every figure is written down by hand.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from rightsizer.backtest.summary import DECISIONS_HEADER, render_decisions, summarize
from rightsizer.cli.backtest import decisions_paths
from rightsizer.cli.main import main
from tests.unit.test_backtest import (
    DAY,
    DAY0,
    GIB,
    PER_DAY,
    STEP,
    ScriptedStrategy,
    daily_cycle,
    replay,
    total,
    trace_frame,
)


def summary_of(result: object, label: str):  # type: ignore[no-untyped-def]
    return {s.label: s for s in summarize(result)}[label]  # type: ignore[arg-type]


# -- OOM container-days -------------------------------------------------------------------
def spiky_memory(days: int) -> np.ndarray:
    """1 GiB, with 3 GiB at 06:00 and 18:00 on day 2 and at 12:00 on day 3."""
    mem = np.full(days * PER_DAY, 1.0 * GIB)
    for day, hour in ((2, 6), (2, 18), (3, 12)):
        mem[day * PER_DAY + hour * 12] = 3 * GIB
    return mem


def test_oom_container_days_count_days_with_any_sample_above_the_limit() -> None:
    mem = spiky_memory(4)
    frame = trace_frame([0.1] * mem.shape[0], mem)
    result = replay(frame, ScriptedStrategy([(200, None, 2 * GIB, 2 * GIB)]))
    assert total(result, "scripted", "container_days") == 4
    assert total(result, "scripted", "oom_container_days") == 2  # days 2 and 3
    assert summary_of(result, "scripted").oom_container_days == pytest.approx(0.5)
    # the originals' 4 GiB limit is never crossed
    assert summary_of(result, "original").oom_container_days == 0


def test_a_day_split_over_two_steps_is_one_container_day() -> None:
    mem = spiky_memory(4)
    frame = trace_frame([0.1] * mem.shape[0], mem)
    result = replay(frame, ScriptedStrategy([(200, None, 2 * GIB, 2 * GIB)]), every_s=DAY / 2)
    # day 2's two crossings fall in two 12-hour intervals: two OOM events, one OOM day
    assert total(result, "scripted", "oom_events") == 3
    assert total(result, "scripted", "oom_container_days") == 2
    assert total(result, "scripted", "container_days") == 4


def test_without_a_memory_limit_the_request_is_the_line_for_oom_days() -> None:
    mem = spiky_memory(4)
    frame = trace_frame([0.1] * mem.shape[0], mem)
    result = replay(frame, ScriptedStrategy([(200, None, int(2.5 * GIB), None)]))
    assert total(result, "scripted", "oom_container_days") == 2


# -- CPU samples above the request --------------------------------------------------------
def test_share_of_cpu_samples_above_the_request() -> None:
    cpu = daily_cycle(3)  # 144 of 288 samples a day at 1 core, the rest at 0.2
    frame = trace_frame(cpu, [GIB] * cpu.shape[0])
    result = replay(frame, ScriptedStrategy([(500, None, 2 * GIB, 2 * GIB)]))
    # day 0 under the original 2 cores: none; days 1 and 2 under 0.5 cores: 144 each
    assert total(result, "scripted", "cpu_samples") == 3 * PER_DAY
    assert total(result, "scripted", "cpu_samples_above_request") == 2 * 144
    assert summary_of(result, "scripted").cpu_samples_above_request == pytest.approx(288 / 864)


def test_samples_not_time_are_counted() -> None:
    """A gap makes a sample stand for less time than the others; the share of samples
    does not care."""
    cpu = np.full(2 * PER_DAY, 0.2)
    cpu[PER_DAY + 10] = 1.0
    frame = trace_frame(cpu, [GIB] * cpu.shape[0])
    frame = frame.drop(index=list(range(PER_DAY, PER_DAY + 10))).reset_index(drop=True)
    result = replay(frame, ScriptedStrategy([(500, None, 2 * GIB, 2 * GIB)]))
    s = summary_of(result, "scripted")
    samples = 2 * PER_DAY - 10
    assert s.cpu_samples_above_request == pytest.approx(1 / samples)


# -- reserved core-hours and GiB-hours ----------------------------------------------------
def test_reserved_hours_as_a_share_of_the_original_sizes() -> None:
    n = 3 * PER_DAY
    frame = trace_frame([0.5] * n, [1.0 * GIB] * n)  # originals: 2 cores, 4 GiB, limit 4 GiB
    result = replay(frame, ScriptedStrategy([(1000, None, 2 * GIB, 3 * GIB)]))
    s = summary_of(result, "scripted")
    # day 0 originals, days 1–2 the recommendation
    assert s.cpu_reserved == pytest.approx((2 + 1 + 1) / 6)
    assert s.memory_reserved_by_request == pytest.approx((4 + 2 + 2) / 12)
    assert s.memory_reserved_by_limit == pytest.approx((4 + 3 + 3) / 12)
    original = summary_of(result, "original")
    assert original.cpu_reserved == original.memory_reserved_by_limit == 1.0


def test_reserved_by_limit_falls_back_to_the_request_where_no_limit_is_set() -> None:
    n = 3 * PER_DAY
    frame = trace_frame([0.5] * n, [1.0 * GIB] * n, memory_limit=None)
    result = replay(frame, ScriptedStrategy([(1000, None, 2 * GIB, None)]))
    s = summary_of(result, "scripted")
    assert s.memory_reserved_by_limit == pytest.approx((4 + 2 + 2) / 12)


# -- churn ----------------------------------------------------------------------------
def test_churn_is_the_share_of_day_transitions_that_moved_more_than_ten_percent() -> None:
    n = 5 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    # in force: day 0 originals (2 cores), days 1–3 1 core (1.05 is within 10 %: not
    # rolled out), day 4 2 cores → transitions 0→1 and 3→4 moved, 1→2 and 2→3 did not
    script = [(1000, None, 2 * GIB, 2 * GIB), (1000, None, 2 * GIB, 2 * GIB),
              (1050, None, 2 * GIB, 2 * GIB), (2000, None, 2 * GIB, 2 * GIB)]  # fmt: skip
    result = replay(frame, ScriptedStrategy(script))
    assert total(result, "scripted", "day_transitions") == 4
    assert total(result, "scripted", "day_transitions_moved") == 2
    assert summary_of(result, "scripted").churn == pytest.approx(0.5)
    assert summary_of(result, "original").churn == 0


def test_churn_counts_a_limit_set_or_unset() -> None:
    n = 3 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    script = [(1000, 2000, 2 * GIB, 2 * GIB), (1000, None, 2 * GIB, 2 * GIB)]
    result = replay(frame, ScriptedStrategy(script))
    assert total(result, "scripted", "day_transitions_moved") == 2  # adoption, limit unset


# -- --decisions ----------------------------------------------------------------------
def test_decisions_are_the_values_in_force_after_each_rollout() -> None:
    n = 5 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    script = [(1000, None, 2 * GIB, 2 * GIB), (1000, None, 2 * GIB, 2 * GIB),
              (1050, None, 2 * GIB, 2 * GIB), (2500, 5000, 2 * GIB, 3 * GIB)]  # fmt: skip
    result = replay(frame, ScriptedStrategy(script), warmup_s=DAY)
    text = render_decisions(result, "scripted")
    rows = list(csv.reader(io.StringIO(text)))
    assert ",".join(rows[0]) == DECISIONS_HEADER
    assert rows[1:] == [
        ["ns", "Deployment/app", "app", str(DAY0 + DAY), "1", "", str(2 * GIB), str(2 * GIB)],
        ["ns", "Deployment/app", "app", str(DAY0 + 4 * DAY), "2.5", "5", str(2 * GIB),
         str(3 * GIB)],
    ]  # fmt: skip


def test_no_decision_rows_during_warm_up() -> None:
    n = 3 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    result = replay(frame, ScriptedStrategy([(1000, None, GIB, GIB)]), warmup_s=2 * DAY)
    rows = render_decisions(result, "scripted").splitlines()
    assert len(rows) == 2
    assert rows[1].split(",")[3] == str(DAY0 + 2 * DAY)


def test_decisions_file_per_strategy() -> None:
    assert decisions_paths("out/d.csv", ["vpa"]) == {"vpa": Path("out/d.csv")}
    paths = decisions_paths("out/d.csv", ["vpa", "percentile:cpu_percentile=99"])
    assert paths["vpa"] == Path("out/d.vpa.csv")
    assert paths["percentile:cpu_percentile=99"] == Path("out/d.percentile_cpu_percentile=99.csv")


def test_cli_accepts_a_week_of_warm_up_and_daily_steps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    n = 10 * PER_DAY
    frame = trace_frame(np.full(n, 0.3), np.full(n, 1.0 * GIB))
    frame["timestamp"] = frame["timestamp"].astype(int)
    samples = tmp_path / "trace.csv"
    frame.to_csv(samples, index=False)
    out = tmp_path / "decisions.csv"
    code = main(
        ["backtest", "--samples", str(samples), "--warmup", "7d", "--every", "1d",
         "--strategy", "percentile", "--decisions", str(out), "--format", "json"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = out.read_text().splitlines()
    assert rows[0] == DECISIONS_HEADER
    # first sample 00:05 on day 0 measures from 00:00: seven days old at day 7's start
    assert [r.split(",")[3] for r in rows[1:]] == [str(DAY0 + 7 * DAY)]
    assert STEP == 300


def test_churn_with_two_days_per_step_compares_neighbouring_days() -> None:
    n = 6 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    script = [(1000, None, 2 * GIB, 2 * GIB), (2000, None, 2 * GIB, 2 * GIB)]
    result = replay(frame, ScriptedStrategy(script), every_s=2 * DAY)
    # in force: days 0–1 2 cores (originals), 2–3 1 core, 4–5 2 cores
    assert total(result, "scripted", "day_transitions") == 5
    assert total(result, "scripted", "day_transitions_moved") == 2
