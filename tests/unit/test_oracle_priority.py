"""Oracle case 14 of vpa-algorithm.md §3 (updater priority)."""

import pytest

from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.priority import ContainerTarget, update_priority


def cpu(m: int) -> Resources:
    return Resources(cpu_millicores=m)


@pytest.mark.parametrize(
    ("request_m", "target_m", "diff", "scale_up"),
    [(2000, 10000, 4.0, True), (4000, 2000, 0.5, False), (10, 900, 89.0, True)],
)
def test_resource_diff(request_m: int, target_m: int, diff: float, scale_up: bool) -> None:
    p = update_priority([cpu(request_m)], [ContainerTarget(cpu(target_m))])
    assert p.resource_diff == pytest.approx(diff)
    assert p.scale_up is scale_up
    assert not p.outside_recommended_range


def test_outside_range_below_lower_bound() -> None:
    p = update_priority([cpu(4000)], [ContainerTarget(cpu(10000), cpu(6000), cpu(14000))])
    assert p.outside_recommended_range
    assert p.resource_diff == pytest.approx(1.5)


def test_outside_range_above_upper_bound() -> None:
    p = update_priority([cpu(8000)], [ContainerTarget(cpu(2000), cpu(1000), cpu(3000))])
    assert p.outside_recommended_range
    assert p.resource_diff == pytest.approx(0.75)


def test_two_resources_add_up() -> None:
    p = update_priority(
        [Resources(4000, 10_000_000)], [ContainerTarget(Resources(2000, 20_000_000))]
    )
    assert p.resource_diff == pytest.approx(1.5)
    assert p.scale_up


def test_missing_request_is_outside_and_scale_up() -> None:
    p = update_priority([Resources()], [ContainerTarget(cpu(100))])
    assert p.outside_recommended_range
    assert p.scale_up
