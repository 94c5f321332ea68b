"""Running pods as in-place resize sees them: small, typed, pure.

A pod's containers can be resized through its ``resize`` subresource (Kubernetes 1.33
beta, 1.35 GA) without a restart where each container's ``resizePolicy`` allows it. The
API server refuses a resize that would change the pod's QoS class; the kubelet reports
the outcome in the pod's status (the resources in force per container, and the
conditions ``PodResizePending`` and ``PodResizeInProgress``). This module reads those
parts of a pod and decides, with no I/O, what one resize would do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rightsizer.engine.recommendation import Resources
from rightsizer.model.workloads import ContainerResources, parse_resources


class QosClass(StrEnum):
    """The pod's Quality of Service class, as the API server computes it."""

    GUARANTEED = "Guaranteed"
    BURSTABLE = "Burstable"
    BEST_EFFORT = "BestEffort"


class ResizeState(StrEnum):
    """Where the kubelet is with the last resize asked of a pod."""

    DONE = "Done"
    """Nothing pending: the resources in force are the ones asked for (or none was asked)."""
    IN_PROGRESS = "InProgress"
    DEFERRED = "Deferred"
    """Not possible now (the node lacks room); the kubelet retries by itself."""
    INFEASIBLE = "Infeasible"
    """Never possible on this node (e.g. more than its allocatable)."""
    ERROR = "Error"
    """The kubelet tried and the runtime failed (``PodResizeInProgress`` reason ``Error``)."""


RESTART_CONTAINER = "RestartContainer"
"""A ``resizePolicy`` that restarts the container when that resource changes."""


@dataclass(frozen=True)
class PodContainer:
    """One container of a running pod: what its spec asks, what is in force, how it resizes."""

    name: str
    wanted: ContainerResources
    """``spec.containers[].resources`` — what a resize last asked for."""
    actual: ContainerResources | None = None
    """``status.containerStatuses[].resources`` — in force (None: not reported yet)."""
    restart_on: frozenset[str] = frozenset()
    """Resources (``cpu``, ``memory``) whose change restarts this container."""
    restart_count: int = 0
    oom_killed_s: float | None = None
    """When the container last ended OOM-killed (None: it never did, as far as the
    status tells)."""


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    containers: tuple[PodContainer, ...]
    qos_class: QosClass | None = None
    """``status.qosClass`` as the API server set it (None: not reported)."""
    resize_state: ResizeState = ResizeState.DONE
    resize_message: str = ""
    owner_uids: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    phase: str = ""
    terminating: bool = False
    """``metadata.deletionTimestamp`` is set."""


def qos_class(containers: Iterable[ContainerResources]) -> QosClass:
    """The QoS class of a pod with these containers (CPU and memory only, requests
    defaulted from limits as the API server does at admission)."""
    any_set = False
    guaranteed = True
    for c in containers:
        for resource in ("cpu_millicores", "memory_bytes"):
            limit = getattr(c.limits, resource)
            request = getattr(c.requests, resource)
            if request is None:
                request = limit
            if request is not None or limit is not None:
                any_set = True
            if limit is None or request != limit:
                guaranteed = False
    if not any_set:
        return QosClass.BEST_EFFORT
    return QosClass.GUARANTEED if guaranteed else QosClass.BURSTABLE


@dataclass(frozen=True)
class ResizeDecision:
    """What resizing one pod to the wanted values would do."""

    resize: tuple[ContainerResources, ...] = ()
    """Containers whose resources change, with their new values (empty: nothing to do)."""
    refused: str = ""
    """Why the resize must not be made (empty: it may)."""
    restarts: tuple[str, ...] = ()
    """Containers the resize restarts (their ``resizePolicy`` says ``RestartContainer``)."""

    @property
    def needed(self) -> bool:
        return bool(self.resize) and not self.refused


def _merged(current: Resources, wanted: Resources) -> Resources:
    """``wanted`` where it sets a value, ``current`` elsewhere (a recommendation without a
    limit leaves the limit in force alone)."""
    return Resources(
        wanted.cpu_millicores if wanted.cpu_millicores is not None else current.cpu_millicores,
        wanted.memory_bytes if wanted.memory_bytes is not None else current.memory_bytes,
    )


def _changed_resources(before: ContainerResources, after: ContainerResources) -> set[str]:
    changed = set()
    for attr, name in (("cpu_millicores", "cpu"), ("memory_bytes", "memory")):
        for side in ("requests", "limits"):
            if getattr(getattr(before, side), attr) != getattr(getattr(after, side), attr):
                changed.add(name)
    return changed


def plan_resize(pod: PodInfo, wanted: Mapping[str, ContainerResources]) -> ResizeDecision:
    """The resize that brings ``pod``'s containers to ``wanted`` (by container name;
    containers not named keep their values), refused when it would change the pod's QoS
    class or while an earlier resize of the pod is still pending or in progress."""
    if pod.resize_state in (ResizeState.IN_PROGRESS, ResizeState.DEFERRED):
        return ResizeDecision(refused=f"an earlier resize is {pod.resize_state.value}")
    after: list[ContainerResources] = []
    changed: list[ContainerResources] = []
    restarts: list[str] = []
    for c in pod.containers:
        want = wanted.get(c.name)
        if want is None:
            after.append(c.wanted)
            continue
        new = ContainerResources(
            c.name, _merged(c.wanted.requests, want.requests), _merged(c.wanted.limits, want.limits)
        )
        after.append(new)
        moved = _changed_resources(c.wanted, new)
        if moved:
            changed.append(new)
            if moved & c.restart_on:
                restarts.append(c.name)
    if not changed:
        return ResizeDecision()
    before_class = pod.qos_class or qos_class(c.wanted for c in pod.containers)
    after_class = qos_class(after)
    if after_class != before_class:
        return ResizeDecision(
            resize=tuple(changed),
            refused=f"the pod's QoS class would change from {before_class} to {after_class}",
        )
    for resized in after:
        for attr in ("cpu_millicores", "memory_bytes"):
            request, limit = getattr(resized.requests, attr), getattr(resized.limits, attr)
            if request is not None and limit is not None and request > limit:
                return ResizeDecision(
                    resize=tuple(changed),
                    refused=f"container {resized.name}: the request would exceed the limit",
                )
    return ResizeDecision(resize=tuple(changed), restarts=tuple(restarts))


def resize_patch(resize: Sequence[ContainerResources]) -> dict[str, Any]:
    """The strategic-merge body for the ``resize`` subresource (containers merged by name;
    unset values left out, so they stay as they are)."""

    def quantities(r: Resources) -> dict[str, str]:
        out = {}
        if r.cpu_millicores is not None:
            out["cpu"] = f"{r.cpu_millicores}m"
        if r.memory_bytes is not None:
            out["memory"] = str(r.memory_bytes)
        return out

    containers = []
    for c in resize:
        resources = {
            side: q
            for side, q in (("requests", quantities(c.requests)), ("limits", quantities(c.limits)))
            if q
        }
        containers.append({"name": c.name, "resources": resources})
    return {"spec": {"containers": containers}}


def _resize_state(conditions: Sequence[Mapping[str, Any]]) -> tuple[ResizeState, str]:
    for cond in conditions:
        if str(cond.get("status")) != "True":
            continue
        kind, reason = cond.get("type"), str(cond.get("reason") or "")
        message = str(cond.get("message") or "")
        if kind == "PodResizePending":
            if reason == "Infeasible":
                return ResizeState.INFEASIBLE, message
            return ResizeState.DEFERRED, message
        if kind == "PodResizeInProgress":
            if reason == "Error":
                return ResizeState.ERROR, message
            return ResizeState.IN_PROGRESS, message
    return ResizeState.DONE, ""


def _container_resources(name: str, data: Mapping[str, Any] | None) -> ContainerResources:
    data = data or {}
    return ContainerResources(
        name, parse_resources(data.get("requests")), parse_resources(data.get("limits"))
    )


def _oom_killed_s(status: Mapping[str, Any] | None) -> float | None:
    """When the container's current or last run ended OOM-killed (finishedAt)."""
    for key in ("state", "lastState"):
        ended = ((status or {}).get(key) or {}).get("terminated") or {}
        if ended.get("reason") == "OOMKilled":
            stamp = str(ended.get("finishedAt") or "")
            try:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return 0.0
    return None


def pod_info(body: Mapping[str, Any]) -> PodInfo:
    """What resize needs of a pod object (as the API returns it)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    statuses = {str(s.get("name")): s for s in status.get("containerStatuses") or []}
    containers = []
    for c in spec.get("containers") or []:
        name = str(c.get("name", ""))
        reported = statuses.get(name)
        actual = None
        if reported is not None and reported.get("resources") is not None:
            actual = _container_resources(name, reported.get("resources"))
        containers.append(
            PodContainer(
                name=name,
                wanted=_container_resources(name, c.get("resources")),
                actual=actual,
                restart_on=frozenset(
                    str(p.get("resourceName"))
                    for p in c.get("resizePolicy") or []
                    if p.get("restartPolicy") == RESTART_CONTAINER
                ),
                restart_count=int((reported or {}).get("restartCount") or 0),
                oom_killed_s=_oom_killed_s(reported),
            )
        )
    qos = status.get("qosClass")
    state, message = _resize_state(status.get("conditions") or [])
    return PodInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        containers=tuple(containers),
        qos_class=QosClass(qos) if qos in {q.value for q in QosClass} else None,
        resize_state=state,
        resize_message=message,
        owner_uids=tuple(str(o.get("uid")) for o in meta.get("ownerReferences") or []),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        phase=str(status.get("phase") or ""),
        terminating=bool(meta.get("deletionTimestamp")),
    )
