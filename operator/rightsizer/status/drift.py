"""Drift between a workload's template and its pods, for its RightSizeRecommendation
(pure).

When pods are sized in place (and new ones at admission), the template keeps its values:
the object shows, per container, the template's values, the values applied to pods (the
workload's ``rightsizer.dev/pod-resources``), and how many pods run each set of values.
Only for workloads that carry that annotation: elsewhere pods follow their template.
Pods are matched to their workload by their owner (``model/admission.owner_of``), from
one list of the namespace's pods — no request per pod.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rightsizer import names
from rightsizer.engine.recommendation import Resources
from rightsizer.model.admission import (
    Owner,
    PodResourcesError,
    owner_of,
    parse_pod_resources,
)
from rightsizer.model.pods import pod_info
from rightsizer.model.workloads import ContainerResources, WorkloadInfo, parse_resources
from rightsizer.status.recommendation import readable

Values = tuple[Resources, Resources]
"""Requests and limits."""


def _sides(values: Values) -> dict[str, dict[str, str]]:
    return {
        side: q for side, q in zip(("requests", "limits"), map(readable, values), strict=True) if q
    }


def _covers(running: Resources, applied: Resources) -> bool:
    """``running`` has every value ``applied`` sets."""
    return all(
        want is None or want == have
        for want, have in (
            (applied.cpu_millicores, running.cpu_millicores),
            (applied.memory_bytes, running.memory_bytes),
        )
    )


def in_place_workloads(workloads: Iterable[WorkloadInfo]) -> list[WorkloadInfo]:
    """The workloads whose pods are sized in place (the only ones drift is shown for)."""
    return [w for w in workloads if names.POD_RESOURCES_ANNOTATION in w.annotations]


def drift(
    workloads: Sequence[WorkloadInfo], pods: Sequence[Mapping[str, Any]] | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Workload (``Kind/name``) → container → its ``drift`` entry; ``pods``: the
    namespace's pods (None: not listed, so no ``running``)."""
    wanted = {Owner(w.kind, w.name): w for w in in_place_workloads(workloads)}
    running: dict[Owner, Counter[tuple[str, Values]]] = {o: Counter() for o in wanted}
    for body in pods or ():
        owner = owner_of(body.get("metadata") or {})
        if owner not in wanted:
            continue
        for container in pod_info(body).containers:
            now: ContainerResources = container.actual or container.wanted
            running[owner][(container.name, (now.requests, now.limits))] += 1
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for owner, workload in wanted.items():
        try:
            applied = parse_pod_resources(workload.annotations[names.POD_RESOURCES_ANNOTATION])
        except PodResourcesError:
            continue
        entries: dict[str, dict[str, Any]] = {}
        for c in workload.containers:
            sides = applied.containers.get(c.name) or {}
            given = (parse_resources(sides.get("requests")), parse_resources(sides.get("limits")))
            template = (c.requests, c.limits)
            entry: dict[str, Any] = {"template": _sides(template), "applied": _sides(given)}
            if pods is not None:
                counts = [(v, n) for (name, v), n in running[owner].items() if name == c.name]
                counts.sort(key=lambda item: (-item[1], str(_sides(item[0]))))
                entry["running"] = [
                    {**_sides(v), "pods": n, "matches": _matches(v, given, template)}
                    for v, n in counts
                ]
            entries[c.name] = entry
        out[workload.ref] = entries
    return out


def _matches(values: Values, applied: Values, template: Values) -> str:
    if sides_set(applied) and all(_covers(r, a) for r, a in zip(values, applied, strict=True)):
        return "Applied"
    if values == template:
        return "Template"
    return "Neither"


def sides_set(values: Values) -> bool:
    return any(v is not None for r in values for v in (r.cpu_millicores, r.memory_bytes))
