"""``hpaResources`` end to end on the sandbox (issue 16 item 4): the operator (a
subprocess) lowers a CPU request of Deployments that the real HPA controller scales on CPU
utilization, measured by the real metrics-server from kwok's emulated kubelet.

Each namespace has one Deployment ``web``: 2 replicas, each pod using 200m CPU (kwok's
usage annotation, a constant per pod) under a 1-core request (20 %), and an HPA at 20 %
(min 2, max 8): steady at 2. Its history in Prometheus says 0.2 cores, so the operator
lowers the request 1000m → 500m (one 50 % step). Then, under the same per-pod usage:

* ``Compensate``: the HPA's target moves 20 % → 40 % in the same step; the HPA measures
  40 % of the new request and keeps 2 replicas;
* ``Skip`` (the default): the CPU request is left alone (memory still moves);
* ``Allow``: the request is lowered alone; the HPA measures 40 % against 20 % and scales
  out.

kwok's usage does not spread over more replicas, so "the same load" here means the same
usage per pod (as in test_hpa_compensation.py).

One thing is mocked: an OOM kill. kwok runs no containers, so ``test_a_failed_rollout_
puts_the_hpa_target_back`` writes what a kubelet reports after one (``lastState.terminated
.reason: OOMKilled``) into a new pod's status itself."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.actuation.hpa import read_hpa
from rightsizer.model.hpa import HPA_RECORD_ANNOTATION
from rightsizer.names import RECORD_ANNOTATION
from tests.integration.test_hpa_compensation import hpa, only_new_pods_measured, utilization
from tests.integration.test_inplace_e2e import InPlaceCluster
from tests.integration.test_operator_e2e import GROUP, PLURAL, VERSION, install_crd
from tests.integration.waiting import wait_for
from tests.sandbox import KubeAccess, Prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

COMPENSATE, SKIP, ALLOW = "hpa-compensate", "hpa-skip", "hpa-allow"
REVERT = "hpa-revert"
"""``Compensate`` again; a new pod is then OOM-killed: the write is reverted, the HPA's
target with it."""
CHOICES = {COMPENSATE: "Compensate", SKIP: "Skip", ALLOW: "Allow", REVERT: "Compensate"}
STEP_S = 300
DAYS = 2
MI = 2**20
USAGE = {"kwok.x-k8s.io/usage-cpu": "200m", "kwok.x-k8s.io/usage-memory": "100Mi"}


def usage_frame(end_s: float) -> pd.DataFrame:
    """Two days at 5 minutes: 0.2 cores and 100Mi (one 150Mi peak) per namespace."""
    rng = np.random.default_rng(16)
    n = int(DAYS * 24 * 3600 / STEP_S)
    t = end_s - (n - 1 - np.arange(n)) * STEP_S
    frames = []
    for ns in CHOICES:
        mem = np.full(n, 100 * MI, dtype=float)
        mem[n // 2] = 150 * MI
        frames.append(pd.DataFrame({
            "timestamp": t.astype(np.int64), "namespace": ns, "workload": "Deployment/web",
            "pod": "web-6d4cf56db6-x2x7k", "container": "app",
            "cpu": np.round(0.2 * rng.uniform(0.9, 1.1, n), 4), "memory": mem,
            "cpu_request": 1.0, "memory_request": 256 * MI,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def deployment(ns: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": USAGE},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.example/app:1",
                    "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
                }]},
            },
        },
    }  # fmt: skip


def policy(ns: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
        "metadata": {"name": "rightsize", "namespace": ns},
        "spec": {
            "targets": {"kinds": ["Deployment"]},
            "source": {"prometheus": {"url": prometheus_url, "history": f"{DAYS}d",
                                      "step": f"{STEP_S}s"}, "metricsServer": {"enabled": False}},
            "update": {"mode": "Apply", "hpaResources": CHOICES[ns]},
            "reconcileInterval": "5s",
        },
    }  # fmt: skip


class HpaCluster(InPlaceCluster):
    """The sandbox, the operator started later (``start``), and the HPA ``web``."""

    def hpa(self, ns: str) -> dict[str, Any]:
        return read_hpa(self.api, ns, "web")

    def target(self, ns: str) -> int:
        return int(self.hpa(ns)["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"])

    def measuring(self, ns: str, low: int, high: int) -> dict[str, Any] | None:
        """The HPA's status once it measures a utilization in [low, high] (None before)."""
        s = self.hpa(ns).get("status") or {}
        u = utilization(s)
        return s if u is not None and low <= u <= high else None

    def hpa_events(self, ns: str) -> list[tuple[str, str]]:
        items = client.CoreV1Api(self.api).list_namespaced_event(ns).items
        return [(e.reason, e.message) for e in items
                if e.involved_object.kind == "HorizontalPodAutoscaler"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(
    k8s_api: ApiClient, kubeconfig: str, prometheus: Prometheus, metrics_server: KubeAccess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HpaCluster, dict[str, dict[str, Any]]]]:  # fmt: skip
    """Yields the cluster and each HPA's status at 2 replicas before the operator ran."""
    install_crd(kubeconfig)
    tmp = tmp_path_factory.mktemp("hpa")
    end_s = float(int(time.time() // STEP_S) * STEP_S)
    usage_frame(end_s).to_csv(tmp / "samples.csv", index=False)
    prometheus.load_samples(tmp / "samples.csv", end_s, tmp / "om")

    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    v2 = client.AutoscalingV2Api(k8s_api)
    for ns in CHOICES:
        core.create_namespace(
            {"metadata": {"name": ns, "labels": {"rightsizer.dev/auto-apply": "enabled"}}}
        )
        apps.create_namespaced_deployment(ns, deployment(ns))
        v2.create_namespaced_horizontal_pod_autoscaler(ns, hpa(20))
    cl = HpaCluster(k8s_api, kubeconfig, tmp / "operator.log", prometheus.url)
    before = {
        ns: wait_for(f"{ns}: the HPA measuring ≈ 20 % on 2 replicas",
                     lambda ns=ns: cl.measuring(ns, 15, 25), 240)
        for ns in CHOICES
    }  # fmt: skip
    for ns, s in before.items():
        print(
            f"{ns}: before the operator, HPA desiredReplicas {s['desiredReplicas']}, "
            f"utilization {utilization(s)} % of 1000m"
        )
        assert s["desiredReplicas"] == 2
    cl.start()
    custom = client.CustomObjectsApi(k8s_api)
    for ns in CHOICES:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL,
                                               policy(ns, prometheus.url))  # fmt: skip
    yield cl, before
    for ns in CHOICES:
        custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "rightsize")
    wait_for("the policies gone", lambda: not any(
        custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        for ns in CHOICES), 60)  # fmt: skip
    cl.operator.stop()
    for ns in CHOICES:
        core.delete_namespace(ns, propagation_policy="Background")


Setup = tuple[HpaCluster, dict[str, dict[str, Any]]]


def test_compensate_moves_the_hpa_target_and_keeps_the_replicas(cluster: Setup) -> None:
    cl, before = cluster
    apps = client.AppsV1Api(cl.api)
    wait_for("the CPU request lowered", lambda: cl.requests(COMPENSATE, "web")["cpu"] < 1, 180)
    assert cl.requests(COMPENSATE, "web")["cpu"] == 0.5
    assert cl.target(COMPENSATE) == 40  # 20 % × 1000m ÷ 500m
    annotation = json.loads(cl.hpa(COMPENSATE)["metadata"]["annotations"][HPA_RECORD_ANNOTATION])
    assert annotation["targets"] == {"0": [20, 40]}
    wait_for("the rollout over", lambda: only_new_pods_measured(apps, COMPENSATE), 240)
    after = wait_for("the HPA measuring the new pods (≈ 40 % of 500m)",
                     lambda: cl.measuring(COMPENSATE, 35, 45), 240)  # fmt: skip
    print(
        f"{COMPENSATE}: HPA desiredReplicas {before[COMPENSATE]['desiredReplicas']} → "
        f"{after['desiredReplicas']} (utilization {utilization(before[COMPENSATE])} % of "
        f"1000m → {utilization(after)} % of 500m, target 20 % → 40 %)"
    )
    assert after["desiredReplicas"] == 2, after
    assert apps.read_namespaced_deployment("web", COMPENSATE).spec.replicas == 2

    action = wait_for("lastAction with the HPA change",
                      lambda: (cl.entry(COMPENSATE, "web").get("lastAction") or {}).get("hpa"),
                      60)  # fmt: skip
    assert action == [{"name": "web", "metric": 0, "resource": "cpu",
                       "previous": 20, "applied": 40}]  # fmt: skip
    events = cl.hpa_events(COMPENSATE)
    assert any(r == "HpaTargetMoved" and "20%→40%" in m for r, m in events), events
    applied = [m for _, r, m in cl.events(COMPENSATE, "web") if r == "ResourcesApplied"]
    assert applied and "20%→40%" in applied[0], applied


def test_skip_leaves_the_cpu_request_and_the_hpa_alone(cluster: Setup) -> None:
    cl, _ = cluster
    state = wait_for("web decided on", lambda: (cl.entry(SKIP, "web").get("autoApply") or {})
                     .get("state"), 180)  # fmt: skip
    print(f"{SKIP}: {state}, {cl.entry(SKIP, 'web').get('autoApply')}")
    # Memory is lowered (a rollout); the CPU request an HPA scales on is not.
    wait_for("memory lowered", lambda: cl.requests(SKIP, "web")["memory"] < 256 * MI, 120)
    assert cl.requests(SKIP, "web")["cpu"] == 1
    assert cl.target(SKIP) == 20
    assert HPA_RECORD_ANNOTATION not in (cl.hpa(SKIP)["metadata"].get("annotations") or {})
    assert not cl.hpa_events(SKIP) or all(r != "HpaTargetMoved" for r, _ in cl.hpa_events(SKIP))


def test_allow_lowers_the_request_alone_and_the_hpa_scales_out(cluster: Setup) -> None:
    cl, before = cluster
    wait_for("the CPU request lowered", lambda: cl.requests(ALLOW, "web")["cpu"] < 1, 180)
    assert cl.requests(ALLOW, "web")["cpu"] == 0.5
    assert cl.target(ALLOW) == 20
    scaled = wait_for("the HPA scaling out",
                      lambda: (s := cl.hpa(ALLOW).get("status") or {})
                      and s.get("desiredReplicas", 0) > 2 and s, 240)  # fmt: skip
    print(
        f"{ALLOW}: HPA desiredReplicas {before[ALLOW]['desiredReplicas']} → "
        f"{scaled['desiredReplicas']} (utilization {utilization(scaled)} %, target 20 %)"
    )
    assert scaled["desiredReplicas"] > 2


def test_a_failed_rollout_puts_the_hpa_target_back(cluster: Setup) -> None:
    cl, _ = cluster
    core = client.CoreV1Api(cl.api)
    wait_for("the CPU request lowered", lambda: cl.requests(REVERT, "web")["cpu"] < 1, 180)
    assert cl.target(REVERT) == 40

    def new_pod() -> Any:
        for p in core.list_namespaced_pod(REVERT, label_selector="app=web").items:
            requests = p.spec.containers[0].resources.requests or {}
            if requests.get("cpu") == "500m" and p.status.container_statuses:
                return p
        return None

    pod = wait_for("a pod of the new ReplicaSet running", new_pod, 120)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses = cl.api.sanitize_for_serialization(pod.status.container_statuses)
    statuses[0]["lastState"] = {"terminated": {
        "reason": "OOMKilled", "exitCode": 137, "startedAt": now, "finishedAt": now}}  # fmt: skip
    core.patch_namespaced_pod_status(pod.metadata.name, REVERT,
                                     {"status": {"containerStatuses": statuses}})  # fmt: skip
    wait_for("the request put back", lambda: cl.requests(REVERT, "web")["cpu"] == 1, 120)
    wait_for("the HPA target put back", lambda: cl.target(REVERT) == 20, 60)
    record = json.loads(cl.deployment(REVERT, "web")["metadata"]["annotations"][
        RECORD_ANNOTATION])  # fmt: skip
    assert record["state"] == "Reverted" and "OOMKilled" in record["reason"]
    assert record["hpa"] == [{"name": "web", "metric": 0, "resource": "cpu",
                              "previous": 40, "applied": 20}]  # fmt: skip
    wait_for("lastAction Reverted with the HPA", lambda: (
        (a := cl.entry(REVERT, "web").get("lastAction") or {}).get("type") == "Reverted"
        and a.get("hpa")), 60)  # fmt: skip
    wait_for("the HPA's put-back Event", lambda: any(
        r == "HpaTargetMoved" and "put back" in m
        for r, m in cl.hpa_events(REVERT)), 60)  # fmt: skip
    previous = json.loads(cl.hpa(REVERT)["metadata"]["annotations"][HPA_RECORD_ANNOTATION])
    assert previous["targets"] == {"0": [40, 20]}
    print(f"{REVERT}: reverted ({record['reason']}): cpu back to 1000m, HPA target 40 % → 20 %")
