"""The resources write against the real kube-apiserver: server-side apply touches only
our fields, the dry-run refuses what the API would refuse, and a 409 from a concurrent
edit is retried on the fresh object without clobbering the other edit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.actuation.resources import (
    FIELD_MANAGER,
    RECORD_ANNOTATION,
    ResourcesWrite,
    WriteRejectedError,
    write,
)
from rightsizer.engine.recommendation import Resources
from rightsizer.model.workloads import workload_info
from rightsizer.quantity import parse_quantity

pytestmark = pytest.mark.k8s
MI = 2**20


def deployment(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "app", "image": "registry.example/web:1",
                 "env": [{"name": "MODE", "value": "prod"}],
                 "resources": {"requests": {"cpu": "500m", "memory": "512Mi",
                                            "ephemeral-storage": "1Gi"},
                               "limits": {"cpu": "1", "memory": "512Mi"}}},
                {"name": "sidecar", "image": "registry.example/proxy:1",
                 "resources": {"requests": {"cpu": "100m"}}},
            ]}},
        },
    }  # fmt: skip


def plan(namespace: str, cpu: int, mem: int, version: str = "") -> ResourcesWrite:
    return ResourcesWrite(
        "Deployment", namespace, "web",
        {"app": (Resources(cpu, mem), Resources(2 * cpu, mem))}, {"test": cpu}, version,
    )  # fmt: skip


def read(api: ApiClient, namespace: str) -> dict[str, Any]:
    obj = client.AppsV1Api(api).read_namespaced_deployment("web", namespace)
    data: dict[str, Any] = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return data


def app(obj: dict[str, Any], name: str = "app") -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)  # type: ignore[no-any-return]


def test_server_side_apply_changes_only_cpu_and_memory_of_the_named_container(
    k8s_api: ApiClient, namespace: str
) -> None:
    client.AppsV1Api(k8s_api).create_namespaced_deployment(namespace, deployment(namespace))
    before = read(k8s_api, namespace)
    written, requests = write(k8s_api, plan(namespace, 250, 300 * MI))
    assert written is not None and requests == 2  # dry-run + apply
    after = read(k8s_api, namespace)
    res = app(after)["resources"]
    assert {k: parse_quantity(v) for k, v in res["requests"].items()} == {
        "cpu": Decimal("0.25"),
        "memory": 300 * MI,
        "ephemeral-storage": 2**30,
    }
    assert {k: parse_quantity(v) for k, v in res["limits"].items()} == {
        "cpu": Decimal("0.5"),
        "memory": 300 * MI,
    }
    assert app(after)["env"] == app(before)["env"] and app(after)["image"] == app(before)["image"]
    assert app(after, "sidecar") == app(before, "sidecar")
    assert json.loads(after["metadata"]["annotations"][RECORD_ANNOTATION]) == {"test": 250}
    managers = {m["manager"] for m in after["metadata"]["managedFields"]}
    assert FIELD_MANAGER in managers


def test_the_dry_run_refuses_an_invalid_write_and_nothing_is_stored(
    k8s_api: ApiClient, namespace: str
) -> None:
    client.AppsV1Api(k8s_api).create_namespaced_deployment(namespace, deployment(namespace))
    before = read(k8s_api, namespace)
    bad = ResourcesWrite(
        "Deployment",
        namespace,
        "web",
        {"app": (Resources(900, 512 * MI), Resources(100, 512 * MI))},
        {},
    )
    with pytest.raises(WriteRejectedError, match="HTTP 422"):
        write(k8s_api, bad)  # request above limit: invalid
    after = read(k8s_api, namespace)  # (the controller may have updated its status)
    assert after["spec"] == before["spec"]
    assert RECORD_ANNOTATION not in (after["metadata"].get("annotations") or {})


def test_a_409_from_a_concurrent_edit_is_retried_without_clobbering_it(
    k8s_api: ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment(namespace))
    stale = read(k8s_api, namespace)["metadata"]["resourceVersion"]
    # someone else edits the workload after we decided
    apps.patch_namespaced_deployment("web", namespace, {
        "metadata": {"labels": {"team": "shop"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "MODE", "value": "canary"}]}]}}},
    })  # fmt: skip
    seen: list[str] = []

    def redecide(fresh: dict[str, Any]) -> ResourcesWrite:
        info = workload_info("Deployment", fresh)
        seen.append(info.resource_version)
        return plan(namespace, 300, 400 * MI, info.resource_version)

    written, requests = write(k8s_api, plan(namespace, 250, 300 * MI, stale), redecide)
    # Each refused attempt costs the dry-run and a read; the deployment controller's own
    # status updates can make more than one attempt necessary.
    assert written is not None and seen and seen[0] != stale
    assert requests == 2 + 2 * len(seen)
    after = read(k8s_api, namespace)
    assert after["metadata"]["labels"]["team"] == "shop"
    assert app(after)["env"] == [{"name": "MODE", "value": "canary"}]
    assert app(after)["resources"]["requests"]["cpu"] == "300m"


def test_redecide_may_drop_the_write(k8s_api: ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment(namespace))
    stale = read(k8s_api, namespace)["metadata"]["resourceVersion"]
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"labels": {"x": "y"}}})
    written, _ = write(k8s_api, plan(namespace, 250, 300 * MI, stale), lambda fresh: None)
    assert written is None
    assert app(read(k8s_api, namespace))["resources"]["requests"]["cpu"] == "500m"
