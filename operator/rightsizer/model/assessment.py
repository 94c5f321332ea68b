"""The assessment of each container's recommendation (its row in reports, statuses and
annotations), severity and totals (pure).

Severity is relative to the current request, not absolute: 10m → 600m CPU matters even if
it is small in cores. Containers with too little history are reported as such and get no
recommendation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rightsizer.engine.recommendation import ContainerRecommendation

GIB = 2**30


class Severity(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_ORDER = list(Severity)


def change_severity(current: int | None, target: int | None) -> Severity:
    """By the ratio target/current: ×4 or ÷4 critical, ×1.5 or ÷2 warning (scale-ups are
    the riskier side: starvation, OOM), ≥ 10 % info; no request set at all is a warning."""
    if target is None:
        return Severity.OK
    if current is None or current == 0:
        return Severity.WARNING
    ratio = target / current
    if ratio >= 4 or ratio <= 0.25:
        return Severity.CRITICAL
    if ratio >= 1.5 or ratio <= 0.5:
        return Severity.WARNING
    if abs(ratio - 1) >= 0.10:
        return Severity.INFO
    return Severity.OK


@dataclass(frozen=True)
class Assessment:
    recommendation: ContainerRecommendation
    replicas: int
    enough_data: bool
    reason: str
    """Why there is no recommendation (empty when there is one)."""
    cpu_severity: Severity
    memory_severity: Severity

    @property
    def severity(self) -> Severity:
        return max(self.cpu_severity, self.memory_severity, key=_ORDER.index)


@dataclass(frozen=True)
class Totals:
    """Across all containers with a recommendation, × replicas. Positive = freed."""

    cpu_cores_freed: float
    cpu_cores_added: float
    memory_gib_freed: float
    memory_gib_added: float
    containers: int
    insufficient_data: int


def assess(
    recs: Sequence[ContainerRecommendation],
    replicas: Mapping[tuple[str, str], int],
    *,
    min_history_s: float,
    min_samples: int,
) -> list[Assessment]:
    rows = []
    for rec in recs:
        span = rec.history_span_s
        reasons = []
        if span < min_history_s:
            reasons.append(f"{span / 3600:.1f} h of history (< {min_history_s / 3600:g} h)")
        if rec.cpu_samples < min_samples:
            reasons.append(f"{rec.cpu_samples} CPU samples (< {min_samples})")
        enough = not reasons
        rows.append(
            Assessment(
                recommendation=rec,
                replicas=replicas.get((rec.namespace, rec.workload), 1),
                enough_data=enough,
                reason="; ".join(reasons),
                cpu_severity=change_severity(
                    rec.current_requests.cpu_millicores, rec.target.cpu_millicores
                )
                if enough
                else Severity.OK,
                memory_severity=change_severity(
                    rec.current_requests.memory_bytes, rec.target.memory_bytes
                )
                if enough
                else Severity.OK,
            )
        )
    return rows


def totals(rows: Sequence[Assessment]) -> Totals:
    cpu_freed = cpu_added = mem_freed = mem_added = 0.0
    for row in rows:
        if not row.enough_data:
            continue
        rec = row.recommendation
        for current, target, scale, is_cpu in (
            (rec.current_requests.cpu_millicores, rec.target.cpu_millicores, 1000.0, True),
            (rec.current_requests.memory_bytes, rec.target.memory_bytes, float(GIB), False),
        ):
            if current is None or target is None:
                continue
            delta = (current - target) * row.replicas / scale
            if is_cpu:
                cpu_freed += max(delta, 0.0)
                cpu_added += max(-delta, 0.0)
            else:
                mem_freed += max(delta, 0.0)
                mem_added += max(-delta, 0.0)
    return Totals(
        cpu_cores_freed=cpu_freed,
        cpu_cores_added=cpu_added,
        memory_gib_freed=mem_freed,
        memory_gib_added=mem_added,
        containers=sum(1 for r in rows if r.enough_data),
        insufficient_data=sum(1 for r in rows if not r.enough_data),
    )
