"""What the operator's Kopf indexes keep about cluster objects: small, typed, pure.

Indexes hold these instead of whole bodies, so 1,000 Deployments cost kilobytes, and the
reconcile step can be tested without a cluster.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class ContainerResources:
    name: str
    requests: Resources
    limits: Resources


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


def _resources(data: Mapping[str, Any] | None) -> Resources:
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
            _resources((c.get("resources") or {}).get("requests")),
            _resources((c.get("resources") or {}).get("limits")),
        )
        for c in template.get("containers") or []
    )
    annotations = {
        k: str(v)
        for k, v in (meta.get("annotations") or {}).items()
        if k.startswith(KEPT_ANNOTATION_PREFIXES)
    }
    return WorkloadInfo(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        annotations=annotations,
        replicas=replicas,
        containers=containers,
    )


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
