"""The operator's own Prometheus metrics (served on RIGHTSIZER_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from rightsizer.model.assessment import Assessment

RECOMMENDATION = Gauge(
    "rightsizer_recommendation",
    "Recommended value in base units (cores, bytes) per container, resource and bound.",
    ["namespace", "policy", "workload", "container", "resource", "bound"],
)
RECONCILE_SECONDS = Histogram(
    "rightsizer_reconcile_duration_seconds", "Time one policy reconcile took.", ["namespace"]
)
SOURCE_SECONDS = Histogram(
    "rightsizer_source_read_duration_seconds", "Time reading usage took.", ["source"]
)
SOURCE_ERRORS = Counter(
    "rightsizer_source_errors_total", "Failed reads of a usage source.", ["source"]
)
SKIPS = Counter("rightsizer_skips_total", "Containers or writes held back, by reason.", ["reason"])
WRITES = Counter("rightsizer_workload_writes_total", "Writes to workloads, by kind.", ["kind"])

_series: dict[tuple[str, str], set[tuple[str, ...]]] = {}


def publish(namespace: str, policy: str, rows: Sequence[Assessment]) -> None:
    """Replace the policy's recommendation series with the current ones."""
    fresh: set[tuple[str, ...]] = set()
    for row in rows:
        r = row.recommendation
        if not row.enough_data:
            SKIPS.labels("insufficient_data").inc()
            continue
        for bound, res in (("target", r.target), ("lower", r.lower_bound),
                           ("upper", r.upper_bound)):  # fmt: skip
            for resource, value, scale in (("cpu", res.cpu_millicores, 1000.0),
                                           ("memory", res.memory_bytes, 1.0)):  # fmt: skip
                if value is None:
                    continue
                labels = (namespace, policy, r.workload, r.container, resource, bound)
                RECOMMENDATION.labels(*labels).set(value / scale)
                fresh.add(labels)
    for stale in _series.get((namespace, policy), set()) - fresh:
        RECOMMENDATION.remove(*stale)
    _series[(namespace, policy)] = fresh


def forget(namespace: str, policy: str) -> None:
    for labels in _series.pop((namespace, policy), set()):
        RECOMMENDATION.remove(*labels)
