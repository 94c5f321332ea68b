"""The steps of a backtest: when recommendations are recomputed, and what each holds for.

Step boundaries are whole multiples of ``every_s`` since the Unix epoch (with daily steps:
00:00 UTC), as a daily job would run. Interval ``k`` is ``(boundary(k), boundary(k+1)]``:
a sample's timestamp is the *end* of the time it measures, so a sample stamped exactly at
a boundary belongs to the interval that ends there. The recommendation used during
interval ``k`` is computed at ``boundary(k)`` from the samples stamped at or before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepGrid:
    start_s: float
    every_s: float
    steps: int

    def boundary(self, k: int) -> float:
        return self.start_s + k * self.every_s

    def interval(self, k: int) -> tuple[float, float]:
        """``(after, until]`` of interval ``k``."""
        return self.boundary(k), self.boundary(k + 1)


def step_grid(first_s: float, last_s: float, every_s: float) -> StepGrid:
    """The smallest grid of epoch-aligned intervals covering ``[first_s, last_s]``."""
    if not every_s > 0 or not math.isfinite(every_s):
        raise ValueError("the step must be a positive duration")
    if last_s < first_s:
        raise ValueError("the trace ends before it starts")
    start = (math.ceil(first_s / every_s) - 1) * every_s
    steps = max(1, math.ceil((last_s - start) / every_s))
    return StepGrid(start_s=start, every_s=every_s, steps=steps)
