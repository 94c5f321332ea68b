"""The operator's settings from its environment (set in ``manifests/deployment.yaml``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from rightsizer.sources.limits import SourceLimits


@dataclass(frozen=True)
class OperatorSettings:
    reconcile_workers: int = 8
    """``RIGHTSIZER_RECONCILE_WORKERS``: threads for reconciles of well-behaved policies."""
    slow_source_workers: int = 2
    """``RIGHTSIZER_SLOW_SOURCE_WORKERS``: threads for policies whose last read hit a limit."""
    recommendation_writes_per_second: float = 50.0
    """``RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND``: the pace of writes to
    RightSizeRecommendation objects, all policies together (a 429 slows it down)."""
    recommendation_write_burst: int = 100
    """``RIGHTSIZER_RECOMMENDATION_WRITE_BURST``: writes sent at once before the pace applies."""
    limits: SourceLimits = field(default_factory=SourceLimits)
    """``RIGHTSIZER_QUERY_TIMEOUT_SECONDS``, ``RIGHTSIZER_MAX_RESPONSE_MIB``,
    ``RIGHTSIZER_QUERIES_PER_RECONCILE``, ``RIGHTSIZER_RECONCILE_DEADLINE_SECONDS``."""


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
    return OperatorSettings(
        reconcile_workers=int(number("RIGHTSIZER_RECONCILE_WORKERS", 8)),
        slow_source_workers=int(number("RIGHTSIZER_SLOW_SOURCE_WORKERS", 2)),
        recommendation_writes_per_second=number("RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND", 50),
        recommendation_write_burst=max(
            1, int(number("RIGHTSIZER_RECOMMENDATION_WRITE_BURST", 100))
        ),
        limits=limits,
    )
