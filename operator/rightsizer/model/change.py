"""How much a value changes, and the one minimum-change rule (pure).

Annotate mode, Apply mode and the exports all write only when some value moves by **at
least** ``minChangePercent`` of what is there now (``>=``: a 10 % move passes a 10 %
threshold), or when a value appears where there was none — and, where the strategy gives a band
(hysteresis, below), only when the value in force has left it.
"""

from __future__ import annotations

import numpy as np

from rightsizer.engine.buckets import BoolArray, FloatArray


def change_percent(current: float | None, recommended: float | None) -> float | None:
    """Relative change in percent; None where there is nothing to compare."""
    if current is None or recommended is None or current == 0:
        return None
    return (recommended - current) / current * 100.0


def moved_enough(before: float | None, after: float | None, min_change_percent: float) -> bool:
    """Does ``after`` differ from ``before`` by at least ``min_change_percent`` of it? A new
    value where there was none (or zero) always does; a vanished one never does."""
    if after is None or before == after:
        return False
    if not before:
        return True
    return abs(after - before) / abs(before) * 100.0 >= min_change_percent


# -- hysteresis: the band a value in force may stay in ---------------------------------
#
# A strategy may give, with its recommendation, a band per value (``KeepBand``): while
# the value in force is inside it, nothing is written, however far the target moved. Only
# a value outside its band that also moves by the minimum change makes a write, and the
# write moves every value to the recommendation (as VPA's updater evicts a pod whose
# request left [lower bound, upper bound] and gives it the target). Apply mode, Annotate
# mode and the backtest all decide with ``must_move`` / ``must_move_array``.


def inside(current: float | None, low: float | None, high: float | None) -> bool:
    """Is ``current`` within [low, high]? A missing bound is no band on that side; with
    both missing, or nothing in force, there is no band at all (False)."""
    if current is None or (low is None and high is None):
        return False
    return (low is None or current >= low) and (high is None or current <= high)


def must_move(
    before: float | None,
    after: float | None,
    min_change_percent: float,
    low: float | None = None,
    high: float | None = None,
) -> bool:
    """The one rule: write ``after`` over ``before`` when it moves by the minimum change
    and ``before`` is outside its band [low, high] (no band: the minimum change alone)."""
    return moved_enough(before, after, min_change_percent) and not inside(before, low, high)


def inside_array(current: FloatArray, low: FloatArray, high: FloatArray) -> BoolArray:
    """``inside`` per element; NaN stands for None (no value, no bound)."""
    has_low, has_high = np.isfinite(low), np.isfinite(high)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(current) & (has_low | has_high)
        ok &= ~has_low | (current >= low)
        ok &= ~has_high | (current <= high)
    return ok


def must_move_array(
    moved: BoolArray, before: FloatArray, low: FloatArray, high: FloatArray
) -> BoolArray:
    """``must_move`` per element, given where the minimum change alone would move (the
    backtest counts its minimum change as a fraction, strictly above)."""
    result: BoolArray = moved & ~inside_array(before, low, high)
    return result
