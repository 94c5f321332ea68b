"""Which workload a pod belongs to (pure).

Preferred: owner data (kube-state-metrics' ``kube_pod_owner``/``kube_replicaset_owner``
series, or the Kubernetes API's owner references). Otherwise the naming patterns the
controllers use: ``<deployment>-<rs hash>-<pod hash>``, ``<statefulset>-<ordinal>``,
``<daemonset>-<pod hash>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_HASH = "[bcdfghjklmnpqrstvwxz2456789]"
_DEPLOYMENT = re.compile(rf"^(?P<name>.+)-{_HASH}{{6,10}}-{_HASH}{{5}}$")
_STATEFULSET = re.compile(r"^(?P<name>.+)-(?P<ordinal>\d+)$")
_DAEMONSET = re.compile(rf"^(?P<name>.+)-{_HASH}{{5}}$")


def workload_from_pod_name(pod: str) -> str:
    """Best guess from the name alone; ``Pod/<name>`` when nothing matches."""
    for pattern, kind in (
        (_DEPLOYMENT, "Deployment"),
        (_STATEFULSET, "StatefulSet"),
        (_DAEMONSET, "DaemonSet"),
    ):
        match = pattern.match(pod)
        if match:
            return f"{kind}/{match.group('name')}"
    return f"Pod/{pod}"


@dataclass
class WorkloadResolver:
    """Maps (namespace, pod) to ``Kind/name`` from owner data, else from names."""

    pod_owners: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(namespace, pod) → (owner kind, owner name)."""
    replicaset_owners: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(namespace, replicaset) → (owner kind, owner name)."""
    by_name: int = 0
    """How many pods were resolved by naming pattern alone."""

    def add_pod_owners(self, owners: Mapping[tuple[str, str], tuple[str, str]]) -> None:
        self.pod_owners.update(owners)

    def add_replicaset_owners(self, owners: Mapping[tuple[str, str], tuple[str, str]]) -> None:
        self.replicaset_owners.update(owners)

    def workload(self, namespace: str, pod: str) -> str:
        owner = self.pod_owners.get((namespace, pod))
        if owner is None:
            self.by_name += 1
            return workload_from_pod_name(pod)
        kind, name = owner
        if kind == "ReplicaSet":
            parent = self.replicaset_owners.get((namespace, name))
            if parent is not None:
                return f"{parent[0]}/{parent[1]}"
            # A ReplicaSet with no known owner: a Deployment's if its name says so.
            match = re.match(rf"^(?P<name>.+)-{_HASH}{{6,10}}$", name)
            return f"Deployment/{match.group('name')}" if match else f"ReplicaSet/{name}"
        return f"{kind}/{name}"
