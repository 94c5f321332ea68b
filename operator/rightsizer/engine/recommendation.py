"""What the engine answers: per-container recommendations in integer millicores/bytes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """A CPU/memory pair; ``None`` means "not set" (no request, no limit, no bound)."""

    cpu_millicores: int | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class KeepBand:
    """Hysteresis: values in force inside these bands are kept as they are, as VPA's
    updater keeps a request between its lower and upper bound. Only a value that leaves
    its band (and moves by the minimum change) makes a write, and the write moves every
    value to the recommendation. ``None`` in a bound: no band on that side."""

    request_low: Resources = Resources()
    request_high: Resources = Resources()
    limit_low: Resources = Resources()
    limit_high: Resources = Resources()


@dataclass(frozen=True)
class ContainerRecommendation:
    """The recommendation for one (namespace, workload, container)."""

    namespace: str
    workload: str
    container: str
    target: Resources
    lower_bound: Resources
    upper_bound: Resources
    uncapped_target: Resources
    limits: Resources
    cpu_samples: int
    memory_samples: int
    confidence: float
    """History length in days (VPA's confidence): min(span, samples at 1/min)."""
    current_requests: Resources
    current_limits: Resources
    peak_memory_bytes: float
    """Largest working set observed, for guardrails (never size memory below it)."""
    oom_kills: int
    history_span_s: float = 0.0
    """Time between the first and the last CPU sample."""
    floor_added: Resources = Resources(0, 0)
    """How far the strategy's own floors (a minimum request, a per-pod minimum) raised the
    target above what usage asked for, before rounding and the policy's bounds."""
    keep: KeepBand | None = None
    """Where the values in force may stay (hysteresis); None: the minimum change alone
    decides (``model/change.py``)."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.workload, self.container)
