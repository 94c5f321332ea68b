"""HorizontalPodAutoscalers as request changes see them: small, typed, pure (issue 16).

An HPA that scales on a resource's *utilization* compares usage with the pods' requests:
utilization = usage ÷ request. Changing a request therefore moves the HPA's scale point —
halving a CPU request doubles the measured utilization and the HPA scales out. Keeping
the absolute scale point where it was means changing the HPA's target with the request:
U_new = round(U_old × r_old ÷ r_new), so that U_new × r_new = U_old × r_old.

* A ``Resource`` metric is pod-level: the HPA divides the pod's usage by the *sum* of its
  containers' requests, so the sum is what is compensated.
* A ``ContainerResource`` metric reads one container: its own request.
* ``AverageValue`` targets are absolute quantities: a request change does not move them.

This module reads the parts of an autoscaling/v2 HPA that matter and decides, with no I/O,
what the compensating target change is, or why there is none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from rightsizer.engine.recommendation import Resources
from rightsizer.names import GROUP

#: On an HPA: the targets before the operator's last change, JSON, so it can be reverted.
HPA_RECORD_ANNOTATION = f"{GROUP}/hpa-previous"
RESOURCES = ("cpu", "memory")


class MetricSource(StrEnum):
    """Where an HPA metric reads the resource: the whole pod, or one container."""

    RESOURCE = "Resource"
    CONTAINER_RESOURCE = "ContainerResource"


@dataclass(frozen=True)
class ResourceMetric:
    """One ``spec.metrics[]`` entry of type ``Resource`` or ``ContainerResource``."""

    index: int
    """Its position in ``spec.metrics`` (the JSON patch's path)."""
    source: MetricSource
    resource: str
    """``cpu`` or ``memory``."""
    container: str | None
    """The container a ``ContainerResource`` metric reads; None for ``Resource``."""
    target_type: str
    """``Utilization`` or ``AverageValue`` (``Value`` is not allowed for these sources)."""
    utilization_percent: int | None = None
    """``averageUtilization`` of a ``Utilization`` target."""

    @property
    def path(self) -> str:
        """JSON pointer of its ``averageUtilization``."""
        field = "resource" if self.source is MetricSource.RESOURCE else "containerResource"
        return f"/spec/metrics/{self.index}/{field}/target/averageUtilization"


@dataclass(frozen=True)
class HpaInfo:
    """What request changes need to know of one HPA."""

    namespace: str
    name: str
    target_kind: str
    target_name: str
    resource_version: str
    metrics: tuple[ResourceMetric, ...]
    has_annotations: bool = False
    """Whether ``metadata.annotations`` exists (a JSON patch cannot add into a missing map)."""
    uid: str = ""

    def body(self) -> dict[str, Any]:
        """A minimal object reference for Events."""
        return {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }  # fmt: skip

    def metric(self, index: int) -> ResourceMetric | None:
        """Its metric at ``spec.metrics[index]`` (None: not a cpu/memory one)."""
        return next((m for m in self.metrics if m.index == index), None)

    @property
    def target_ref(self) -> str:
        """``Kind/name`` of the workload it scales (as ``WorkloadInfo.ref``)."""
        return f"{self.target_kind}/{self.target_name}"

    @property
    def scaled_resources(self) -> frozenset[str]:
        """The resources it scales on, whatever the target type."""
        return frozenset(m.resource for m in self.metrics)


def hpa_info(obj: Mapping[str, Any]) -> HpaInfo:
    """An autoscaling/v2 HPA (a dict as the API returns it) read into ``HpaInfo``.
    Metrics of other types (Pods, Object, External) and unknown resources are skipped."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    target = spec.get("scaleTargetRef") or {}
    metrics = []
    for i, m in enumerate(spec.get("metrics") or []):
        kind = m.get("type")
        if kind not in (MetricSource.RESOURCE, MetricSource.CONTAINER_RESOURCE):
            continue
        source = MetricSource(kind)
        body = m.get("resource" if source is MetricSource.RESOURCE else "containerResource") or {}
        resource = str(body.get("name", ""))
        if resource not in RESOURCES:
            continue
        t = body.get("target") or {}
        utilization = t.get("averageUtilization")
        metrics.append(
            ResourceMetric(
                index=i,
                source=source,
                resource=resource,
                container=str(body["container"]) if source is MetricSource.CONTAINER_RESOURCE
                and body.get("container") else None,
                target_type=str(t.get("type", "")),
                utilization_percent=int(utilization) if utilization is not None else None,
            )
        )  # fmt: skip
    return HpaInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        target_kind=str(target.get("kind", "")),
        target_name=str(target.get("name", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        metrics=tuple(metrics),
        has_annotations=meta.get("annotations") is not None,
        uid=str(meta.get("uid", "")),
    )


@dataclass(frozen=True)
class UtilizationBounds:
    """The targets a compensation may set; outside them the resource is held."""

    low_percent: int = 10
    high_percent: int = 200


@dataclass(frozen=True)
class TargetChange:
    """One ``averageUtilization`` moved to keep the HPA's absolute scale point."""

    metric: ResourceMetric
    before_percent: int
    after_percent: int
    request_before: int
    """The request it is relative to (millicores or bytes; summed over the pod for
    ``Resource``), before and after the request change."""
    request_after: int

    def describe(self) -> str:
        """``HPA target cpu 60%→120% (pod requests 1000m→500m)``."""
        unit = "m" if self.metric.resource == "cpu" else " bytes"
        whose = (
            "pod requests" if self.metric.source is MetricSource.RESOURCE
            else f"container {self.metric.container} request"
        )  # fmt: skip
        return (
            f"HPA target {self.metric.resource} {self.before_percent}%→{self.after_percent}% "
            f"({whose} {self.request_before}{unit}→{self.request_after}{unit})"
        )


@dataclass(frozen=True)
class Compensation:
    """What one HPA needs when a workload's requests change."""

    changes: tuple[TargetChange, ...] = ()
    held: Mapping[str, str] | None = None
    """Resources whose request must not change, and why (the new target would leave the
    bounds, or the HPA cannot compute utilization at all)."""
    unaffected: tuple[str, ...] = ()
    """Why some metrics need nothing (``AverageValue`` targets, an unchanged request)."""


def _request(r: Resources, resource: str) -> int | None:
    return r.cpu_millicores if resource == "cpu" else r.memory_bytes


def relative_request(metric: ResourceMetric, requests: Mapping[str, Resources]) -> int | None:
    """The request a metric's utilization is relative to; None when the HPA could not
    compute it (a container without that request: the HPA reports an error)."""
    if metric.source is MetricSource.CONTAINER_RESOURCE:
        found = requests.get(metric.container or "")
        return None if found is None else _request(found, metric.resource)
    values = [_request(r, metric.resource) for r in requests.values()]
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def compensated_percent(before_percent: int, request_before: int, request_after: int) -> int:
    """round(U × r_old ÷ r_new), halves rounded up: the same absolute scale point."""
    return math.floor(before_percent * request_before / request_after + 0.5)


def compensate(
    hpa: HpaInfo,
    before: Mapping[str, Resources],
    after: Mapping[str, Resources],
    bounds: UtilizationBounds = UtilizationBounds(),
) -> Compensation:
    """The target changes that keep ``hpa``'s scale points when the pod's requests go from
    ``before`` to ``after`` (container → requests, every container of the pod template)."""
    changes: list[TargetChange] = []
    held: dict[str, str] = {}
    unaffected: list[str] = []
    for m in hpa.metrics:
        what = f"{m.source} {m.resource}" + (f" of {m.container}" if m.container else "")
        old, new = relative_request(m, before), relative_request(m, after)
        if old is None or new is None or old <= 0 or new <= 0:
            if old != new:
                held[m.resource] = (
                    f"HPA {hpa.name} scales on {what} but a container has no {m.resource} "
                    "request: its utilization is undefined"
                )
            continue
        if old == new:
            unaffected.append(f"{what}: request unchanged")
            continue
        if m.target_type != "Utilization" or m.utilization_percent is None:
            unaffected.append(f"{what}: {m.target_type or 'no'} target, absolute: no change needed")
            continue
        percent = compensated_percent(m.utilization_percent, old, new)
        if not bounds.low_percent <= percent <= bounds.high_percent:
            held[m.resource] = (
                f"HPA {hpa.name} target {m.resource} would go {m.utilization_percent}%→{percent}%, "
                f"outside {bounds.low_percent}–{bounds.high_percent}%"
            )
            continue
        if percent != m.utilization_percent:
            changes.append(TargetChange(m, m.utilization_percent, percent, old, new))
        else:
            unaffected.append(f"{what}: the target rounds to the same {percent}%")
    return Compensation(tuple(changes), held or None, tuple(unaffected))


@dataclass(frozen=True)
class TargetOutlook:
    """One cpu/memory metric of an HPA and what a request change would do to its target:
    what the recommendation objects and ``report`` show before anything is written."""

    hpa: str
    metric: ResourceMetric
    target_percent: int | None
    """Its ``averageUtilization`` now (None: an ``AverageValue`` target)."""
    compensated_percent: int | None
    """The target that keeps the scale point after the change (None: none needed, or
    not computable)."""
    within_bounds: bool
    """Whether ``compensated_percent`` is within the bounds (else Apply mode with
    ``Compensate`` holds the resource)."""
    text: str

    def short(self) -> str:
        """``HPA web cpu 60%→120%``, ``HPA web memory AverageValue: no change needed``."""
        what = f"HPA {self.hpa} {self.metric.resource}"
        if self.metric.container:
            what += f" ({self.metric.container})"
        if self.target_percent is None:
            return f"{what} {self.metric.target_type or 'no'} target: no change needed"
        if self.compensated_percent is None:
            return f"{what} {self.target_percent}%: {self.text}"
        out = f"{what} {self.target_percent}%→{self.compensated_percent}%"
        return out if self.within_bounds else f"{out} (out of bounds: held)"


def target_outlook(
    hpas: Sequence[HpaInfo],
    before: Mapping[str, Resources],
    after: Mapping[str, Resources],
    bounds: UtilizationBounds = UtilizationBounds(),
) -> list[TargetOutlook]:
    """Per cpu/memory metric of each HPA (by name, then position), the target change that
    requests going from ``before`` to ``after`` (container → requests, every container of
    the pod) imply, decided by ``compensate`` one metric at a time."""
    out: list[TargetOutlook] = []
    for hpa in sorted(hpas, key=lambda h: h.name):
        for m in hpa.metrics:
            comp = compensate(replace(hpa, metrics=(m,)), before, after, bounds)
            old, new = relative_request(m, before), relative_request(m, after)
            percent = m.utilization_percent if m.target_type == "Utilization" else None
            if comp.changes:
                c = comp.changes[0]
                out.append(TargetOutlook(hpa.name, m, percent, c.after_percent, True,
                                         c.describe()))  # fmt: skip
            elif comp.held:
                moved = (
                    compensated_percent(percent, old, new)
                    if percent is not None and old and new and old > 0 and new > 0 else None
                )  # fmt: skip
                out.append(TargetOutlook(hpa.name, m, percent, moved, False,
                                         comp.held[m.resource]))  # fmt: skip
            elif comp.unaffected:
                out.append(TargetOutlook(hpa.name, m, percent, percent, True, comp.unaffected[0]))
            else:
                out.append(TargetOutlook(
                    hpa.name, m, percent, None, True,
                    f"a container has no {m.resource} request: utilization undefined",
                ))  # fmt: skip
    return out


def hpa_patch(
    hpa: HpaInfo, changes: Sequence[TargetChange], record_time: str
) -> list[dict[str, Any]]:
    """A JSON patch that moves the targets only if they are still the ones decided on
    (``test`` ops: a concurrent edit fails the whole patch, to be decided again), and
    records the previous targets in ``HPA_RECORD_ANNOTATION``."""
    ops: list[dict[str, Any]] = []
    for c in changes:
        ops.append({"op": "test", "path": c.metric.path, "value": c.before_percent})
        ops.append({"op": "replace", "path": c.metric.path, "value": c.after_percent})
    record = {
        "time": record_time,
        "targets": {str(c.metric.index): [c.before_percent, c.after_percent] for c in changes},
    }
    if hpa.has_annotations:
        key = HPA_RECORD_ANNOTATION.replace("~", "~0").replace("/", "~1")
        ops.append(
            {"op": "add", "path": f"/metadata/annotations/{key}", "value": json.dumps(record)}
        )
    else:
        ops.append({"op": "add", "path": "/metadata/annotations",
                    "value": {HPA_RECORD_ANNOTATION: json.dumps(record)}})  # fmt: skip
    return ops


def revert_changes(changes: Sequence[TargetChange]) -> list[TargetChange]:
    """The changes that put the targets back (after a failed rollout or resize)."""
    return [
        TargetChange(c.metric, c.after_percent, c.before_percent, c.request_after, c.request_before)
        for c in changes
    ]
