"""Oracle cases 11–13 of vpa-algorithm.md §3 (rounding, limit scaling, capping)."""

import pytest

from rightsizer.engine.policy import ControlledValues, LimitRangeItem, SizingPolicy
from rightsizer.engine.postprocess import proportional_limit, size_resource
from rightsizer.engine.recommendation import Resources
from rightsizer.quantity import round_up_to_multiple, truncate_amount

MI = 2**20


# -- case 11 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "multiple", "expected"),
    [(100, 7, 105), (100, 10, 100), (1231241, 13, 1231243), (839_500_000, 128 * MI, 896 * MI)],
)
def test_round_up_to_scale(value: int, multiple: int, expected: int) -> None:
    assert round_up_to_multiple(value, multiple) == expected


def test_cores_truncate_to_millicores() -> None:
    assert truncate_amount(0.069946 * 1000) == 69
    assert truncate_amount(0.00455 * 1000) == 4


# -- case 12 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("limit", "original_request", "new", "expected"),
    [
        (2000, 1000, 10000, 20000),
        (2000, 1500, 1000, 1333),
        (None, 1000, 10000, None),
        (2000, None, 10000, 10000),
        (2000, 2000, 10000, 10000),
        (200, 150, 100, 133),
    ],
)
def test_proportional_limit(
    limit: int | None, original_request: int | None, new: int, expected: int | None
) -> None:
    assert proportional_limit(limit, original_request, new) == expected


def test_proportional_limit_uses_limit_range_default() -> None:
    assert proportional_limit(None, 1000, 500, default_limit=2000) == 1000


# -- case 13 ------------------------------------------------------------------------------
def sized(resource: str, value_triplet: tuple[int, int, int], policy: SizingPolicy,
          request: int | None = None, limit: int | None = None,
          lr: LimitRangeItem | None = None) -> tuple[int, int, int]:  # fmt: skip
    s = size_resource(resource, value_triplet, (request, limit), policy, lr)
    return (s.target, s.lower_bound, s.upper_bound)


def test_capping_to_min_and_max_allowed() -> None:
    policy = SizingPolicy(min_allowed=Resources(40, 4000), max_allowed=Resources(45, 4500))
    # target, lower, upper per resource: (30, 20, 50) CPU and (5000, 4300, 5500) memory
    assert sized("cpu", (30, 20, 50), policy) == (40, 40, 45)
    assert sized("memory", (5000, 4300, 5500), policy) == (4500, 4300, 4500)
    s = size_resource("cpu", (30, 20, 50), (None, None), policy, None)
    assert s.uncapped_target == 30


def test_requests_only_caps_at_current_limit() -> None:
    policy = SizingPolicy(controlled_values=ControlledValues.REQUESTS_ONLY)
    cpu = size_resource("cpu", (2, 2, 10), (1, 3), policy, None)
    mem = size_resource("memory", (8000, 8000, 9000), (1, 7000), policy, None)
    assert (cpu.target, cpu.upper_bound, cpu.limit) == (2, 3, 3)
    assert (mem.target, mem.upper_bound, mem.limit) == (7000, 7000, 7000)


def test_caps_to_container_limit_range() -> None:
    lr = LimitRangeItem(max=Resources(cpu_millicores=1000), min=Resources(memory_bytes=500_000_000))
    policy = SizingPolicy()
    cpu = size_resource("cpu", (2000, 2000, 2000), (1000, 1000), policy, lr)
    mem = size_resource("memory", (200_000_000,) * 3, (1_000_000_000,) * 2, policy, lr)
    assert cpu.target == 1000
    assert mem.target == 500_000_000


def test_policy_bounds_beat_limit_range() -> None:
    lr = LimitRangeItem(max=Resources(cpu_millicores=1000))
    policy = SizingPolicy(min_allowed=Resources(cpu_millicores=1500))
    assert size_resource("cpu", (2000, 2000, 2000), (1000, 1000), policy, lr).target == 1500
