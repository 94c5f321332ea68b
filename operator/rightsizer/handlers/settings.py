"""The operator's settings, read once at startup from its environment (set in
``manifests/deployment.yaml`` and the chart's values). Every field names its variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from rightsizer.controller import observability as obs
from rightsizer.guardrails.rollout import RolloutWatch
from rightsizer.sources.endpoints import AllowList, allow_list_from_text
from rightsizer.sources.limits import SourceLimits

TICK_VARIABLE = "RIGHTSIZER_TICK_SECONDS"
ALLOWED_PROMETHEUS_VARIABLE = "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS"


@dataclass(frozen=True)
class OperatorSettings:
    tick_s: float = 30.0
    """``RIGHTSIZER_TICK_SECONDS``: how often each policy's timer looks whether it is due
    (its ``reconcileInterval`` says when it is); Apply mode's passes run at every tick."""
    kopf_workers: int = 8
    """``RIGHTSIZER_WORKERS``: Kopf's own threads (indexes, deletion handlers)."""
    reconcile_workers: int = 8
    """``RIGHTSIZER_RECONCILE_WORKERS``: threads for reconciles of well-behaved policies."""
    slow_source_workers: int = 2
    """``RIGHTSIZER_SLOW_SOURCE_WORKERS``: threads for policies whose last read hit a limit."""
    recommendation_writes_per_second: float = 200.0
    """``RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND``: the pace of writes to
    RightSizeRecommendation objects, all policies together (a 429 slows it down)."""
    recommendation_write_burst: int = 200
    """``RIGHTSIZER_RECOMMENDATION_WRITE_BURST``: writes sent at once before the pace applies."""
    limits: SourceLimits = field(default_factory=SourceLimits)
    """``RIGHTSIZER_QUERY_TIMEOUT_SECONDS``, ``RIGHTSIZER_MAX_RESPONSE_MIB``,
    ``RIGHTSIZER_QUERIES_PER_RECONCILE``, ``RIGHTSIZER_RECONCILE_DEADLINE_SECONDS``."""
    allowed_prometheus: AllowList = field(default_factory=lambda: allow_list_from_text(""))
    """``RIGHTSIZER_PROMETHEUS_ALLOWED_URLS``: the Prometheus endpoints policies may name
    (scheme, host, port, path prefix), separated by commas or whitespace; empty: none."""
    metrics: obs.MetricsEndpoint | None = None
    """``RIGHTSIZER_METRICS_PORT`` (0: none) and ``RIGHTSIZER_METRICS_ADDRESS``: where the
    operator serves its Prometheus metrics."""
    rollout_watch: RolloutWatch = field(default_factory=RolloutWatch)
    """``RIGHTSIZER_ROLLOUT_WATCH_SECONDS`` (at least this long after a write, 600) and
    ``RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS`` (past a Deployment's progress deadline,
    120): how long Apply mode watches its writes' rollouts."""


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}: must be a positive number, got {text!r}")
    return value


def tick_s_from_env(env: Mapping[str, str] | None = None) -> float:
    """The tick alone: Kopf needs it when the handlers are registered, before startup."""
    return _number(os.environ if env is None else env, TICK_VARIABLE, OperatorSettings.tick_s)


def settings_from_env(env: Mapping[str, str] | None = None) -> OperatorSettings:
    """Raises ``ValueError`` naming the variable that is wrong (the installer's mistake)."""
    env = os.environ if env is None else env
    defaults = SourceLimits()
    try:
        limits = SourceLimits(
            query_timeout_s=_number(
                env, "RIGHTSIZER_QUERY_TIMEOUT_SECONDS", defaults.query_timeout_s
            ),
            max_response_bytes=int(
                _number(env, "RIGHTSIZER_MAX_RESPONSE_MIB", defaults.max_response_bytes / 2**20)
                * 2**20
            ),
            max_queries=int(_number(env, "RIGHTSIZER_QUERIES_PER_RECONCILE", defaults.max_queries)),
            reconcile_deadline_s=_number(
                env, "RIGHTSIZER_RECONCILE_DEADLINE_SECONDS", defaults.reconcile_deadline_s
            ),
        )
    except ValueError as exc:
        raise ValueError(f"source limits: {exc}") from None
    try:
        allowed = allow_list_from_text(env.get(ALLOWED_PROMETHEUS_VARIABLE, ""))
    except ValueError as exc:
        raise ValueError(f"{ALLOWED_PROMETHEUS_VARIABLE}: {exc}") from None
    try:
        metrics = obs.metrics_endpoint(env)
    except obs.EndpointError as exc:
        raise ValueError(str(exc)) from None
    watch = RolloutWatch()
    return OperatorSettings(
        tick_s=tick_s_from_env(env),
        kopf_workers=int(_number(env, "RIGHTSIZER_WORKERS", OperatorSettings.kopf_workers)),
        reconcile_workers=int(
            _number(env, "RIGHTSIZER_RECONCILE_WORKERS", OperatorSettings.reconcile_workers)
        ),
        slow_source_workers=int(
            _number(env, "RIGHTSIZER_SLOW_SOURCE_WORKERS", OperatorSettings.slow_source_workers)
        ),
        recommendation_writes_per_second=_number(
            env,
            "RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND",
            OperatorSettings.recommendation_writes_per_second,
        ),
        recommendation_write_burst=max(
            1,
            int(
                _number(
                    env,
                    "RIGHTSIZER_RECOMMENDATION_WRITE_BURST",
                    OperatorSettings.recommendation_write_burst,
                )
            ),
        ),
        limits=limits,
        allowed_prometheus=allowed,
        metrics=metrics,
        rollout_watch=RolloutWatch(
            min_s=_number(env, "RIGHTSIZER_ROLLOUT_WATCH_SECONDS", watch.min_s),
            deadline_margin_s=_number(
                env, "RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS", watch.deadline_margin_s
            ),
        ),
    )
