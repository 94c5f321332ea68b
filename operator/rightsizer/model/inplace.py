"""Apply mode's in-place path, the pure part: the workload's ``rightsizer.dev/pod-resources``
annotation (its JSON codec) and, for one workload, which of its running pods to resize
now and what its pods' state says (``plan_workload``). No I/O, no clock: the caller passes
the time.

The annotation is what the workload's pods are sized to without touching the template;
the admission webhook sizes new pods from exactly this shape, so it changes only with the
webhook::

    {"policy": "ns/name", "time": "2026-11-30T20:00:00Z",
     "containers": {"app": {"requests": {"cpu": "120m", "memory": "310Mi"},
                            "limits": {"memory": "620Mi"}}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from rightsizer.engine.recommendation import Resources
from rightsizer.model.pods import PodInfo, ResizeDecision, ResizeState, plan_resize
from rightsizer.model.workloads import ContainerResources, parse_resources
from rightsizer.quantity import quantities


class UpdateMethod(StrEnum):
    """``spec.update.method``: how Apply mode writes."""

    IN_PLACE = "InPlace"
    IN_PLACE_OR_ROLLOUT = "InPlaceOrRollout"
    ROLLOUT = "Rollout"


@dataclass(frozen=True)
class InPlaceLimits:
    """``spec.update.inPlace``: how many pods are resized at a time, how long a deferred
    resize is waited for."""

    max_pods_per_workload: int = 1
    """Pods of one workload asked and not yet in force, at most."""
    max_pods_per_namespace: int = 10
    """Pods of the namespace asked and not yet in force, at most (all workloads)."""
    deferred_timeout_s: float = 300.0
    """A resize still ``Deferred`` this long after our write counts as infeasible."""


# -- the annotation ---------------------------------------------------------------------
def rfc3339(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_resources_text(
    policy: str, time_s: float, containers: Mapping[str, tuple[Resources, Resources]]
) -> str:
    """The annotation's value (compact JSON, containers sorted)."""
    body = {
        "policy": policy,
        "time": rfc3339(time_s),
        "containers": {
            name: {
                side: q
                for side, q in (
                    ("requests", quantities(req.cpu_millicores, req.memory_bytes)),
                    ("limits", quantities(lim.cpu_millicores, lim.memory_bytes)),
                )
                if q
            }
            for name, (req, lim) in sorted(containers.items())
        },
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class PodResources:
    policy: str
    time: str
    containers: Mapping[str, tuple[Resources, Resources]]


def parse_pod_resources(text: str | None) -> PodResources | None:
    """The annotation's content; None when absent or not of this shape."""
    if not text:
        return None
    try:
        data = json.loads(text)
        containers: dict[str, tuple[Resources, Resources]] = {}
        for name, values in (data.get("containers") or {}).items():
            containers[str(name)] = (
                parse_resources(values.get("requests")),
                parse_resources(values.get("limits")),
            )
        return PodResources(str(data["policy"]), str(data.get("time", "")), containers)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def sized_containers(
    template: Sequence[ContainerResources], sized: PodResources | None
) -> tuple[ContainerResources, ...]:
    """The values the workload's pods are meant to have: the annotation's where it names
    the container, the template's elsewhere."""
    if sized is None:
        return tuple(template)
    out = []
    for c in template:
        pair = sized.containers.get(c.name)
        out.append(c if pair is None else ContainerResources(c.name, pair[0], pair[1]))
    return tuple(out)


# -- one workload's pods ----------------------------------------------------------------
class InPlaceState(StrEnum):
    """What a workload's pods say about the values asked of them."""

    DONE = "Done"
    """Every running pod has the values in force."""
    RESIZING = "Resizing"
    """Some pods are asked (or to be asked) and not yet in force."""
    OOM_KILLED = "OOMKilled"
    """A container was OOM-killed after our write."""
    ERROR = "Error"
    INFEASIBLE = "Infeasible"
    """Infeasible, or Deferred for longer than the bound."""
    REFUSED = "Refused"
    """A resize that must not be made (it would change the pod's QoS class)."""
    RESTARTS_HELD = "RestartsHeld"
    """What is left restarts containers, and the rollout limit is reached."""


@dataclass(frozen=True)
class InPlacePlan:
    state: InPlaceState
    message: str = ""
    resize: tuple[tuple[PodInfo, ResizeDecision], ...] = ()
    """Pods to ask now, with what to ask."""
    pods: int = 0
    """Running pods of the workload."""
    in_force: int = 0
    """Of those, pods with the wanted values in force."""
    in_flight: int = 0
    """Of those, pods asked whose values are not in force yet."""
    restarting: bool = False
    """A resize asked now or in flight restarts a container (counts as a rollout)."""


def in_flight(pod: PodInfo) -> bool:
    """The pod was asked for values not in force yet (pending, in progress, or not yet
    reported)."""
    if pod.resize_state in (ResizeState.IN_PROGRESS, ResizeState.DEFERRED):
        return True
    if pod.resize_state in (ResizeState.INFEASIBLE, ResizeState.ERROR):
        return False  # the kubelet will not act on it
    return any(c.actual is not None and c.actual != c.wanted for c in pod.containers)


def resizing_pods(pods: Sequence[PodInfo]) -> int:
    """Running pods of a namespace with a resize not in force yet (against its bound)."""
    return sum(1 for p in pods if _running(p) and in_flight(p))


def _running(pod: PodInfo) -> bool:
    return pod.phase == "Running" and not pod.terminating


def _asked(pod: PodInfo, wanted: Mapping[str, ContainerResources]) -> bool:
    """The pod's spec already asks for ``wanted`` (nothing left to send)."""
    return (
        plan_resize(
            PodInfo(pod.namespace, pod.name, pod.uid, pod.containers, pod.qos_class), wanted
        ).resize
        == ()
    )


def plan_workload(
    pods: Sequence[PodInfo],
    wanted: Mapping[str, ContainerResources],
    *,
    since_s: float,
    now_s: float,
    limits: InPlaceLimits,
    budget: int,
    restarts_allowed: bool,
) -> InPlacePlan:
    """Which of a workload's pods to resize now towards ``wanted`` (asked at ``since_s``),
    at most ``max_pods_per_workload`` in flight and ``budget`` new ones (the namespace's
    room), and what the pods' state says. The first problem found wins, in this order:
    an OOM kill after ``since_s``, ``Error``, ``Infeasible`` (or ``Deferred`` past the
    bound), a resize that would change the QoS class."""
    running = sorted((p for p in pods if _running(p)), key=lambda p: p.name)
    problems: dict[InPlaceState, str] = {}
    candidates: list[tuple[PodInfo, ResizeDecision]] = []
    flying = done = 0
    restarting = False
    for pod in running:
        for c in pod.containers:
            if c.oom_killed_s is not None and c.oom_killed_s + 1 >= since_s:
                problems.setdefault(InPlaceState.OOM_KILLED, f"pod {pod.name}: {c.name} OOMKilled")
        asked = _asked(pod, wanted)
        if pod.resize_state == ResizeState.ERROR:
            problems.setdefault(
                InPlaceState.ERROR, f"pod {pod.name}: resize failed: {pod.resize_message}"
            )
            continue
        if pod.resize_state == ResizeState.INFEASIBLE and asked:
            problems.setdefault(
                InPlaceState.INFEASIBLE, f"pod {pod.name}: Infeasible: {pod.resize_message}"
            )
            continue
        if pod.resize_state == ResizeState.DEFERRED and asked:
            if now_s - since_s > limits.deferred_timeout_s:
                problems.setdefault(
                    InPlaceState.INFEASIBLE,
                    f"pod {pod.name}: Deferred for more than {limits.deferred_timeout_s:g} s: "
                    f"{pod.resize_message}",
                )
            flying += 1
            continue
        if in_flight(pod) or any(c.actual is None for c in pod.containers):
            flying += 1
            restarting = restarting or any(c.restart_on for c in pod.containers)
            continue
        decision = plan_resize(pod, wanted)
        if decision.refused:
            problems.setdefault(InPlaceState.REFUSED, f"pod {pod.name}: {decision.refused}")
            continue
        if not decision.needed:
            done += 1
            continue
        candidates.append((pod, decision))
    base = InPlacePlan(
        InPlaceState.RESIZING, pods=len(running), in_force=done, in_flight=flying,
        restarting=restarting,
    )  # fmt: skip
    for state in (
        InPlaceState.OOM_KILLED, InPlaceState.ERROR, InPlaceState.INFEASIBLE,
        InPlaceState.REFUSED,
    ):  # fmt: skip
        if state in problems:
            return InPlacePlan(state, problems[state], (), base.pods, done, flying, restarting)
    if not candidates and flying == 0:
        return InPlacePlan(
            InPlaceState.DONE, f"{done}/{len(running)} pods in force", pods=len(running),
            in_force=done,
        )  # fmt: skip
    room = max(0, min(limits.max_pods_per_workload - flying, budget))
    if not restarts_allowed:
        held = [c for c in candidates if c[1].restarts]
        candidates = [c for c in candidates if not c[1].restarts]
        if held and not candidates and flying == 0:
            return InPlacePlan(
                InPlaceState.RESTARTS_HELD,
                f"resizing {len(held)} pods restarts containers "
                f"({', '.join(sorted(set(held[0][1].restarts)))})",
                pods=len(running), in_force=done,
            )  # fmt: skip
    chosen = tuple(candidates[:room])
    restarting = restarting or any(d.restarts for _, d in chosen)
    return InPlacePlan(
        InPlaceState.RESIZING,
        f"{done}/{len(running)} pods in force, {flying} resizing, {len(chosen)} asked now",
        chosen, len(running), done, flying, restarting,
    )  # fmt: skip


def pairs_of(wanted: Mapping[str, tuple[Resources, Resources]]) -> dict[str, ContainerResources]:
    """Container → ``ContainerResources`` from (requests, limits) pairs."""
    return {c: ContainerResources(c, req, lim) for c, (req, lim) in wanted.items()}


def pods_of(pods: Sequence[PodInfo], selector: Mapping[str, str]) -> list[PodInfo]:
    """The pods a workload's ``matchLabels`` select (none for an empty selector)."""
    if not selector:
        return []
    return [p for p in pods if all(p.labels.get(k) == v for k, v in selector.items())]
