"""The operator's watch cache against the real API server: a paginated list, watch events
(created, changed, deleted), a real ``410 Gone`` answered by listing again, and entries
that go when their objects go (memory held only for what exists)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.handlers.caches import CACHED
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.sources.watch_cache import Backoff, ListWatch, Store
from tests.integration.waiting import wait_for


def deployment(name: str, cpu: str = "100m") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "app", "image": "example.invalid/app",
                    "resources": {"requests": {"cpu": cpu}},
                }]},
            },
        },
    }  # fmt: skip


@pytest.fixture
def cache(k8s_api: ApiClient) -> Iterator[ListWatch[WorkloadInfo]]:
    """A deployments cache with small pages (several per list) and short watches
    (resumed every few seconds), as the operator starts it otherwise."""
    kind, project = CACHED["deployments"]
    watcher = ListWatch(
        k8s_api, kind, Store(project), page_size=2, watch_timeout_s=3,
        backoff=Backoff(first_s=0.5, max_s=2),
    ).start()  # fmt: skip
    yield watcher
    watcher.stop()


def requests_cpu(info: WorkloadInfo) -> int | None:
    return info.containers[0].requests.cpu_millicores


def test_the_cache_lists_and_follows_the_api_server(
    k8s_api: ApiClient, namespace: str, cache: ListWatch[WorkloadInfo]
) -> None:
    apps = client.AppsV1Api(k8s_api)
    for i in range(5):  # before the cache lists: more than two pages
        apps.create_namespaced_deployment(namespace, deployment(f"early-{i}"))
    store = cache.store
    wait_for("5 Deployments cached", lambda: len(store.get(namespace)) == 5, 60)
    assert store.synced and cache.lists >= 1
    assert all(isinstance(w, WorkloadInfo) for w in store.get(namespace))

    apps.create_namespaced_deployment(namespace, deployment("late"))
    wait_for("a new Deployment cached", lambda: len(store.get(namespace)) == 6, 60)

    apps.patch_namespaced_deployment("late", namespace, deployment("late", cpu="250m"))

    def late_cpu() -> int | None:
        late = [w for w in store.get(namespace) if w.ref.endswith("/late")]
        return requests_cpu(late[0]) if late else None

    wait_for("the change cached", lambda: late_cpu() == 250, 60, hint=lambda: str(late_cpu()))

    for i in range(5):
        apps.delete_namespaced_deployment(f"early-{i}", namespace)
    wait_for("deleted Deployments dropped", lambda: len(store.get(namespace)) == 1, 60)
    assert cache.watches >= 1


def test_a_version_too_old_lists_again(
    k8s_api: ApiClient, namespace: str, cache: ListWatch[WorkloadInfo]
) -> None:
    """The watch is resumed from version 1, which the API server no longer has: it answers
    410 Gone, and the cache lists again, with what changed meanwhile."""
    apps = client.AppsV1Api(k8s_api)
    store = cache.store
    wait_for("the first list", lambda: store.synced, 60)
    lists = cache.lists

    def relisted() -> bool:
        if cache.lists > lists:
            return True
        with store._lock:  # the next watch (every few seconds) resumes from a version gone
            store.resource_version = "1"
        return False

    wait_for("a list after 410 Gone", relisted, 120)
    apps.create_namespaced_deployment(namespace, deployment("after-gone"))
    wait_for("watching again", lambda: len(store.get(namespace)) == 1, 60)


def test_entries_go_with_their_objects(
    k8s_api: ApiClient, namespace: str, cache: ListWatch[WorkloadInfo]
) -> None:
    """Memory is held only for what exists: 30 created and deleted leave the cache as it
    was, and every entry is the small projection, never the object."""
    apps = client.AppsV1Api(k8s_api)
    store = cache.store
    wait_for("the first list", lambda: store.synced, 60)
    before = len(store)
    for i in range(30):
        apps.create_namespaced_deployment(namespace, deployment(f"d-{i}"))
    wait_for("30 cached", lambda: len(store.get(namespace)) == 30, 90)
    assert all(isinstance(w, WorkloadInfo) for w in store.get(namespace))
    for i in range(30):
        apps.delete_namespaced_deployment(f"d-{i}", namespace)
    wait_for("all dropped", lambda: store.get(namespace) == () and len(store) == before, 90)
