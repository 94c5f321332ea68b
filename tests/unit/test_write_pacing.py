"""The token bucket pacing writes to RightSizeRecommendation objects, on a fake clock."""

from __future__ import annotations

import pytest

from rightsizer.actuation.pacing import TokenBucket
from rightsizer.handlers.settings import settings_from_env
from tests.unit.helpers import FakeClock


def bucket(rate: float = 10.0, burst: float = 5.0) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate=rate, burst=burst, clock=clock, sleep=clock.sleep), clock


def test_a_burst_goes_at_once_then_the_rate_applies() -> None:
    b, clock = bucket()
    for _ in range(5):
        b.acquire()
    assert clock.now == 0.0
    for _ in range(20):
        b.acquire()
    assert clock.now == pytest.approx(2.0)  # 20 more at 10/s


def test_a_rejection_halves_the_rate_waits_and_successes_win_it_back() -> None:
    b, clock = bucket()
    b.rejected(3.0)
    assert clock.now == 3.0 and b.current_rate == 5.0
    b.rejected(None)
    assert clock.now == 4.0 and b.current_rate == 2.5
    for _ in range(100):
        b.succeeded()
    assert b.current_rate == 10.0


def test_the_rate_never_falls_below_its_floor() -> None:
    b, _ = bucket(rate=4.0)
    for _ in range(10):
        b.rejected(0)
    assert b.current_rate == 1.0


def test_a_useless_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        bucket(rate=0)


def test_the_pace_is_read_from_the_environment() -> None:
    settings = settings_from_env(
        {
            "RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND": "5",
            "RIGHTSIZER_RECOMMENDATION_WRITE_BURST": "7",
        }
    )
    assert (settings.recommendation_writes_per_second, settings.recommendation_write_burst) == (
        5.0,
        7,
    )
    assert settings_from_env({}).recommendation_writes_per_second == 200.0
    with pytest.raises(ValueError, match="RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND"):
        settings_from_env({"RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND": "0"})
