"""How much a value changes, and the one minimum-change rule (pure).

Annotate mode, Apply mode and the exports all write only when some value moves by **at
least** ``minChangePercent`` of what is there now (``>=``: a 10 % move passes a 10 %
threshold), or when a value appears where there was none.
"""

from __future__ import annotations


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
