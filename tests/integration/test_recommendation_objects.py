"""RightSizeRecommendation objects end to end on the sandbox: the real kube-apiserver,
kube-controller-manager (its garbage collector), kwok, Prometheus holding the example's
history for this module's own namespace, the real kubectl; the operator as a subprocess.

Each test creates its own policies and removes them (waiting until they are gone), so the
tests do not depend on each other's order.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.cli.main import main
from rightsizer.sources.samples_file import read_samples
from tests.integration.conftest import EXAMPLE, EXAMPLE_STEP_S
from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    condition,
    deployment_body,
    get_policy,
    install_crd,
    policy_body,
    reconciles,
    statefulset_body,
    stop_after_deleting_policies,
    wait_reconciles,
)
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus, Sandbox

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

NS = "rsr-shop"
RSR = "rightsizerecommendations"
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def history(prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory) -> float:
    """The example's ``shop`` namespace as ``rsr-shop``, ending at a recent 5-minute
    boundary (on the query step grid)."""
    end_s = math.floor(time.time() / EXAMPLE_STEP_S) * EXAMPLE_STEP_S
    example = read_samples(str(EXAMPLE))
    renamed = example[example["namespace"] == "shop"].assign(namespace=NS)
    samples = tmp_path_factory.mktemp("rsr") / "samples.csv"
    renamed.to_csv(samples, index=False)
    out = tmp_path_factory.mktemp("rsr-om")
    argv = ["dev", "openmetrics", "--samples", str(samples), "--end", str(end_s)]
    assert main([*argv, "--output", str(out)]) == 0
    prometheus.load_openmetrics(sorted(out.glob("*.om")))
    return float(end_s)


@pytest.fixture(scope="module")
def cluster(k8s_api: ApiClient, kubeconfig: str, history: float) -> Iterator[ApiClient]:
    install_crd(kubeconfig)
    core = client.CoreV1Api(k8s_api)
    wait_for(  # an earlier run's namespace may still be terminating
        f"no namespace {NS}",
        lambda: not core.list_namespace(field_selector=f"metadata.name={NS}").items,
        120,
    )
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(NS, deployment_body(NS))
    apps.create_namespaced_stateful_set(NS, statefulset_body(NS))
    yield k8s_api
    core.delete_namespace(NS, propagation_policy="Background")


@pytest.fixture(scope="module")
def operator(
    cluster: ApiClient, kubeconfig: str, prometheus: Prometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:  # fmt: skip
    # This namespace only: the write counts below are the API server's, cluster-wide.
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = Operator(kubeconfig, log, prometheus.url, namespaces=[NS])
    yield op
    stop_after_deleting_policies(op, cluster, NS)


# -- helpers --------------------------------------------------------------------------------
def objects(api: ApiClient, selector: str = "") -> dict[str, dict[str, Any]]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, NS, RSR, label_selector=selector
    )["items"]
    return {o["metadata"]["name"]: o for o in items}


def create_policy(api: ApiClient, prometheus: Prometheus, name: str, **spec: Any) -> str:
    """The policy's uid."""
    body = policy_body(name, prometheus.url, NS, **spec)
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, body
    )
    return str(created["metadata"]["uid"])


def delete_policy(api: ApiClient, name: str) -> None:
    custom = client.CustomObjectsApi(api)
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
    wait_for(
        f"policy {name} gone",
        lambda: (
            name
            not in {
                p["metadata"]["name"]
                for p in custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
            }
        ),
        60,
    )


def recommended(api: ApiClient, selector: str, names: set[str]) -> dict[str, dict[str, Any]]:
    """The objects once exactly ``names`` exist for ``selector``, each with a status."""
    found: dict[str, dict[str, Any]] = wait_for(
        f"objects {sorted(names)} ({selector})",
        lambda: (
            (got := objects(api, selector))
            and set(got) == names
            and all(o.get("status", {}).get("state") for o in got.values())
            and got
        ),
    )
    return found


def apiserver_writes(kubeconfig: str) -> dict[str, float]:
    """Writes to RightSizeRecommendations (and their status) the API server has served,
    by verb, from its own ``apiserver_request_total``."""
    text = kubectl(kubeconfig, "get", "--raw", "/metrics")
    out = dict.fromkeys(WRITE_VERBS, 0.0)
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{") or f'resource="{RSR}"' not in line:
            continue
        verb = re.search(r'verb="([A-Z]+)"', line)
        if verb and verb.group(1) in out:
            out[verb.group(1)] += float(line.rsplit(" ", 1)[1])
    return out


def operator_writes(op: Operator) -> float:
    """``rightsizer_recommendation_writes_total``, all actions, from the operator."""
    with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rightsizer_recommendation_writes_total{")
    )


def kubectl(kubeconfig: str, *args: str) -> str:
    binary = str(Sandbox().cfg.binary("kubectl"))
    done = subprocess.run(
        [binary, "--kubeconfig", kubeconfig, *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["containers"] if c["name"] == name)


# -- the tests ------------------------------------------------------------------------------
def test_one_object_per_workload_read_with_kubectl_and_no_writes_when_nothing_changes(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus, kubeconfig: str
) -> None:
    uid = create_policy(cluster, prometheus, "objects")
    try:
        found = recommended(
            cluster, "rightsizer.dev/policy=objects", {"deployment-web", "statefulset-db"}
        )
        web = found["deployment-web"]
        assert web["metadata"]["labels"] == {
            "rightsizer.dev/policy": "objects",
            "rightsizer.dev/workload-kind": "Deployment",
            "rightsizer.dev/workload-name": "web",
        }
        (owner,) = web["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("RightSizePolicy", "objects", uid)
        workload = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
        assert web["spec"]["workload"] == workload
        status = web["status"]
        assert status["state"] == "Recommended" and status["workload"] == "Deployment/web"
        assert status["cpu"].startswith("600m→") and status["memory"].startswith("640Mi→")
        # the policy's status sums the objects up and says how to list them
        policy = wait_for(
            "the policy Ready with its totals",
            lambda: (
                (p := get_policy(cluster, "objects", NS))
                and condition(p, "Ready").get("status") == "True"
                and (p["status"].get("summary") or {}).get("workloads") == 2
                and p
            ),
        )
        summary = policy["status"]["summary"]
        assert summary["states"]["Recommended"] == 2 and "truncated" not in summary
        assert policy["status"]["recommendations"] == {
            "count": 2, "labelSelector": "rightsizer.dev/policy=objects",
            "command": f"kubectl get rsr -n {NS} -l rightsizer.dev/policy=objects",
        }  # fmt: skip
        top = {t["workload"]: t for t in policy["status"]["topChanges"]}
        if "Deployment/web" in top:
            assert (top["Deployment/web"]["cpu"], top["Deployment/web"]["memory"]) == (
                status["cpu"], status["memory"],
            )  # fmt: skip
        assert container(web, "app")["requests"] == {"cpu": "500m", "memory": "512Mi"}
        assert container(web, "app")["evidence"]["historyHours"] > 24

        # the real kubectl: the columns, by short name, by label and across namespaces
        table = kubectl(kubeconfig, "get", "rsr", "-n", NS, "-l", "rightsizer.dev/policy=objects")
        header, *rows = table.strip().splitlines()
        assert header.split() == ["NAME", "WORKLOAD", "CPU", "MEMORY", "CONFIDENCE", "STATE", "AGE"]
        row = next(r.split() for r in rows if r.startswith("deployment-web "))
        assert row[1:6] == [status["workload"], status["cpu"], status["memory"],
                            status["confidence"], "Recommended"]  # fmt: skip
        everywhere = kubectl(kubeconfig, "get", "rightsizing", "-A")
        assert f"{NS}" in everywhere and "deployment-web" in everywhere

        # steady reconciles with nothing new write nothing (the API server's own count),
        # neither the objects nor the policy's status
        wait_reconciles(operator, NS, "objects", 1)
        before, ours = apiserver_writes(kubeconfig), operator_writes(operator)
        versions = {n: o["metadata"]["resourceVersion"] for n, o in objects(cluster).items()}
        policy_version = get_policy(cluster, "objects", NS)["metadata"]["resourceVersion"]
        wait_reconciles(operator, NS, "objects", 3)
        # (DELETEs are left out of the server's count: the namespace controller deletes
        # the objects of an earlier module's namespace whenever that one goes; a deletion
        # here would show in the names and versions compared below.)
        served = apiserver_writes(kubeconfig)
        assert {v: n for v, n in served.items() if v != "DELETE"} == {
            v: n for v, n in before.items() if v != "DELETE"
        }
        assert operator_writes(operator) == ours
        after = {n: o["metadata"]["resourceVersion"] for n, o in objects(cluster).items()}
        assert after == versions
        assert get_policy(cluster, "objects", NS)["metadata"]["resourceVersion"] == policy_version
    finally:
        delete_policy(cluster, "objects")
    # the garbage collector removes them with their policy (the operator never deletes
    # objects of a policy that is gone)
    wait_for("the objects gone with their policy", lambda: not objects(cluster), 90)


def test_objects_follow_their_workloads(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus
) -> None:
    apps = client.AppsV1Api(cluster)
    create_policy(cluster, prometheus, "follow")
    extra = deployment_body(NS)
    extra["metadata"]["name"] = "extra"
    try:
        recommended(cluster, "rightsizer.dev/policy=follow", {"deployment-web", "statefulset-db"})
        # a person changes a request: the object follows
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "700m"}}}]}}}}  # fmt: skip
        apps.patch_namespaced_deployment("web", NS, patch)
        web = wait_for(
            "the new request in the object",
            lambda: (
                (o := objects(cluster).get("deployment-web"))
                and container(o, "app")["requests"].get("cpu") == "700m"
                and o
            ),
        )
        assert web["status"]["cpu"].startswith("800m→")
        # a new workload gets an object; deleted, its object goes
        apps.create_namespaced_deployment(NS, extra)
        found = recommended(
            cluster, "rightsizer.dev/policy=follow",
            {"deployment-web", "statefulset-db", "deployment-extra"},
        )  # fmt: skip
        assert found["deployment-extra"]["status"]["state"] == "InsufficientData"
        apps.delete_namespaced_deployment("extra", NS)
        recommended(cluster, "rightsizer.dev/policy=follow", {"deployment-web", "statefulset-db"})
        # a workload leaving the selection loses its object
        client.CustomObjectsApi(cluster).patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, "follow", {"spec": {"targets": {"kinds": ["Deployment"]}}}
        )
        recommended(cluster, "rightsizer.dev/policy=follow", {"deployment-web"})
    finally:
        back = {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m"}}}]}}}}  # fmt: skip
        apps.patch_namespaced_deployment("web", NS, back)
        if apps.list_namespaced_deployment(NS, field_selector="metadata.name=extra").items:
            apps.delete_namespaced_deployment("extra", NS)
        delete_policy(cluster, "follow")
    wait_for("the objects gone with their policy", lambda: not objects(cluster), 90)


def test_a_new_request_shows_on_the_object_without_a_reconcile(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus
) -> None:
    """A policy reconciling once an hour: a write to the workload (a person's here; Apply
    mode's the same way) shows on its object at the next tick, and no reconcile ran
    meanwhile (the operator's own count)."""
    apps = client.AppsV1Api(cluster)
    # three hours of history: read in one reconcile (no catching up soon after)
    create_policy(cluster, prometheus, "hourly", history="3h", reconcileInterval="1h")
    try:
        recommended(cluster, "rightsizer.dev/policy=hourly", {"deployment-web", "statefulset-db"})
        done = reconciles(operator, NS, "hourly")
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "650m"}}}]}}}}  # fmt: skip
        apps.patch_namespaced_deployment("web", NS, patch)
        web = wait_for(
            "the new request on the object",
            lambda: (
                (o := objects(cluster).get("deployment-web"))
                and container(o, "app")["requests"].get("cpu") == "650m"
                and o
            ),
            60,
        )
        assert web["status"]["cpu"].startswith("750m→")
        assert reconciles(operator, NS, "hourly") == done
    finally:
        back = {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m"}}}]}}}}  # fmt: skip
        apps.patch_namespaced_deployment("web", NS, back)
        delete_policy(cluster, "hourly")
    wait_for("the objects gone with their policy", lambda: not objects(cluster), 90)


def test_a_workload_selected_by_two_policies_has_one_object_owned_by_the_older(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus
) -> None:
    older = create_policy(cluster, prometheus, "older")
    newer = ""
    try:
        recommended(cluster, "rightsizer.dev/policy=older", {"deployment-web", "statefulset-db"})
        newer = create_policy(cluster, prometheus, "newer")
        wait_for(
            "Conflict on the newer policy",
            lambda: condition(get_policy(cluster, "newer", NS), "Conflict").get("status") == "True",
        )
        wait_reconciles(operator, NS, "newer", 2)
        message = condition(get_policy(cluster, "newer", NS), "Conflict")["message"]
        for ref, name in (
            ("Deployment/web", "deployment-web"),
            ("StatefulSet/db", "statefulset-db"),
        ):
            assert f"{ref} belongs to policy older (RightSizeRecommendation {NS}/{name})" in message
        found = objects(cluster)
        assert set(found) == {"deployment-web", "statefulset-db"}
        for obj in found.values():
            assert obj["metadata"]["labels"]["rightsizer.dev/policy"] == "older"
            assert [o["uid"] for o in obj["metadata"]["ownerReferences"]] == [older]
        # the older policy goes: its objects go with it, and the newer one takes over
        delete_policy(cluster, "older")
        taken = recommended(
            cluster, "rightsizer.dev/policy=newer", {"deployment-web", "statefulset-db"}
        )
        for obj in taken.values():
            assert [o["uid"] for o in obj["metadata"]["ownerReferences"]] == [newer]
    finally:
        for name in ("older", "newer"):
            if name in {
                p["metadata"]["name"]
                for p in client.CustomObjectsApi(cluster).list_namespaced_custom_object(
                    GROUP, VERSION, NS, PLURAL
                )["items"]
            }:
                delete_policy(cluster, name)
    wait_for("the objects gone with their policies", lambda: not objects(cluster), 90)


SPIKY_STEP_S = 15
MI = 2**20


def spiky_samples(path: Path, start_s: float, end_s: float, memory_mi: float, cpu: float) -> None:
    """Samples of ``Deployment/spiky`` every 15 s from ``start_s`` to ``end_s``."""
    n = int((end_s - start_s) // SPIKY_STEP_S) + 1
    t = end_s - (n - 1 - np.arange(n)) * SPIKY_STEP_S
    pd.DataFrame({
        "timestamp": t.astype(np.int64), "namespace": NS, "workload": "Deployment/spiky",
        "pod": "spiky-6d4cf56db6-x2x7k", "container": "app",
        "cpu": cpu, "memory": memory_mi * MI, "cpu_request": 0.5, "cpu_limit": 1.0,
        "memory_request": 512 * MI, "memory_limit": 4096 * MI,
    }).to_csv(path, index=False)  # fmt: skip


def test_an_object_follows_a_change_of_usage(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus, tmp_path: Path
) -> None:
    """Usage changes, requests do not: new samples in Prometheus (memory far above the
    history's) move the object's memory target at a later reconcile. The new samples lie
    just ahead of the clock, since the operator reads each span of time once."""
    apps = client.AppsV1Api(cluster)
    spiky = deployment_body(NS)
    spiky["metadata"].update(name="spiky", labels={"app": "spiky"})
    spiky["spec"].update(replicas=1, selector={"matchLabels": {"app": "spiky"}})
    spiky["spec"]["template"]["metadata"]["labels"] = {"app": "spiky"}
    spiky["spec"]["template"]["spec"]["containers"] = spiky["spec"]["template"]["spec"][
        "containers"
    ][:1]
    spiky["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "4Gi"
    end_s = math.floor(time.time() / SPIKY_STEP_S) * SPIKY_STEP_S
    spiky_samples(tmp_path / "calm.csv", end_s - 3 * 3600, end_s, 200, 0.1)
    prometheus.load_samples(tmp_path / "calm.csv", end_s, tmp_path / "calm-om")
    apps.create_namespaced_deployment(NS, spiky)
    selector = {"kinds": ["Deployment"], "selector": {"matchLabels": {"app": "spiky"}}}
    create_policy(cluster, prometheus, "usage", history="3h", step="15s", targets=selector)
    try:
        found = recommended(cluster, "rightsizer.dev/policy=usage", {"deployment-spiky"})
        before = container(found["deployment-spiky"], "app")
        calm = before["exact"]["target"]["memoryBytes"]
        assert calm < 512 * MI and before["requests"]["memory"] == "512Mi"
        version = found["deployment-spiky"]["metadata"]["resourceVersion"]
        # 2 GiB from half a minute from now on, for 2.5 minutes (the first sample the
        # operator reads is enough; the length only leaves room for a slow load)
        start = math.ceil(time.time() / SPIKY_STEP_S) * SPIKY_STEP_S + 30
        spiky_samples(tmp_path / "spike.csv", start, start + 150, 2048, 0.1)
        prometheus.load_samples(tmp_path / "spike.csv", start + 150, tmp_path / "spike-om")
        after = wait_for(
            "the memory target up with the new usage",
            lambda: (
                (o := objects(cluster).get("deployment-spiky"))
                and container(o, "app")["exact"]["target"]["memoryBytes"] > 4 * calm
                and o
            ),
            150,
        )
        spiked = container(after, "app")
        assert spiked["requests"] == before["requests"]  # the requests did not change
        assert spiked["evidence"]["peakMemoryBytes"] >= 2048 * MI
        assert after["metadata"]["resourceVersion"] != version
        assert after["status"]["memory"].startswith("512Mi→")
    finally:
        delete_policy(cluster, "usage")
        apps.delete_namespaced_deployment("spiky", NS)
    wait_for("the objects gone with their policy", lambda: not objects(cluster), 90)


def test_an_hpa_s_target_change_shows_on_the_object_before_any_write(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus
) -> None:
    """Recommend mode, a real HPA on ``web`` (cpu by Utilization, memory by AverageValue):
    the object shows the cpu target that keeps the HPA's scale point with the recommended
    requests (the pod's sum: a Resource metric), the memory one as needing nothing; an
    edit of the HPA and its deletion show too. Nothing is written to the HPA."""
    v2 = client.AutoscalingV2Api(cluster)
    body = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {
                    "type": "AverageValue", "averageValue": "1Gi"}}},
            ],
        },
    }  # fmt: skip
    v2.create_namespaced_horizontal_pod_autoscaler(NS, body)
    create_policy(cluster, prometheus, "hpa-view")

    def shown(percent: int | None) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            o = objects(cluster, "rightsizer.dev/policy=hpa-view").get("deployment-web")
            hpa = (o or {}).get("status", {}).get("hpa")
            if percent is None:
                return o if o and o["status"].get("state") and not hpa else None
            return o if hpa and hpa[0].get("targetPercent") == percent else None

        found: dict[str, Any] = wait_for(f"the HPA's target {percent} on the object", ready, 120)
        return found

    try:
        web = shown(60)
        cpu, memory = web["status"]["hpa"]
        exact = {c["name"]: c["exact"] for c in web["status"]["containers"]}
        now = sum(e["requests"]["cpuMillicores"] for e in exact.values())
        then = sum(e.get("target", e["requests"])["cpuMillicores"] for e in exact.values())
        assert now == 600 and then != now
        expected = math.floor(60 * now / then + 0.5)
        assert (cpu["name"], cpu["resource"], cpu["source"]) == ("web-hpa", "cpu", "Resource")
        assert (cpu["compensatedPercent"], cpu["withinBounds"]) == (expected, 10 <= expected <= 200)
        assert cpu["message"].startswith(f"HPA web-hpa cpu 60%→{expected}%")
        assert memory["targetType"] == "AverageValue" and "compensatedPercent" not in memory
        assert "no change needed" in memory["message"]
        # Recommend mode writes nothing to the HPA
        hpa_now = v2.read_namespaced_horizontal_pod_autoscaler("web-hpa", NS)
        assert hpa_now.spec.metrics[0].resource.target.average_utilization == 60
        # a person edits the HPA: the object follows; the HPA deleted: the field goes
        cpu_30 = {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 30}}}  # fmt: skip
        edit = {"spec": {"metrics": [cpu_30]}}
        v2.patch_namespaced_horizontal_pod_autoscaler("web-hpa", NS, edit)
        (alone,) = shown(30)["status"]["hpa"]
        assert alone["compensatedPercent"] == math.floor(30 * now / then + 0.5)
        v2.delete_namespaced_horizontal_pod_autoscaler("web-hpa", NS)
        shown(None)
    finally:
        if v2.list_namespaced_horizontal_pod_autoscaler(
            NS, field_selector="metadata.name=web-hpa"
        ).items:
            v2.delete_namespaced_horizontal_pod_autoscaler("web-hpa", NS)
        delete_policy(cluster, "hpa-view")
    wait_for("the objects gone with their policy", lambda: not objects(cluster), 90)
