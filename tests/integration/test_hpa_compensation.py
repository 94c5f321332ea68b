"""The compensation arithmetic against the real HPA controller (issue 16 groundwork).

The sandbox's kube-controller-manager runs the real HorizontalPodAutoscaler controller; it
reads pod usage from the real metrics-server, which reads kwok's emulated kubelet (usage
chosen per pod with kwok's annotations, a constant per pod). A Deployment's two pods use
300m CPU each under a 500m request (60 %), scaled by an HPA at 60 %: steady at 2
replicas. The CPU request is then halved (a template write, as Apply's ``Rollout`` makes):

* with the HPA's target moved as ``rightsizer.model.hpa.compensate`` says (60 % → 120 %),
  the HPA computes the same 2 replicas from the new pods;
* without it (``Allow``), the same usage is now 120 % of the request and the HPA scales out.

kwok's usage does not spread over more replicas (each pod keeps its annotation's value),
so "the same load" here means the same usage per pod; the scale point U × request is what
compensation keeps either way.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.actuation.hpa import move_targets, read_hpa
from rightsizer.engine.recommendation import Resources
from rightsizer.model.hpa import compensate, hpa_info
from tests.integration.waiting import wait_for
from tests.sandbox import KubeAccess

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

USAGE = {"kwok.x-k8s.io/usage-cpu": "300m", "kwok.x-k8s.io/usage-memory": "100Mi"}


def deployment(cpu_request: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": USAGE},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.example/app:1",
                    "resources": {"requests": {"cpu": cpu_request, "memory": "256Mi"}},
                }]},
            },
        },
    }  # fmt: skip


def hpa(target_percent: int = 60) -> dict[str, Any]:
    """HPA ``web`` on Deployment ``web``: 2–8 replicas, CPU utilization at ``target_percent``."""
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 8,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target_percent}}}],
        },
    }  # fmt: skip


def utilization(status: dict[str, Any]) -> int | None:
    for m in status.get("currentMetrics") or []:
        current = (m.get("resource") or {}).get("current") or {}
        if current.get("averageUtilization") is not None:
            return int(current["averageUtilization"])
    return None


def only_new_pods_measured(apps: client.AppsV1Api, namespace: str) -> bool:
    """The rollout is over: one ReplicaSet with pods, all of them available."""
    d = apps.read_namespaced_deployment("web", namespace)
    sets = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    with_pods = [s for s in sets if (s.status.replicas or 0) > 0]
    return (
        (d.status.observed_generation or 0) >= (d.metadata.generation or 0)
        and len(with_pods) == 1
        and (d.status.updated_replicas or 0) == (d.status.replicas or 0)
        and (d.status.available_replicas or 0) == (d.status.replicas or 0)
    )


@pytest.mark.parametrize("hpa_resources", ["Compensate", "Allow"])
def test_halving_a_cpu_request_under_an_hpa(
    metrics_server: KubeAccess, k8s_api: ApiClient, namespace: str, hpa_resources: str
) -> None:
    apps, v2 = client.AppsV1Api(k8s_api), client.AutoscalingV2Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("500m"))
    v2.create_namespaced_horizontal_pod_autoscaler(namespace, hpa())

    def status() -> dict[str, Any]:
        return read_hpa(k8s_api, namespace, "web").get("status") or {}

    steady = wait_for(
        "the HPA measuring ≈ 60 % on 2 replicas",
        lambda: (s := status()) and (u := utilization(s)) is not None and 50 <= u <= 70 and s,
        240,
    )
    assert steady["desiredReplicas"] == 2

    if hpa_resources == "Compensate":
        plan = compensate(
            hpa_info(read_hpa(k8s_api, namespace, "web")),
            {"app": Resources(500, 256 * 2**20)},
            {"app": Resources(250, 256 * 2**20)},
        )
        [change] = plan.changes
        assert (change.before_percent, change.after_percent) == (60, 120)
        move_targets(k8s_api, hpa_info(read_hpa(k8s_api, namespace, "web")), plan.changes, "t")
    body = deployment("250m")
    apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": body["spec"]["template"]}}
    )

    if hpa_resources == "Compensate":
        wait_for("the rollout over", lambda: only_new_pods_measured(apps, namespace), 240)
        after = wait_for(
            "the HPA measuring the new pods (≈ 120 % of 250m)",
            lambda: (s := status()) and (u := utilization(s)) is not None and u >= 105 and s,
            240,
        )
        assert after["desiredReplicas"] == 2, after
        assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2
    else:
        scaled = wait_for(
            "the HPA scaling out", lambda: (s := status()) and s["desiredReplicas"] > 2 and s, 240
        )
        assert utilization(scaled) is not None and utilization(scaled) >= 105  # type: ignore[operator]
