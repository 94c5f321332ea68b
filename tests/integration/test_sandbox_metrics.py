"""metrics.k8s.io is served by a real metrics-server reading kwok's emulated kubelet metrics."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.sandbox import KubeAccess

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
}


def quantity(q: str) -> Decimal:
    """Parse a Kubernetes quantity ("250m", "249876543n", "300Mi", "314572800")."""
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if suffix and q.endswith(suffix):
            return Decimal(q[: -len(suffix)]) * _SUFFIX[suffix]
    return Decimal(q)


def test_quantity_parser() -> None:
    assert quantity("250m") == Decimal("0.25")
    assert quantity("300Mi") == 300 * 2**20
    assert quantity("249999999n") == Decimal("0.249999999")
    assert quantity("2") == 2


def metrics_api(
    custom: client.CustomObjectsApi, resource: str, ns: str = "", name: str = ""
) -> Any:
    """GET metrics.k8s.io/v1beta1 {pods,nodes} (a list, or one object if ``name``)."""
    if name:
        return custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, resource, name)
    if ns:
        return custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, resource)
    return custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", resource)


def pod_metrics(custom: client.CustomObjectsApi, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = metrics_api(custom, "pods", ns)["items"]
    return items


def test_pod_metrics_match_configured_usage(
    metrics_server: KubeAccess, k8s_api: ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(k8s_api)
    custom = client.CustomObjectsApi(k8s_api)
    labels = {"app": "usage"}
    # kwok's ClusterResourceUsage "usage-from-annotation" reads these annotations.
    annotations = {"kwok.x-k8s.io/usage-cpu": "250m", "kwok.x-k8s.io/usage-memory": "300Mi"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="usage", labels=labels),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                    spec=client.V1PodSpec(
                        containers=[
                            client.V1Container(
                                name="app",
                                image="registry.example/app:1",
                                resources=client.V1ResourceRequirements(
                                    requests={"cpu": "1", "memory": "1Gi"}
                                ),
                            )
                        ]
                    ),
                ),
            ),
        ),
    )

    # metrics-server needs two scrapes (10s resolution) to compute a CPU rate.
    deadline = time.monotonic() + 150
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = pod_metrics(custom, namespace)
        if len(items) == 2 and all(i["containers"] for i in items):
            break
        time.sleep(1)
    else:
        pytest.fail(f"no PodMetrics for both pods after 150s: {items}")

    for item in items:
        assert item["metadata"]["name"].startswith("usage-")
        (container,) = item["containers"]
        assert container["name"] == "app"
        cpu = quantity(container["usage"]["cpu"])
        memory = quantity(container["usage"]["memory"])
        assert abs(cpu - Decimal("0.25")) <= Decimal("0.0125"), container["usage"]
        assert memory == 300 * 2**20, container["usage"]

    # The single-pod endpoint (what `kubectl top pod NAME` reads) agrees.
    one = metrics_api(custom, "pods", namespace, items[0]["metadata"]["name"])
    assert quantity(one["containers"][0]["usage"]["memory"]) == 300 * 2**20


def test_node_metrics_are_served(metrics_server: KubeAccess, k8s_api: ApiClient) -> None:
    custom = client.CustomObjectsApi(k8s_api)
    deadline = time.monotonic() + 90
    while True:
        nodes = metrics_api(custom, "nodes")["items"]
        if any(n["metadata"]["name"] == metrics_server.node_name for n in nodes):
            break
        assert time.monotonic() < deadline, (
            f"no NodeMetrics for {metrics_server.node_name}: {nodes}"
        )
        time.sleep(1)
