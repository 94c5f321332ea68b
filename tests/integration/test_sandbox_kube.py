"""The sandbox control plane is real: Deployments get Pods on a kwok node and roll out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.sandbox import KubeAccess
from tests.sandbox import config as sandbox_config

pytestmark = pytest.mark.k8s

T = TypeVar("T")


def eventually(
    what: str, fn: Callable[[], T | None], timeout: float = 90.0, interval: float = 0.5
) -> T:
    """Poll ``fn`` until it returns something truthy (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def deployment(
    name: str,
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
    image: str = "registry.example/app:1",
) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations or {}),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="app",
                            image=image,
                            resources=client.V1ResourceRequirements(
                                requests={"cpu": "100m", "memory": "128Mi"},
                                limits={"memory": "256Mi"},
                            ),
                        )
                    ]
                ),
            ),
        ),
    )


Obj = dict[str, Any]


def as_dict(obj: Any) -> Obj:
    """A client model as a plain dict (snake_case keys), easier to assert on."""
    d: Obj = obj.to_dict()
    return d


def running_pods(core: client.CoreV1Api, ns: str, selector: str) -> list[Obj]:
    pods = as_dict(core.list_namespaced_pod(ns, label_selector=selector))["items"]
    return [
        p
        for p in pods
        if p["status"]["phase"] == "Running" and p["metadata"]["deletion_timestamp"] is None
    ]


def n_running(core: client.CoreV1Api, ns: str, selector: str, n: int) -> list[Obj] | None:
    pods = running_pods(core, ns, selector)
    return pods if len(pods) == n else None


def read_deployment(apps: client.AppsV1Api, ns: str, name: str) -> Obj:
    return as_dict(apps.read_namespaced_deployment(name, ns))


def replica_sets(apps: client.AppsV1Api, ns: str, selector: str) -> list[Obj]:
    items: list[Obj] = as_dict(apps.list_namespaced_replica_set(ns, label_selector=selector))[
        "items"
    ]
    return items


def test_server_reports_built_version(k8s_api: ApiClient) -> None:
    info = as_dict(client.VersionApi(k8s_api).get_code())
    assert info["git_version"] == sandbox_config.K8S_VERSION


def test_kwok_node_is_ready(kube: KubeAccess, k8s_api: ApiClient) -> None:
    node = as_dict(client.CoreV1Api(k8s_api).read_node(kube.node_name))
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready
    assert ready[0]["status"] == "True"
    path = node["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"]
    assert path == f"/metrics/nodes/{kube.node_name}/metrics/resource"
    addresses = node["status"]["addresses"]
    assert {a["address"] for a in addresses if a["type"] == "InternalIP"} == {"127.0.0.1"}


def test_deployment_gets_running_pods_on_kwok_node(
    kube: KubeAccess, k8s_api: ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(k8s_api)
    core = client.CoreV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))

    pods = eventually("2 running pods", lambda: n_running(core, namespace, "app=web", 2))
    assert {p["spec"]["node_name"] for p in pods} == {kube.node_name}
    assert all(p["status"]["pod_ip"] for p in pods)
    assert all(
        c["ready"] and c["state"]["running"]
        for p in pods
        for c in p["status"]["container_statuses"]
    )
    eventually(
        "deployment available",
        lambda: read_deployment(apps, namespace, "web")["status"]["available_replicas"] == 2,
    )


def test_template_change_rolls_new_replicaset(k8s_api: ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(k8s_api)
    core = client.CoreV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("api", replicas=2))
    eventually(
        "first rollout",
        lambda: (
            read_deployment(apps, namespace, "api")["status"]["updated_replicas"] == 2
            and len(running_pods(core, namespace, "app=api")) == 2
        ),
    )
    first = replica_sets(apps, namespace, "app=api")
    assert len(first) == 1
    old_hash = first[0]["metadata"]["labels"]["pod-template-hash"]

    # Change the pod template as the operator will (resources): the
    # controller-manager rolls out a new ReplicaSet.
    container = {"name": "app", "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}
    patch = {"spec": {"template": {"spec": {"containers": [container]}}}}
    apps.patch_namespaced_deployment("api", namespace, patch)

    def rolled() -> list[Obj] | None:
        dep = read_deployment(apps, namespace, "api")
        st = dep["status"]
        done = (
            st["observed_generation"] == dep["metadata"]["generation"]
            and st["updated_replicas"] == 2
            and st["replicas"] == 2
            and st["available_replicas"] == 2
        )
        return replica_sets(apps, namespace, "app=api") if done else None

    rss = eventually("rollout of the new template", rolled)
    assert len(rss) == 2
    new = [rs for rs in rss if rs["metadata"]["labels"]["pod-template-hash"] != old_hash]
    old = [rs for rs in rss if rs["metadata"]["labels"]["pod-template-hash"] == old_hash]
    assert len(new) == 1
    assert len(old) == 1
    assert new[0]["spec"]["replicas"] == 2
    assert old[0]["spec"]["replicas"] == 0
    assert new[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = eventually(
        "pods of the new ReplicaSet",
        lambda: n_running(core, namespace, f"app=api,pod-template-hash!={old_hash}", 2),
    )
    requests_ = pods[0]["spec"]["containers"][0]["resources"]["requests"]
    assert requests_ == {"cpu": "50m", "memory": "64Mi"}
