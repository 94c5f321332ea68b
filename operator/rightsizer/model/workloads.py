"""What the operator's Kopf indexes keep about cluster objects: small, typed, pure.

Indexes hold these instead of whole bodies, so 1,000 Deployments cost kilobytes, and the
reconcile step can be tested without a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rightsizer.engine.recommendation import Resources
from rightsizer.quantity import QuantityError, cpu_millicores, memory_bytes

#: Annotations kept from workloads: ours, and the markers of GitOps tools.
KEPT_ANNOTATION_PREFIXES = (
    "rightsizer.dev/",
    "argocd.argoproj.io/",
    "kustomize.toolkit.fluxcd.io/",
    "meta.helm.sh/",
)


#: The workload kinds the operator sizes, and how the Kubernetes client names each in its
#: ``AppsV1Api`` methods (``patch_namespaced_deployment`` …).
WORKLOAD_KINDS: dict[str, str] = {
    "Deployment": "deployment",
    "StatefulSet": "stateful_set",
    "DaemonSet": "daemon_set",
}


def apps_api_method(verb: str, kind: str) -> str:
    """The ``AppsV1Api`` method for ``verb`` (read, list, patch) on a workload kind."""
    return f"{verb}_namespaced_{WORKLOAD_KINDS[kind]}"


@dataclass(frozen=True)
class ContainerResources:
    name: str
    requests: Resources
    limits: Resources


@dataclass(frozen=True)
class RolloutStatus:
    """What a workload's status says about its rollout (numbers as the API gives them)."""

    generation: int = 0
    observed_generation: int = 0
    desired: int = 0
    updated: int = 0
    available: int = 0
    total: int = 0
    """Pods of all revisions (a rollout leaves old ones until it completes)."""
    deadline_exceeded: bool = False
    surge_pods: int = 0
    """Extra pods a rollout may create (a Deployment's maxSurge, resolved)."""
    progress_deadline_s: float | None = None
    """How long the controller waits before ``ProgressDeadlineExceeded`` (Deployments:
    ``spec.progressDeadlineSeconds``, 600 by default; None for kinds without one)."""


@dataclass(frozen=True)
class WorkloadInfo:
    kind: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    replicas: int
    containers: tuple[ContainerResources, ...]
    rollout: RolloutStatus = field(default_factory=RolloutStatus)
    resource_version: str = ""
    selector: Mapping[str, str] = field(default_factory=dict)
    """The workload's ``matchLabels`` (to find its pods)."""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def body(self) -> dict[str, Any]:
        """A minimal object reference for Events."""
        return {
            "apiVersion": "apps/v1",
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }


def parse_resources(data: Mapping[str, Any] | None) -> Resources:
    """A ``requests`` or ``limits`` map as a CPU/memory pair (unreadable quantities: unset)."""
    data = data or {}
    try:
        cpu = cpu_millicores(data["cpu"]) if "cpu" in data else None
        mem = memory_bytes(data["memory"]) if "memory" in data else None
    except QuantityError:
        return Resources()
    return Resources(cpu, mem)


def workload_info(kind: str, body: Mapping[str, Any]) -> WorkloadInfo:
    meta = body.get("metadata", {})
    spec = body.get("spec", {})
    status = body.get("status", {})
    template = (spec.get("template") or {}).get("spec") or {}
    if kind == "DaemonSet":
        replicas = int(status.get("desiredNumberScheduled") or 0)
    else:
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    containers = tuple(
        ContainerResources(
            c.get("name", ""),
            parse_resources((c.get("resources") or {}).get("requests")),
            parse_resources((c.get("resources") or {}).get("limits")),
        )
        for c in template.get("containers") or []
    )
    annotations = {
        k: str(v)
        for k, v in (meta.get("annotations") or {}).items()
        if k.startswith(KEPT_ANNOTATION_PREFIXES)
    }
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return WorkloadInfo(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        annotations=annotations,
        replicas=replicas,
        containers=containers,
        rollout=rollout_status(kind, meta, spec, status, replicas),
        resource_version=str(meta.get("resourceVersion", "")),
        selector={str(k): str(v) for k, v in selector.items()},
    )


def _surge(value: Any, replicas: int, default: str) -> int:
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(replicas * float(value[:-1]) / 100)
        except ValueError:
            return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _seconds_or(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def rollout_status(
    kind: str, meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any],
    replicas: int,
) -> RolloutStatus:  # fmt: skip
    strategy = spec.get("strategy") or spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    if kind == "Deployment":
        surge = (
            _surge(rolling.get("maxSurge"), replicas, "25%")
            if strategy.get("type", "RollingUpdate") == "RollingUpdate"
            else 0
        )
        deadline = any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in status.get("conditions") or []
        )
        return RolloutStatus(
            int(meta.get("generation") or 0), int(status.get("observedGeneration") or 0),
            replicas, int(status.get("updatedReplicas") or 0),
            int(status.get("availableReplicas") or 0), int(status.get("replicas") or 0),
            deadline, surge, _seconds_or(spec.get("progressDeadlineSeconds"), 600.0),
        )  # fmt: skip
    if kind == "StatefulSet":
        same = status.get("currentRevision") == status.get("updateRevision")
        updated = int(status.get("updatedReplicas") or 0)
        return RolloutStatus(
            int(meta.get("generation") or 0), int(status.get("observedGeneration") or 0),
            replicas, replicas if same else updated, int(status.get("availableReplicas") or 0),
            int(status.get("replicas") or 0),
        )  # fmt: skip
    return RolloutStatus(  # DaemonSet
        int(meta.get("generation") or 0), int(status.get("observedGeneration") or 0),
        int(status.get("desiredNumberScheduled") or 0),
        int(status.get("updatedNumberScheduled") or 0),
        int(status.get("numberAvailable") or 0),
        int(status.get("currentNumberScheduled") or 0),
        False, _surge(rolling.get("maxSurge"), replicas, "0"),
    )  # fmt: skip


@dataclass(frozen=True)
class PolicyInfo:
    """Enough of a RightSizePolicy to tell which one owns a workload."""

    namespace: str
    name: str
    uid: str
    created: str
    spec: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seniority(self) -> tuple[str, str]:
        """Older wins, then the smaller name (as upstream VPA decides between VPAs)."""
        return (self.created, self.name)
