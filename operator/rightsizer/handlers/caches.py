"""The operator's own list+watch caches of the kinds with many objects: Deployments,
StatefulSets, DaemonSets and RightSizeRecommendation objects (``sources/watch_cache.py``;
why not ``@kopf.index``: ``docs/design.md``, "Workload cache").

Each cache answers ``get(namespace, [])`` as the Kopf index it replaces did, under the
same name, so the reconcile reads ``indexes["deployments"]`` and
``indexes["recommendation_objects"]`` as before. Reconciles wait until every cache has
listed its kind once: an empty cache would read as "no workloads" and delete objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from rightsizer import names
from rightsizer.model.workloads import workload_info
from rightsizer.sources.watch_cache import Kind, ListWatch, Store
from rightsizer.status.recommendation import seen

#: The name the recommendation objects' cache answers to (the Kopf index id it replaced).
RECOMMENDATIONS = "recommendation_objects"


def _workload(kind: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda body: workload_info(kind, body)


#: Name (as the reconcile reads it) → kind, and what is kept of each object.
CACHED: dict[str, tuple[Kind, Callable[[Mapping[str, Any]], Any]]] = {
    "deployments": (Kind("apps", "v1", "deployments", "deployment"), _workload("Deployment")),
    "statefulsets": (Kind("apps", "v1", "statefulsets", "stateful_set"), _workload("StatefulSet")),
    "daemonsets": (Kind("apps", "v1", "daemonsets", "daemon_set"), _workload("DaemonSet")),
    RECOMMENDATIONS: (
        Kind(names.GROUP, names.VERSION, names.RECOMMENDATION_PLURAL),
        seen,
    ),
}


@dataclass
class Caches:
    stores: dict[str, Store[Any]]
    watchers: list[ListWatch[Any]]

    @classmethod
    def start(cls, api: ApiClient) -> Caches:
        stores: dict[str, Store[Any]] = {name: Store(project) for name, (_, project) in
                                         CACHED.items()}  # fmt: skip
        watchers = [ListWatch(api, CACHED[name][0], store).start() for name, store in
                    stores.items()]  # fmt: skip
        return cls(stores, watchers)

    def synced(self) -> bool:
        return all(store.synced for store in self.stores.values())

    def stop(self) -> None:
        for watcher in self.watchers:
            watcher.stop()
