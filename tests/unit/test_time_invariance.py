"""Recommendations depend on the samples, never on the date or the time of day they fall on.

The bundled example ends at 00:00 UTC. Moved whole to end at other instants — just before
and after midnight UTC, on and off the 5-minute sample grid, on other dates — every
strategy must give exactly the same recommendations. A strategy that cuts history at
wall-clock boundaries (UTC days, say) fails here on any day, not only on some.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rightsizer.engine.recommendation import ContainerRecommendation
from rightsizer.engine.strategies import STRATEGY_NAMES, SizingContext, build_strategy
from rightsizer.engine.strategies.headroom import HeadroomStrategy, HeadroomUsage
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.recommend import recommend_frame
from rightsizer.sources.samples_file import read_samples

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "samples.csv"
DAY_S = 86_400
MIDNIGHT = 1_796_083_200  # 2026-12-01 00:00 UTC
#: Where the example's last sample is moved to, relative to MIDNIGHT.
END_OFFSETS_S = {
    "5 min before midnight": -300,
    "1 s before midnight": -1,
    "midnight": 0,
    "1 s after midnight": 1,
    "5 min after midnight": 300,
    "off the 5-minute grid": 150,
    "noon": DAY_S // 2,
    "a quarter past six in the evening, a leap day": 1_835_381_700 - MIDNIGHT,  # 2028-02-29
}


@pytest.fixture(scope="module")
def example() -> pd.DataFrame:
    return read_samples(str(EXAMPLE))


def shifted(frame: pd.DataFrame, end_s: float) -> pd.DataFrame:
    moved = frame.copy()
    moved["timestamp"] = moved["timestamp"] - moved["timestamp"].max() + end_s
    return moved


def recommendations(frame: pd.DataFrame, strategy_name: str) -> list[ContainerRecommendation]:
    strategy, policy = build_strategy(strategy_name, {})
    return recommend_frame(frame, strategy, policy)


@pytest.mark.parametrize("strategy_name", STRATEGY_NAMES)
@pytest.mark.parametrize("instant", END_OFFSETS_S)
def test_recommendations_do_not_depend_on_when_history_ends(
    example: pd.DataFrame, strategy_name: str, instant: str
) -> None:
    reference = recommendations(example, strategy_name)
    moved = recommendations(shifted(example, MIDNIGHT + END_OFFSETS_S[instant]), strategy_name)
    assert [r.key for r in moved] == [r.key for r in reference]
    for got, want in zip(moved, reference, strict=True):
        assert got == want, got.key


def test_the_example_crosses_midnight_at_every_tested_instant(example: pd.DataFrame) -> None:
    """The instants above are worth testing: each puts a UTC day boundary somewhere else in
    the example's two days (or right at its end), so daily peaks cut at UTC midnight would
    differ between them."""
    span_s = float(example["timestamp"].max() - example["timestamp"].min())
    phases = {(MIDNIGHT + offset) % DAY_S for offset in END_OFFSETS_S.values()}
    assert span_s > DAY_S
    assert len(phases) >= 6


# -- headroom: each container's days are its own ---------------------------------------
def _chunk(container: int, ts: np.ndarray, memory: np.ndarray) -> UsageChunk:
    n = ts.shape[0]
    ids = np.full(n, container, dtype=np.int64)
    return UsageChunk(ids, ids, ts.astype(float), np.full(n, 0.1), memory, np.zeros(n, bool))


def _containers(count: int) -> ContainerRegistry:
    registry = ContainerRegistry()
    for name in "ab"[:count]:
        registry.instance_id(("ns", f"Deployment/{name}", f"{name}-0", "app"))
    return registry


def test_a_containers_daily_peaks_do_not_depend_on_other_containers() -> None:
    """Container 0 alone, or next to a container that started seven hours earlier: the
    same days, the same peaks, the same recommendation."""
    ts = MIDNIGHT + 3_600 * 13 + np.arange(0, 3 * DAY_S, 300)
    memory = 2.0**30 * (1 + 0.5 * np.sin(ts / 7_000.0) ** 2)
    alone = HeadroomUsage()
    alone.add(_chunk(0, ts, memory))
    shared = HeadroomUsage()
    early = MIDNIGHT + 3_600 * 6 + np.arange(0, 3 * DAY_S, 300)
    both_ts = np.concatenate([early, ts])
    both = UsageChunk(
        np.concatenate([np.ones(early.shape[0], np.int64), np.zeros(ts.shape[0], np.int64)]),
        np.concatenate([np.ones(early.shape[0], np.int64), np.zeros(ts.shape[0], np.int64)]),
        both_ts.astype(float),
        np.full(both_ts.shape[0], 0.1),
        np.concatenate([np.full(early.shape[0], 3.0 * 2**30), memory]),
        np.zeros(both_ts.shape[0], bool),
    )
    shared.add(both)
    assert np.array_equal(np.sort(alone.days.peak_bytes[0]), np.sort(shared.days.peak_bytes[0]))
    strategy = HeadroomStrategy()
    context = SizingContext(HeadroomStrategy.default_policy())
    (rec_alone,) = strategy.recommend(alone, _containers(1), context)
    rec_shared = strategy.recommend(shared, _containers(2), context)[0]
    assert (rec_alone.target, rec_alone.lower_bound, rec_alone.upper_bound) == (
        rec_shared.target,
        rec_shared.lower_bound,
        rec_shared.upper_bound,
    )


def test_a_checkpoint_from_before_per_container_days_is_read_as_utc_days() -> None:
    """Snapshots written before the days were anchored per container hold one ring of UTC
    days; restored, they go on as UTC days (anchor 0) and lose no peak."""
    state = HeadroomUsage()
    noon = MIDNIGHT + DAY_S // 2
    for day, gib in enumerate([1.0, 3.0, 2.0]):
        state.add(_chunk(0, np.asarray([noon + day * DAY_S]), np.asarray([gib * 2**30])))
    legacy = dict(state.snapshot())
    days = (MIDNIGHT // DAY_S) + np.arange(3)
    ring = np.full(state.days.slots, -1, dtype=np.int64)
    ring[days % ring.shape[0]] = days
    legacy["slot_day"] = ring
    legacy["latest_day"] = np.asarray([days[-1]])
    del legacy["day_anchor_s"], legacy["latest_s"]
    restored = HeadroomUsage.restore(state.settings, legacy)
    restored.add(_chunk(0, np.asarray([noon + 3 * DAY_S]), np.asarray([2.5 * 2**30])))
    state.add(_chunk(0, np.asarray([noon + 3 * DAY_S]), np.asarray([2.5 * 2**30])))
    assert sorted(restored.days.peak_bytes[0][restored.days.peak_bytes[0] > 0]) == sorted(
        state.days.peak_bytes[0][state.days.peak_bytes[0] > 0]
    )
    assert math.isclose(
        float(restored.days.percentile(0.5)[0]), float(state.days.percentile(0.5)[0])
    )


# -- the converter that loads test histories into Prometheus ----------------------------
@pytest.mark.parametrize("instant", END_OFFSETS_S)
def test_openmetrics_files_hold_every_sample_whenever_history_ends(
    tmp_path: Path, example: pd.DataFrame, instant: str
) -> None:
    """One file per UTC day of the *shifted* history: ending five minutes before midnight
    once wrote two days into one file name, and the first day was lost."""
    from rightsizer.cli.main import main

    end_s = MIDNIGHT + END_OFFSETS_S[instant]
    argv = ["dev", "openmetrics", "--samples", str(EXAMPLE), "--end", str(end_s)]
    assert main([*argv, "--output", str(tmp_path)]) == 0
    lines = [
        line
        for path in sorted(tmp_path.glob("*.om"))
        for line in path.read_text().splitlines()
        if line.startswith("container_memory_working_set_bytes{")
    ]
    stamps = sorted(float(line.rsplit(" ", 1)[1]) for line in lines)
    assert len(stamps) == int(example["memory"].notna().sum())
    assert stamps[-1] == end_s
