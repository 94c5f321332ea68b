"""When the liveness probe gives up on the operator (pure: times are passed in)."""

from __future__ import annotations

import pytest

from rightsizer.controller.liveness import STALE_INTERVALS, Liveness
from rightsizer.handlers.settings import settings_from_env


def test_a_policy_is_stale_after_k_intervals_and_the_allowance() -> None:
    live = Liveness(allowance_s=100.0)
    live.seen("u1", "ns/a", interval_s=60.0, now_s=1000.0)
    limit = 1000.0 + STALE_INTERVALS * 60.0 + 100.0
    assert live.stale(limit) == []
    assert live.stale(limit + 1) == ["ns/a"]
    live.finished("u1", now_s=limit)  # a finished reconcile, whatever its outcome
    assert live.stale(limit + 1) == []


def test_seen_again_does_not_reset_the_clock() -> None:
    """A timer that ticks but never finishes a reconcile (stuck in a pool) is stale."""
    live = Liveness(allowance_s=0.0)
    live.seen("u1", "ns/a", interval_s=10.0, now_s=0.0)
    live.seen("u1", "ns/a", interval_s=10.0, now_s=25.0)
    assert live.stale(31.0) == ["ns/a"]


def test_forgotten_policies_are_not_watched() -> None:
    live = Liveness(allowance_s=0.0)
    live.seen("u1", "ns/a", interval_s=10.0, now_s=0.0)
    live.seen("u2", "ns/b", interval_s=10.0, now_s=0.0)
    live.forget("u1")
    assert live.stale(1000.0) == ["ns/b"]


def test_settings_from_the_environment() -> None:
    settings = settings_from_env(
        {"RIGHTSIZER_MAX_RESPONSE_MIB": "8", "RIGHTSIZER_RECONCILE_DEADLINE_SECONDS": "40"}
    )
    assert settings.limits.max_response_bytes == 8 * 2**20
    assert settings.limits.reconcile_deadline_s == 40.0
    assert settings_from_env({}).limits.max_queries == 300


def test_the_rollout_watch_is_an_install_setting() -> None:
    default = settings_from_env({}).rollout_watch
    assert (default.min_s, default.deadline_margin_s) == (600.0, 120.0)
    watch = settings_from_env({
        "RIGHTSIZER_ROLLOUT_WATCH_SECONDS": "30",
        "RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS": "15",
    }).rollout_watch  # fmt: skip
    assert (watch.min_s, watch.deadline_margin_s) == (30.0, 15.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RIGHTSIZER_MAX_RESPONSE_MIB", "lots"),
        ("RIGHTSIZER_RECONCILE_DEADLINE_SECONDS", "-1"),
        ("RIGHTSIZER_QUERIES_PER_RECONCILE", "nan"),
        ("RIGHTSIZER_RECONCILE_WORKERS", "0"),
        ("RIGHTSIZER_ROLLOUT_WATCH_SECONDS", "ten minutes"),
        ("RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS", "-5"),
    ],
)
def test_bad_settings_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        settings_from_env({name: value})
