"""What the admission webhook does to a pod being created: pure, no I/O.

When Apply mode sizes a workload's pods in place, it writes the values on the workload
(``rightsizer.dev/pod-resources``) and leaves the template alone. A pod created later
(scale-up, a replaced pod) would start with the template's values; the webhook gives it
the workload's values instead, as they are written there, and records on the pod what it
changed (``rightsizer.dev/admission``).

It never makes a pod whose QoS class differs from the one the template gives, nor one
with a request above its limit: then the pod keeps the template's values and the note
says why. It never refuses a pod: whatever goes wrong, the pod is created as asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rightsizer import names
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import Resources
from rightsizer.model.pods import qos_class
from rightsizer.model.workloads import ContainerResources, PolicyInfo, parse_resources
from rightsizer.quantity import QuantityError, cpu_millicores, memory_bytes

#: The label the ReplicaSet controller puts on its pods: the suffix of the ReplicaSet's
#: name after its Deployment's (``web-7d4b9c`` → Deployment ``web``).
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
SIDES = ("requests", "limits")
RESOURCES = ("cpu", "memory")
_SINGULAR = {"requests": "request", "limits": "limit"}


class PodResourcesError(ValueError):
    """The workload's ``rightsizer.dev/pod-resources`` cannot be read."""


@dataclass(frozen=True)
class PodResources:
    """``rightsizer.dev/pod-resources`` of a workload: the values its pods are sized to,
    as written (only the resources the operator sets)."""

    policy: str
    time: str
    containers: Mapping[str, Mapping[str, Mapping[str, str]]]
    """Container → ``requests``/``limits`` → ``cpu``/``memory`` → quantity."""


def parse_pod_resources(text: str) -> PodResources:
    """Raises ``PodResourcesError`` when the JSON or a quantity is not what it should be."""
    try:
        data = json.loads(text)
    except ValueError:
        raise PodResourcesError("not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("containers"), dict):
        raise PodResourcesError("no containers")
    containers: dict[str, dict[str, dict[str, str]]] = {}
    for name, sides in data["containers"].items():
        if not isinstance(sides, dict):
            raise PodResourcesError(f"container {name}: not an object")
        out: dict[str, dict[str, str]] = {}
        for side in SIDES:
            values = sides.get(side) or {}
            if not isinstance(values, dict):
                raise PodResourcesError(f"container {name}: {side} is not an object")
            kept = {r: str(values[r]) for r in RESOURCES if values.get(r) is not None}
            try:
                for resource, quantity in kept.items():
                    (cpu_millicores if resource == "cpu" else memory_bytes)(quantity)
            except QuantityError as exc:
                raise PodResourcesError(f"container {name}: {side}: {exc}") from None
            if kept:
                out[side] = kept
        if out:
            containers[str(name)] = out
    return PodResources(str(data.get("policy") or ""), str(data.get("time") or ""), containers)


@dataclass(frozen=True)
class Owner:
    """The workload a pod belongs to, as its owner reference and labels tell."""

    kind: str
    name: str


def owner_of(meta: Mapping[str, Any]) -> Owner | None:
    """The Deployment, StatefulSet or DaemonSet that controls a pod, from its metadata
    alone (no API call): a ReplicaSet's name less ``-<pod-template-hash>`` is its
    Deployment's. None: no such owner (a bare pod, a Job's, a ReplicaSet of its own)."""
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
    if len(refs) != 1:
        return None
    ref = refs[0]
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    if not str(ref.get("apiVersion") or "").startswith("apps/"):
        return None
    if kind in ("StatefulSet", "DaemonSet"):
        return Owner(kind, name)
    if kind == "ReplicaSet":
        suffix = "-" + str((meta.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL) or "")
        if len(suffix) > 1 and name.endswith(suffix) and len(name) > len(suffix):
            return Owner("Deployment", name[: -len(suffix)])
    return None


def policy_modes(policies: Iterable[PolicyInfo]) -> dict[str, str]:
    """The policies' sizing modes, keyed as the in-place path names a policy in a
    workload's ``pod-resources`` (``namespace/name``, ``model.inplace``)."""
    return {f"{p.namespace}/{p.name}": sizing_mode(p.spec) for p in policies}


def sizing_mode(policy_spec: Mapping[str, Any]) -> str:
    """A policy's mode as the webhook sees it: ``Apply`` only when it sizes pods in place
    (method ``InPlace`` or ``InPlaceOrRollout``); a ``Rollout`` policy changes templates,
    so a ``pod-resources`` annotation left from an earlier method sizes nothing."""
    update = policy_spec.get("update") or {}
    mode = str(update.get("mode") or "Recommend")
    method = str(update.get("method") or "Rollout")
    if mode == "Apply" and method == "Rollout":
        return "Apply with method Rollout"
    return mode


@dataclass(frozen=True)
class WorkloadFacts:
    """What the operator knows of the owning workload and its policy (from its caches)."""

    annotations: Mapping[str, str]
    selector: Mapping[str, str]
    policy_modes: Mapping[str, str] = field(default_factory=dict)
    """Policies of the namespace, by ``namespace/name`` (as ``pod-resources`` names its
    policy) → their mode as the webhook sees it (``policy_modes``)."""
    limit_ranges: Sequence[LimitRangeItem] = ()
    """The namespace's LimitRange items: values outside their min/max would make the
    API server refuse the pod."""
    quotas: Sequence[Mapping[str, Any]] = ()
    """The namespace's ResourceQuotas: ``hard`` and ``used`` (quantities by resource name,
    as the quota controller last counted them)."""


@dataclass(frozen=True)
class AdmissionDecision:
    """What to do to the pod: ``containers`` (index → the pod's container with its new
    resources) and ``note`` for ``rightsizer.dev/admission`` (empty: leave the pod alone
    and say nothing, as for a pod that is none of ours)."""

    containers: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.containers)


def _number(resource: str, quantity: str | None) -> int | None:
    if quantity is None:
        return None
    return cpu_millicores(quantity) if resource == "cpu" else memory_bytes(quantity)


def _parsed(resources: Mapping[str, Any], name: str) -> ContainerResources:
    return ContainerResources(
        name, parse_resources(resources.get("requests")), parse_resources(resources.get("limits"))
    )


def decide(pod: Mapping[str, Any], facts: WorkloadFacts | None) -> AdmissionDecision:
    """The pod's containers with the workload's pod-resources, or why not."""
    if facts is None:
        return AdmissionDecision()
    text = facts.annotations.get(names.POD_RESOURCES_ANNOTATION)
    if text is None:
        return AdmissionDecision()
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in facts.selector.items()):
        return AdmissionDecision()  # not the workload's pod after all
    if facts.annotations.get(names.EXCLUDE_ANNOTATION) == "true":
        return AdmissionDecision(note=f"skipped: the workload has {names.EXCLUDE_ANNOTATION}")
    try:
        wanted = parse_pod_resources(text)
    except PodResourcesError as exc:
        return AdmissionDecision(note=f"skipped: {names.POD_RESOURCES_ANNOTATION}: {exc}")
    by = f" (policy {wanted.policy}, {wanted.time})" if wanted.policy else ""
    mode = facts.policy_modes.get(wanted.policy)
    if mode != "Apply":
        state = "is gone" if mode is None else f"is in mode {mode}"
        return AdmissionDecision(note=f"skipped: the policy {wanted.policy!r} {state}")
    spec = pod.get("spec") or {}
    if spec.get("resources"):
        # Pod-level resources decide the QoS class and bound the containers' values.
        return AdmissionDecision(note=f"skipped: the pod sets pod-level resources{by}")
    containers: Sequence[Mapping[str, Any]] = spec.get("containers") or []
    before = [_parsed(c.get("resources") or {}, str(c.get("name"))) for c in containers]
    changed: dict[int, dict[str, Any]] = {}
    after = list(before)
    notes: list[str] = []
    for index, container in enumerate(containers):
        name = str(container.get("name"))
        want = wanted.containers.get(name)
        if not want:
            continue
        resources = {s: dict(v) for s, v in (container.get("resources") or {}).items()}
        moves = []
        for side in SIDES:
            for resource, quantity in (want.get(side) or {}).items():
                old = (resources.get(side) or {}).get(resource)
                if old is not None and _number(resource, str(old)) == _number(resource, quantity):
                    continue
                resources.setdefault(side, {})[resource] = quantity
                moves.append(f"{resource} {_SINGULAR[side]} {old or 'unset'}→{quantity}")
        if not moves:
            continue
        new = dict(container)
        new["resources"] = resources
        changed[index] = new
        after[index] = _parsed(resources, name)
        notes.append(f"{name}: " + "; ".join(moves))
    if not changed:
        return AdmissionDecision()
    for c in after:
        for attr, resource in (("cpu_millicores", "cpu"), ("memory_bytes", "memory")):
            request, limit = getattr(c.requests, attr), getattr(c.limits, attr)
            if request is not None and limit is not None and request > limit:
                return AdmissionDecision(
                    note=f"skipped: container {c.name}: the {resource} request would exceed "
                    f"its limit{by}"
                )
    outside = _outside_limit_ranges(after, facts.limit_ranges) or _over_quota(
        before, after, facts.quotas
    )
    if outside:
        return AdmissionDecision(note=f"skipped: {outside}{by}")
    template_class, new_class = qos_class(before), qos_class(after)
    if new_class != template_class:
        return AdmissionDecision(
            note=f"skipped: the pod's QoS class would change from {template_class} to "
            f"{new_class}{by}"
        )
    return AdmissionDecision(containers=changed, note=" | ".join(notes) + by)


def _outside(values: Resources, item: LimitRangeItem, what: str) -> str:
    for attr, resource in (("cpu_millicores", "cpu"), ("memory_bytes", "memory")):
        value = getattr(values, attr)
        low, high = getattr(item.min, attr), getattr(item.max, attr)
        if value is None:
            continue
        if low is not None and value < low:
            return f"{what}: {resource} below the LimitRange's {item.type} min"
        if high is not None and value > high:
            return f"{what}: {resource} above the LimitRange's {item.type} max"
    return ""


def _total(values: Sequence[Resources]) -> Resources:
    def add(attr: str) -> int | None:
        known = [getattr(v, attr) for v in values if getattr(v, attr) is not None]
        return sum(known) if known else None

    return Resources(add("cpu_millicores"), add("memory_bytes"))


def _outside_limit_ranges(
    containers: Sequence[ContainerResources], items: Sequence[LimitRangeItem]
) -> str:
    """Why the API server's LimitRanger would refuse these values (empty: it would not)."""
    for item in items:
        if item.type == "Container":
            for c in containers:
                for side, values in (("request", c.requests), ("limit", c.limits)):
                    why = _outside(values, item, f"container {c.name}'s {side}")
                    if why:
                        return why
        elif item.type == "Pod":
            for side in ("requests", "limits"):
                total = _total([getattr(c, side) for c in containers])
                why = _outside(total, item, f"the pod's {side}")
                if why:
                    return why
    return ""


#: Quota resource names → (side, resource) they count.
_QUOTA_KEYS = {
    "requests.cpu": ("requests", "cpu"), "cpu": ("requests", "cpu"),
    "requests.memory": ("requests", "memory"), "memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory"),
}  # fmt: skip


def _over_quota(
    before: Sequence[ContainerResources], after: Sequence[ContainerResources],
    quotas: Sequence[Mapping[str, Any]],
) -> str:  # fmt: skip
    """Why a ResourceQuota would refuse the pod with the new values when it has room for
    the template's (empty: it would not). Only increases can: the quota controller's
    ``used`` counts the pods already there."""
    for quota in quotas:
        hard, used = quota.get("hard") or {}, quota.get("used") or {}
        for key, (side, resource) in _QUOTA_KEYS.items():
            if key not in hard:
                continue
            attr = "cpu_millicores" if resource == "cpu" else "memory_bytes"
            old = getattr(_total([getattr(c, side) for c in before]), attr) or 0
            new = getattr(_total([getattr(c, side) for c in after]), attr) or 0
            try:
                room = _number(resource, str(hard[key]))
                taken = _number(resource, str(used.get(key, "0")))
            except QuantityError:
                continue
            if room is not None and new > old and (taken or 0) + new > room:
                return f"ResourceQuota {quota.get('name')}: {key} would exceed its hard limit"
    return ""
