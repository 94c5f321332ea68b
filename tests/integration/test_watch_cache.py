"""The operator's watch cache against the real API server: a paginated list, watch events
(created, changed, deleted), a real ``410 Gone`` answered by listing again, and entries
that go when their objects go (memory held only for what exists)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.handlers.caches import CACHED
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.sources.watch_cache import Backoff, Kind, ListWatch, Store
from tests.integration.waiting import wait_for
from tests.sandbox import Sandbox


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
    for i in range(5):
        apps.create_namespaced_deployment(namespace, deployment(f"early-{i}"))
    # The list alone (pages of 2, no watch yet) has them all, and a version to watch from.
    kind, project = CACHED["deployments"]
    listed: Store[WorkloadInfo] = Store(project)
    ListWatch(k8s_api, kind, listed, page_size=2)._list()
    assert listed.synced and len(listed.get(namespace)) == 5
    assert int(listed.resource_version) > 0

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


def etcd_revision(etcd: str) -> int:
    with urllib.request.urlopen(etcd + "/v3/kv/range", data=b'{"key": "AA=="}') as resp:
        return int(json.loads(resp.read())["header"]["revision"])


def compact(etcd: str, revision: int) -> None:
    """What the API server does every 5 minutes (etcd's own HTTP gateway)."""
    body = json.dumps({"revision": str(revision), "physical": True}).encode()
    with urllib.request.urlopen(etcd + "/v3/kv/compaction", data=body) as resp:
        resp.read()


def test_a_version_too_old_lists_again(
    k8s_api: ApiClient, namespace: str, sandbox: Sandbox
) -> None:
    """The watch is resumed from a version etcd has compacted away: the API server answers
    410 Gone, and the cache lists again, with what changed meanwhile. PodTemplates: the
    sandbox's API server keeps no watch cache for them (``--watch-cache-sizes``), so an
    old version reaches etcd, as it does in any cluster once the watch cache has moved on;
    the cache code is the one the operator runs for its kinds."""
    core = client.CoreV1Api(k8s_api)
    store: Store[str] = Store(lambda body: str(body["metadata"]["name"]))
    kind = Kind("", "v1", "podtemplates", "pod_template")
    cache = ListWatch(k8s_api, kind, store, watch_timeout_s=3, backoff=Backoff(0.5, 2)).start()
    try:
        wait_for("the first list", lambda: store.synced, 60)
        old = store.resource_version
        lists = cache.lists
        template = {"metadata": {"name": "t"}, "template": {"spec": {"containers": [
            {"name": "c", "image": "example.invalid/c"}]}}}  # fmt: skip
        core.create_namespaced_pod_template(namespace, {**template, "metadata": {"name": "one"}})
        core.create_namespaced_pod_template(namespace, {**template, "metadata": {"name": "two"}})
        etcd = sandbox.cfg.url("etcd")
        compact(etcd, etcd_revision(etcd))

        def relisted() -> bool:
            if cache.lists > lists:
                return True
            with store._lock:  # the next watch (every 3 s) resumes from a compacted version
                store.resource_version = old
            return False

        wait_for("a list after 410 Gone", relisted, 120)
        wait_for("the list's objects", lambda: sorted(store.get(namespace)) == ["one", "two"])
        core.delete_namespaced_pod_template("one", namespace)
        wait_for("watching again", lambda: store.get(namespace) == ("two",), 60)
    finally:
        cache.stop()


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
    # Other namespaces may only lose entries meanwhile (an earlier test's namespace going).
    wait_for("all dropped", lambda: store.get(namespace) == () and len(store) <= before, 90)
    assert namespace not in store._by_namespace  # not even an empty entry per namespace
