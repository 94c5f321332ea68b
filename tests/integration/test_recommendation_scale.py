"""The CI-sized scale check of issue 14 (the 10,000-workload run is ``make bench-scale``):
200 Deployments under one policy get 200 RightSizeRecommendation objects, and a steady
reconcile writes none of them and leaves the policy's status alone, counted by the API
server itself (``apiserver_request_total``). The real kube-apiserver, kwok, Prometheus with
three hours of history per Deployment; the operator as a subprocess."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    get_policy,
    install_crd,
    policy_body,
    stop_after_deleting_policies,
    wait_reconciles,
)
from tests.integration.test_recommendation_objects import RSR, apiserver_writes, operator_writes
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

NS = "rsr-scale"
WORKLOADS = 200
STEP_S = 300
HOURS = 3
MI = 2**20


def deployment(name: str) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": "registry.example/app:1", "resources": {
                    "requests": {"cpu": "500m", "memory": "512Mi"}}}]}},
        },
    }  # fmt: skip


def samples(path: Path, end_s: float) -> None:
    """Three hours at 5 minutes per Deployment, each its own level of usage."""
    n = HOURS * 3600 // STEP_S + 1
    t = (end_s - (n - 1 - np.arange(n)) * STEP_S).astype(np.int64)
    frames = []
    for i in range(WORKLOADS):
        columns = {
            "timestamp": t, "namespace": NS, "workload": f"Deployment/app-{i:03}",
            "pod": f"app-{i:03}-6d4cf56db6-x2x7k", "container": "app",
            "cpu": 0.05 + 0.005 * i, "memory": (100 + i) * MI, "cpu_request": 0.5,
            "cpu_limit": 1.0, "memory_request": 512 * MI, "memory_limit": 1024 * MI,
        }  # fmt: skip
        frames.append(pd.DataFrame(columns))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


@pytest.fixture(scope="module")
def cluster(
    k8s_api: ApiClient, kubeconfig: str, prometheus: Prometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiClient]:  # fmt: skip
    install_crd(kubeconfig)
    tmp = tmp_path_factory.mktemp("scale")
    end_s = float(math.floor(time.time() / STEP_S) * STEP_S)
    samples(tmp / "samples.csv", end_s)
    prometheus.load_samples(tmp / "samples.csv", end_s, tmp / "om")
    core = client.CoreV1Api(k8s_api)
    wait_for(  # an earlier run's namespace may still be terminating
        f"no namespace {NS}",
        lambda: not core.list_namespace(field_selector=f"metadata.name={NS}").items,
        120,
    )
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    apps = client.AppsV1Api(k8s_api)
    for i in range(WORKLOADS):
        apps.create_namespaced_deployment(NS, deployment(f"app-{i:03}"))
    yield k8s_api
    core.delete_namespace(NS, propagation_policy="Background")
    # Gone before the next module starts: its objects' deletions would otherwise count
    # as writes in the API server's totals another test reads.
    wait_for(
        f"namespace {NS} gone",
        lambda: not core.list_namespace(field_selector=f"metadata.name={NS}").items,
        600,
    )


@pytest.fixture(scope="module")
def operator(
    cluster: ApiClient, kubeconfig: str, prometheus: Prometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:  # fmt: skip
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = Operator(kubeconfig, log, prometheus.url, namespaces=[NS])
    yield op
    stop_after_deleting_policies(op, cluster, NS)


def count(api: ApiClient) -> int:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, NS, RSR, label_selector="rightsizer.dev/policy=sizing"
    )["items"]
    return sum(1 for o in items if (o.get("status") or {}).get("state"))


def test_200_workloads_get_200_objects_and_a_steady_reconcile_writes_none(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus, kubeconfig: str
) -> None:
    start = time.monotonic()
    writes_before = apiserver_writes(kubeconfig)
    body = policy_body("sizing", prometheus.url, NS, history=f"{HOURS}h", targets={
        "kinds": ["Deployment"]}, reconcileInterval="5s")  # fmt: skip
    client.CustomObjectsApi(cluster).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, body
    )
    wait_for(f"{WORKLOADS} objects with a status", lambda: count(cluster) == WORKLOADS, 150)
    seconds = time.monotonic() - start
    policy = wait_for(
        "the policy's totals over all of them",
        lambda: (
            (p := get_policy(cluster, "sizing", NS))
            and (p.get("status", {}).get("summary") or {}).get("workloads") == WORKLOADS
            and p
        ),
        60,
    )
    status = policy["status"]
    assert status["summary"]["containers"] == WORKLOADS
    assert status["summary"]["states"]["Recommended"] == WORKLOADS
    assert len(status["topChanges"]) == 20 and "workloads" not in status
    first = {k: v - writes_before[k] for k, v in apiserver_writes(kubeconfig).items()}
    # one create and one status write per object, nothing more
    assert first["POST"] == WORKLOADS and first["PATCH"] == WORKLOADS, first

    wait_reconciles(operator, NS, "sizing", 1)
    before, ours = apiserver_writes(kubeconfig), operator_writes(operator)
    policy_version = get_policy(cluster, "sizing", NS)["metadata"]["resourceVersion"]
    wait_reconciles(operator, NS, "sizing", 2)
    steady = {k: v - before[k] for k, v in apiserver_writes(kubeconfig).items()}
    assert steady == dict.fromkeys(steady, 0.0), steady
    assert operator_writes(operator) == ours
    assert get_policy(cluster, "sizing", NS)["metadata"]["resourceVersion"] == policy_version
    print(
        f"\n{WORKLOADS} objects in {seconds:.1f} s after the policy's creation; "
        f"first contact: {first}; steady reconcile: {steady}"
    )
