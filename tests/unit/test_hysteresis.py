"""Hysteresis (issue 18 item 2): a value in force inside the strategy's band stays, one
outside it moves to the target — one rule (``model/change.py``) for the backtest, Apply
mode and Annotate mode."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace

import numpy as np
import pytest

from rightsizer.actuation.annotations import annotation_bands, annotation_update
from rightsizer.engine.recommendation import ContainerRecommendation, KeepBand, Resources
from rightsizer.engine.strategies import SizingContext, build_strategy
from rightsizer.engine.strategies.headroom import HeadroomSettings, keep_band
from rightsizer.engine.usage import ContainerRegistry
from rightsizer.guardrails.apply import decide
from rightsizer.model.assessment import Assessment
from rightsizer.model.change import inside, inside_array, must_move, must_move_array
from rightsizer.names import RECOMMENDATION_ANNOTATION as RECOMMENDATION
from rightsizer.samples.encode import encode
from tests.unit.test_backtest import (
    GIB,
    PER_DAY,
    ScriptedStrategy,
    SeenState,
    replay,
    total,
    trace_frame,
)
from tests.unit.test_guardrails_apply import MI, ctx, row, workload


# -- the rule ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "low", "high", "moves"),
    [
        (1000, 1500, 800, 1600, False),  # inside the band: kept, however far the target
        (1000, 500, 400, 750, True),  # above it: moves
        (1000, 1500, 1200, None, True),  # below it: moves
        (1000, 1500, None, None, True),  # no band: the minimum change alone
        (1000, 1050, 1100, 1600, False),  # outside, but below the minimum change
        (None, 500, 400, 600, True),  # nothing in force: a value appears
        (800, 1500, 800, 1600, False),  # the band's ends are inside
        (750, 500, 400, 750, False),
    ],
)
def test_a_value_inside_the_band_stays_outside_it_moves(
    before: int | None, after: int, low: int | None, high: int | None, moves: bool
) -> None:
    assert must_move(before, after, 10.0, low, high) is moves


def test_the_array_rule_is_the_scalar_rule() -> None:
    values: list[float | None] = [None, 0.0, 800.0, 1000.0, 1200.0, 1600.0, 2000.0]
    cases = list(itertools.product(values, [None, 800.0, 1000.0], [None, 1200.0, 1600.0]))

    def nan(v: float | None) -> float:
        return np.nan if v is None else v

    current, low, high = (np.array([nan(c[i]) for c in cases]) for i in range(3))
    got = inside_array(current, low, high)
    assert got.tolist() == [inside(*c) for c in cases]
    moved = np.ones(len(cases), dtype=bool)
    assert must_move_array(moved, current, low, high).tolist() == [not inside(*c) for c in cases]


# -- the backtest -----------------------------------------------------------------------
@dataclass
class BandedStrategy(ScriptedStrategy):
    """A scripted strategy that gives a band of ``below``/``above`` around its values."""

    below: float = 0.2
    above: float = 0.5

    def recommend(
        self, state: SeenState, registry: ContainerRegistry, context: SizingContext
    ) -> list[ContainerRecommendation]:  # type: ignore[override]
        def band(v: int | None) -> tuple[int | None, int | None]:
            return (None, None) if v is None else (int(v * (1 - self.below)),
                                                   int(v * (1 + self.above)))  # fmt: skip

        result = []
        for rec in super().recommend(state, registry, context):
            cpu, mem = band(rec.target.cpu_millicores), band(rec.target.memory_bytes)
            lim = band(rec.limits.memory_bytes)
            keep = KeepBand(
                Resources(cpu[0], mem[0]), Resources(cpu[1], mem[1]),
                Resources(None, lim[0]), Resources(None, lim[1]),
            )  # fmt: skip
            result.append(replace(rec, keep=keep))
        return result


def _values_in_force(result: object, label: str) -> list[float]:
    outcome = next(o for o in result.outcomes if o.label == label)  # type: ignore[attr-defined]
    return [float(v) for v in outcome.applied.cpu_request[:, 0]]


def test_the_backtest_keeps_values_inside_the_band_and_moves_those_outside() -> None:
    n = 6 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    # adopted at 1000m, which is inside [target − 20 %, target + 50 %] of 1200m and of
    # 900m; not of 600m (1000m > 600m × 1.5): moves to 600m
    script = [(1000, None, 2 * GIB, 2 * GIB), (1200, None, 2 * GIB, 2 * GIB),
              (900, None, 2 * GIB, 2 * GIB), (600, None, 2 * GIB, 2 * GIB)]  # fmt: skip
    banded = BandedStrategy(script, name="banded")
    plain = ScriptedStrategy(script, name="plain")
    result = replay(frame, banded, plain)
    assert total(result, "banded", "changes") == 1
    assert total(result, "plain", "changes") == 3
    in_force = _values_in_force(result, "banded")
    assert in_force[1:] == [1.0, 1.0, 1.0, 0.6, 0.6]


def test_a_memory_limit_below_its_band_moves_even_when_requests_stay() -> None:
    n = 4 * PER_DAY
    frame = trace_frame([0.1] * n, [GIB] * n)
    script = [(1000, None, 2 * GIB, 2 * GIB), (1000, None, 2 * GIB, 3 * GIB)]
    result = replay(frame, BandedStrategy(script, name="banded", below=0.1))
    assert total(result, "banded", "changes") == 1


# -- Apply mode and Annotate mode -------------------------------------------------------
def _banded_row(cpu: int, mem: int, keep: KeepBand, lim_mem: int | None = None) -> Assessment:
    base = row(cpu, mem, lim_mem=lim_mem or mem)
    return replace(base, recommendation=replace(base.recommendation, keep=keep))


def test_apply_mode_keeps_requests_inside_the_band() -> None:
    # the workload has 1000m / 1024Mi; the target is 700m / 800Mi
    band = KeepBand(Resources(600, 700 * MI), Resources(1200, 1100 * MI))
    kept = decide(workload(), [_banded_row(700, 800 * MI, band)], ctx())
    assert not kept.writes
    assert kept.hold is not None and kept.hold.reason == "BelowMinimumChange"
    narrow = KeepBand(Resources(600, 700 * MI), Resources(900, 1100 * MI))
    moved = decide(workload(), [_banded_row(700, 800 * MI, narrow)], ctx())
    assert moved.writes
    assert moved.changes[0].requests == Resources(700, 800 * MI)
    no_band = decide(workload(), [row(700, 800 * MI)], ctx())
    assert no_band.writes


def test_apply_mode_writes_when_the_memory_limit_leaves_its_band() -> None:
    # requests inside their band, but the limit in force (1024Mi) is below the OOM line's
    # band [1500Mi, 2000Mi]: a guardrail demands the write
    band = KeepBand(Resources(600, 700 * MI), Resources(1200, 1100 * MI),
                    Resources(None, 1500 * MI), Resources(None, 2000 * MI))  # fmt: skip
    decision = decide(workload(), [_banded_row(900, 1000 * MI, band, 1600 * MI)], ctx())
    assert decision.writes
    assert decision.changes[0].limits.memory_bytes == 1600 * MI


def _annotation(cpu_m: int) -> dict[str, str]:
    doc = {"containers": {"app": {"requests": {"cpu": f"{cpu_m}m", "memory": "1000"}}}}
    return {RECOMMENDATION: json.dumps(doc)}


def test_annotate_mode_uses_the_same_band() -> None:
    bands = {("app", "cpu"): (800.0, 1500.0), ("app", "memory"): (900.0, 1100.0)}
    assert annotation_update(_annotation(1000), _annotation(1400), 10.0, bands) is None
    assert annotation_update(_annotation(1000), _annotation(600), 10.0, bands) is None
    assert annotation_update(_annotation(1600), _annotation(1400), 10.0, bands) is not None
    assert annotation_update(_annotation(1000), _annotation(1400), 10.0) is not None


def test_annotation_bands_come_from_the_recommendation() -> None:
    band = KeepBand(Resources(600, 700 * MI), Resources(1200, 1100 * MI))
    assert annotation_bands([_banded_row(700, 800 * MI, band)]) == {
        ("app", "cpu"): (600, 1200), ("app", "memory"): (700 * MI, 1100 * MI),
    }  # fmt: skip
    assert annotation_bands([row()]) == {}


# -- headroom's band --------------------------------------------------------------------
def _rec(cpu: int, mem: int, limit: int, peak: float) -> ContainerRecommendation:
    return row(cpu, mem, peak=peak, lim_cpu=None, lim_mem=limit).recommendation


def test_headroom_bands_are_relative_with_a_minimum_width() -> None:
    s = HeadroomSettings(keep_below=0.1, keep_above=0.5)
    band = keep_band(_rec(1000, 1000 * MI, 1500 * MI, 1450 * MI), s)
    assert band.request_low == Resources(900, 900 * MI)
    assert band.request_high == Resources(1500, 1500 * MI)
    assert band.limit_high.memory_bytes == 2250 * MI
    assert band.limit_low.cpu_millicores is None  # no CPU limit, no band
    # the memory limit in force is never kept at or near the peak
    assert band.limit_low.memory_bytes == 1450 * MI + s.min_memory_headroom_bytes
    # tiny values: at least 5m / 8 MiB each side
    small = keep_band(_rec(10, 20 * MI, 40 * MI, 4 * MI), s)
    assert small.request_low == Resources(5, 12 * MI)
    assert small.request_high == Resources(15, 30 * MI)


def test_headroom_gives_a_band_only_with_hysteresis_on() -> None:
    off, _ = build_strategy("headroom", {"keep_below": "0", "keep_above": "0"})
    on, _ = build_strategy("headroom", {"keep_below": "0.2", "keep_above": "0.5"})
    registry = ContainerRegistry()
    frame = trace_frame([0.5] * (2 * PER_DAY), [GIB] * (2 * PER_DAY))
    chunk = encode(frame, registry)
    for strategy, banded in ((off, False), (on, True)):
        state = strategy.new_state()
        state.add(chunk)
        (rec,) = strategy.recommend(state, registry, SizingContext())
        assert (rec.keep is not None) is banded
