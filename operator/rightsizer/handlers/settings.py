"""The operator's settings from its environment (set in ``manifests/deployment.yaml``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from rightsizer.guardrails.rollout import RolloutWatch
from rightsizer.sources.limits import SourceLimits


@dataclass(frozen=True)
class OperatorSettings:
    reconcile_workers: int = 8
    """``RIGHTSIZER_RECONCILE_WORKERS``: threads for reconciles of well-behaved policies."""
    slow_source_workers: int = 2
    """``RIGHTSIZER_SLOW_SOURCE_WORKERS``: threads for policies whose last read hit a limit."""
    limits: SourceLimits = field(default_factory=SourceLimits)
    """``RIGHTSIZER_QUERY_TIMEOUT_SECONDS``, ``RIGHTSIZER_MAX_RESPONSE_MIB``,
    ``RIGHTSIZER_QUERIES_PER_RECONCILE``, ``RIGHTSIZER_RECONCILE_DEADLINE_SECONDS``."""
    rollout_watch: RolloutWatch = field(default_factory=RolloutWatch)
    """``RIGHTSIZER_ROLLOUT_WATCH_SECONDS`` (at least this long after a write, 600) and
    ``RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS`` (past a Deployment's progress deadline,
    120): how long Apply mode watches its writes' rollouts."""


def settings_from_env(env: Mapping[str, str] | None = None) -> OperatorSettings:
    """Raises ``ValueError`` naming the variable that is wrong (the installer's mistake)."""
    env = os.environ if env is None else env
    defaults = SourceLimits()

    def number(name: str, default: float) -> float:
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

    try:
        limits = SourceLimits(
            query_timeout_s=number("RIGHTSIZER_QUERY_TIMEOUT_SECONDS", defaults.query_timeout_s),
            max_response_bytes=int(
                number("RIGHTSIZER_MAX_RESPONSE_MIB", defaults.max_response_bytes / 2**20) * 2**20
            ),
            max_queries=int(number("RIGHTSIZER_QUERIES_PER_RECONCILE", defaults.max_queries)),
            reconcile_deadline_s=number(
                "RIGHTSIZER_RECONCILE_DEADLINE_SECONDS", defaults.reconcile_deadline_s
            ),
        )
    except ValueError as exc:
        raise ValueError(f"source limits: {exc}") from None
    watch = RolloutWatch()
    return OperatorSettings(
        reconcile_workers=int(number("RIGHTSIZER_RECONCILE_WORKERS", 8)),
        slow_source_workers=int(number("RIGHTSIZER_SLOW_SOURCE_WORKERS", 2)),
        limits=limits,
        rollout_watch=RolloutWatch(
            min_s=number("RIGHTSIZER_ROLLOUT_WATCH_SECONDS", watch.min_s),
            deadline_margin_s=number(
                "RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS", watch.deadline_margin_s
            ),
        ),
    )
