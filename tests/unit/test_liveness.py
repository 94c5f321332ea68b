"""When the liveness probe gives up on the operator (pure: times are passed in)."""

from __future__ import annotations

import pytest

from rightsizer.controller.liveness import STALE_INTERVALS, Liveness
from rightsizer.handlers.settings import settings_from_env, tick_s_from_env


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


def test_every_setting_is_read_once_from_the_environment() -> None:
    """One object, read at startup: the tick, both kinds of workers, the allow-list and
    the metrics endpoint come from their variables; unset ones take the documented
    defaults."""
    settings = settings_from_env(
        {"RIGHTSIZER_TICK_SECONDS": "7", "RIGHTSIZER_WORKERS": "3",
         "RIGHTSIZER_SLOW_SOURCE_WORKERS": "1",
         "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS": "http://prom:9090, https://thanos/q",
         "RIGHTSIZER_METRICS_PORT": "9123"}
    )  # fmt: skip
    assert settings.tick_s == 7.0 and tick_s_from_env({"RIGHTSIZER_TICK_SECONDS": "7"}) == 7.0
    assert (settings.kopf_workers, settings.slow_source_workers) == (3, 1)
    assert [e.url for e in settings.allowed_prometheus.endpoints] == [
        "http://prom:9090",
        "https://thanos/q",
    ]
    assert settings.metrics is not None and settings.metrics.port == 9123
    defaults = settings_from_env({})
    assert (defaults.tick_s, defaults.kopf_workers, defaults.reconcile_workers) == (30.0, 8, 8)
    assert defaults.allowed_prometheus.endpoints == ()


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
        ("RIGHTSIZER_TICK_SECONDS", "0"),
        ("RIGHTSIZER_WORKERS", "many"),
        ("RIGHTSIZER_PROMETHEUS_ALLOWED_URLS", "http://p:9090/#"),
        ("RIGHTSIZER_METRICS_PORT", "70000"),
        ("RIGHTSIZER_ROLLOUT_WATCH_SECONDS", "ten minutes"),
        ("RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS", "-5"),
    ],
)
def test_bad_settings_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        settings_from_env({name: value})
