"""The HPA target changes a report's recommendations imply (``report --kube``), pure.

For each workload an HPA scales on cpu or memory, per metric: its target now and the one
that keeps its scale point once the pod's requests go from today's to the recommended
ones (``model/hpa.target_outlook``), as ``hpaResources: Compensate`` would move it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rightsizer.engine.recommendation import Resources
from rightsizer.model.assessment import Assessment
from rightsizer.model.hpa import TargetOutlook, UtilizationBounds, hpa_info, target_outlook

WorkloadKey = tuple[str, str]
DEFAULT_BOUNDS = UtilizationBounds()
"""(namespace, ``Kind/name``)."""


@dataclass(frozen=True)
class WorkloadHpa:
    namespace: str
    workload: str
    outlook: tuple[TargetOutlook, ...]

    def line(self) -> str:
        """``shop/Deployment/web: HPA web cpu 60%→120%; ...``."""
        return f"{self.namespace}/{self.workload}: " + "; ".join(o.short() for o in self.outlook)

    def document(self) -> list[dict[str, Any]]:
        out = []
        for o in self.outlook:
            item: dict[str, Any] = {
                "namespace": self.namespace, "workload": self.workload, "hpa": o.hpa,
                "resource": o.metric.resource, "source": o.metric.source.value,
                "targetType": o.metric.target_type,
            }  # fmt: skip
            if o.metric.container:
                item["container"] = o.metric.container
            if o.target_percent is not None:
                item["targetPercent"] = o.target_percent
            if o.compensated_percent is not None:
                item["compensatedPercent"] = o.compensated_percent
            item.update(withinBounds=o.within_bounds, message=o.short())
            out.append(item)
        return out


def _recommended(now: Resources, target: Resources) -> Resources:
    return Resources(
        target.cpu_millicores if target.cpu_millicores is not None else now.cpu_millicores,
        target.memory_bytes if target.memory_bytes is not None else now.memory_bytes,
    )


def hpa_changes(
    rows: Sequence[Assessment], hpas: Sequence[Mapping[str, Any]],
    bounds: UtilizationBounds = DEFAULT_BOUNDS,
) -> list[WorkloadHpa]:  # fmt: skip
    """Per workload with rows that an HPA in ``hpas`` (the live objects) scales, its
    metrics' target changes; requests now as the recommendations saw them, the
    recommended ones for containers with enough data (the others keep theirs)."""
    by_target: dict[WorkloadKey, list[Any]] = {}
    for body in hpas:
        info = hpa_info(body)
        if info.metrics:
            by_target.setdefault((info.namespace, info.target_ref), []).append(info)
    by_key: dict[WorkloadKey, list[Assessment]] = {}
    for row in rows:
        r = row.recommendation
        by_key.setdefault((r.namespace, r.workload), []).append(row)
    out = []
    for key, group in sorted(by_key.items()):
        found = by_target.get(key)
        if not found:
            continue
        before = {r.recommendation.container: r.recommendation.current_requests for r in group}
        after = {
            r.recommendation.container: _recommended(
                r.recommendation.current_requests, r.recommendation.target
            )
            for r in group
            if r.enough_data
        }
        outlook = target_outlook(found, before, before | after, bounds)
        out.append(WorkloadHpa(key[0], key[1], tuple(outlook)))
    return out
