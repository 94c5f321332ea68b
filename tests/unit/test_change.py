"""One minimum-change rule for Annotate, Apply and the exports: at least the threshold."""

from __future__ import annotations

import json

import pytest

from rightsizer.actuation.annotations import annotation_update
from rightsizer.model.change import change_percent, moved_enough
from rightsizer.names import RECOMMENDATION_ANNOTATION as RECOMMENDATION


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        (1000, 1100, True),  # exactly 10 %: a move
        (1000, 1099, False),
        (1000, 900, True),
        (1000, 1000, False),
        (None, 100, True),  # a value appears
        (0, 100, True),
        (100, None, False),  # a value vanishes: nothing to write
    ],
)
def test_a_move_of_exactly_the_threshold_counts(
    before: int | None, after: int | None, moved: bool
) -> None:
    assert moved_enough(before, after, 10.0) is moved


def _annotation(cpu_m: int) -> dict[str, str]:
    doc = {"containers": {"app": {"requests": {"cpu": f"{cpu_m}m", "memory": "1000"}}}}
    return {RECOMMENDATION: json.dumps(doc)}


def test_annotate_mode_uses_the_same_rule() -> None:
    assert annotation_update(_annotation(1000), _annotation(1100), 10.0) is not None
    assert annotation_update(_annotation(1000), _annotation(1099), 10.0) is None


def test_change_percent() -> None:
    assert change_percent(200, 100) == -50.0
    assert change_percent(0, 100) is None
    assert change_percent(None, 100) is None
