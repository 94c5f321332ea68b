"""Apply mode's in-place methods end to end on the sandbox: the operator (a subprocess)
writes the workload's ``rightsizer.dev/pod-resources`` annotation and resizes its running
pods through the real API server's ``pods/resize``; the kubelet's answers (accepted,
``Infeasible``, ``Deferred``) come from the project's kwok stages
(tests/sandbox/kwok/pod-resize.yaml), chosen per pod by the annotation
``sandbox.rightsizer.dev/resize``.

One thing is mocked: an OOM kill. kwok runs no containers, so the test writes what a
kubelet reports after one (``lastState.terminated.reason: OOMKilled``) into the pod's
status itself."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.names import POD_RESOURCES_ANNOTATION, RECORD_ANNOTATION
from rightsizer.quantity import parse_quantity
from tests.integration.test_auto_apply_e2e import Cluster
from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    install_crd,
    wait_reconciles,
)
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

IP, FB, OFF = "inplace", "inplace-fallback", "inplace-off"
NAMESPACES = (IP, FB, OFF)
WORKLOADS = {
    IP: {"shrink": 2, "stuck": 1, "deferred": 1, "oom": 1},
    FB: {"stuck": 1},
    OFF: {"shrink": 1},
}
#: Pods told to answer a resize so (the kwok stages read this annotation).
KUBELET_ANSWER = "sandbox.rightsizer.dev/resize"
ANSWERS = {(IP, "stuck"): "Infeasible", (FB, "stuck"): "Infeasible", (IP, "deferred"): "Deferred"}
STEP_S = 300
DAYS = 2
MI = 2**20


def usage_frame(end_s: float) -> pd.DataFrame:
    """Two days at 5 minutes of low usage (0.1 core, 200Mi, one 300Mi peak) for every
    workload: each is asked to shrink (1 core → 500m, 1Gi → 512Mi: one 50 % step)."""
    rng = np.random.default_rng(7)
    n = int(DAYS * 24 * 3600 / STEP_S)
    t = end_s - (n - 1 - np.arange(n)) * STEP_S
    frames = []
    for ns, names in WORKLOADS.items():
        for name in names:
            mem = np.full(n, 200 * MI, dtype=float)
            mem[n // 2] = 300 * MI
            frames.append(pd.DataFrame({
                "timestamp": t.astype(np.int64), "namespace": ns,
                "workload": f"Deployment/{name}", "pod": f"{name}-6d4cf56db6-x2x7k",
                "container": "app", "cpu": np.round(0.1 * rng.uniform(0.9, 1.1, n), 4),
                "memory": mem, "cpu_request": 1.0, "cpu_limit": 2.0,
                "memory_request": 1024 * MI, "memory_limit": 1024 * MI,
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": "app", "image": f"registry.example/{name}:1",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                              "limits": {"cpu": "2", "memory": "1Gi"}},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"},
                                 {"resourceName": "memory", "restartPolicy": "NotRequired"}],
            }]}},
        },
    }  # fmt: skip


def policy(ns: str, prometheus_url: str, method: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
        "metadata": {"name": "rightsize", "namespace": ns},
        "spec": {
            "targets": {"kinds": ["Deployment"]},
            "source": {"prometheus": {"url": prometheus_url, "history": f"{DAYS}d",
                                      "step": f"{STEP_S}s"}, "metricsServer": {"enabled": False}},
            "update": {"mode": "Apply", "method": method,
                       "inPlace": {"maxPodsPerWorkload": 1, "deferredTimeout": "30m"}},
            "reconcileInterval": "5s",
        },
    }  # fmt: skip


class InPlaceCluster(Cluster):
    def __init__(self, api: ApiClient, kubeconfig: str, log: Path, prometheus_url: str) -> None:
        """As ``Cluster``, without starting the operator (``start``)."""
        self.api, self.kubeconfig, self.log = api, kubeconfig, log
        self.allowed = [prometheus_url]

    def start(self) -> None:
        self.operator = Operator(self.kubeconfig, self.log, self.allowed)

    def pods(self, ns: str, name: str) -> list[dict[str, Any]]:
        items = client.CoreV1Api(self.api).list_namespaced_pod(ns, label_selector=f"app={name}")
        data: dict[str, Any] = self.api.sanitize_for_serialization(items)  # type: ignore[no-untyped-call]
        return sorted(data.get("items") or [], key=lambda p: p["metadata"]["name"])

    def in_force(self, ns: str, name: str) -> list[tuple[str, float, float]]:
        """(uid, cpu, memory) requests in force per pod (reported by the kubelet)."""
        out = []
        for p in self.pods(ns, name):
            reported = (p["status"].get("containerStatuses") or [{}])[0].get("resources") or {}
            req = reported.get("requests") or {}
            out.append((p["metadata"]["uid"], float(parse_quantity(req.get("cpu", "0"))),
                        float(parse_quantity(req.get("memory", "0")))))  # fmt: skip
        return out

    def annotation(self, ns: str, name: str, key: str) -> str | None:
        value = (self.deployment(ns, name)["metadata"].get("annotations") or {}).get(key)
        return None if value is None else str(value)

    def state(self, ns: str, name: str) -> tuple[str | None, str | None]:
        auto = self.entry(ns, name).get("autoApply") or {}
        return auto.get("state"), auto.get("reason")


@pytest.fixture(scope="module")
def cluster(
    k8s_api: ApiClient, kubeconfig: str, prometheus: Prometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[InPlaceCluster, dict[tuple[str, str], list[str]]]]:  # fmt: skip
    """Yields the cluster and the pod UIDs of every workload before the operator ran."""
    install_crd(kubeconfig)
    tmp = tmp_path_factory.mktemp("inplace")
    end_s = float(int(time.time() // STEP_S) * STEP_S)
    usage_frame(end_s).to_csv(tmp / "samples.csv", index=False)
    prometheus.load_samples(tmp / "samples.csv", end_s, tmp / "om")

    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    for ns in NAMESPACES:
        labels = {} if ns == OFF else {"rightsizer.dev/auto-apply": "enabled"}
        core.create_namespace({"metadata": {"name": ns, "labels": labels}})
        for name, replicas in WORKLOADS[ns].items():
            apps.create_namespaced_deployment(ns, deployment(ns, name, replicas))
    cl = InPlaceCluster(k8s_api, kubeconfig, tmp / "operator.log", prometheus.url)

    def reported(ns: str, name: str) -> bool:
        got = cl.in_force(ns, name)
        return len(got) == WORKLOADS[ns][name] and all(cpu == 1 for _, cpu, _ in got)

    for ns, names in WORKLOADS.items():
        for name in names:
            wait_for(f"{ns}/{name}'s pods running, resources reported",
                     lambda ns=ns, name=name: reported(ns, name), 90)  # fmt: skip
    for (ns, name), answer in ANSWERS.items():
        for p in cl.pods(ns, name):
            answered = {"metadata": {"annotations": {KUBELET_ANSWER: answer}}}
            core.patch_namespaced_pod(p["metadata"]["name"], ns, answered)
    uids = {
        (ns, name): [u for u, _, _ in cl.in_force(ns, name)]
        for ns, names in WORKLOADS.items() for name in names
    }  # fmt: skip
    cl.start()  # once the pods are as the tests want them
    custom = client.CustomObjectsApi(k8s_api)
    for ns, method in ((IP, "InPlace"), (FB, "InPlaceOrRollout"), (OFF, "InPlace")):
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL,
                                               policy(ns, prometheus.url, method))  # fmt: skip
    yield cl, uids
    for ns in NAMESPACES:
        custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "rightsize")
    wait_for("the policies gone", lambda: not any(
        custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        for ns in NAMESPACES), 60)  # fmt: skip
    cl.operator.stop()
    for ns in NAMESPACES:
        core.delete_namespace(ns, propagation_policy="Background")


Setup = tuple[InPlaceCluster, dict[tuple[str, str], list[str]]]


def template_requests(cl: InPlaceCluster, ns: str, name: str) -> dict[str, Any]:
    return cl.requests(ns, name)


def test_pods_are_resized_in_place_and_the_template_is_untouched(cluster: Setup) -> None:
    cl, uids = cluster
    # (A Deployment's generation moves with its annotations too: the template is compared.)
    template = cl.deployment(IP, "shrink")["spec"]["template"]
    done = wait_for("shrink's pods at 500m, in force", lambda: (
        (got := cl.in_force(IP, "shrink")) and all(cpu == 0.5 for _, cpu, _ in got) and got
    ), 120)  # fmt: skip
    assert [u for u, _, _ in done] == uids[(IP, "shrink")]  # the same pods: none recreated
    assert all(mem == 512 * MI for _, _, mem in done)
    for p in cl.pods(IP, "shrink"):
        assert [s["restartCount"] for s in p["status"]["containerStatuses"]] == [0]
        assert p["status"]["qosClass"] == "Burstable"  # as before: never changed
    dep = cl.deployment(IP, "shrink")
    assert dep["spec"]["template"] == template
    assert template_requests(cl, IP, "shrink") == {"cpu": 1, "memory": 1024 * MI}
    assert len(cl.replicasets(IP, "shrink")) == 1

    sized = json.loads(dep["metadata"]["annotations"][POD_RESOURCES_ANNOTATION])
    assert sized["policy"] == f"{IP}/rightsize"
    datetime.strptime(sized["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    app = sized["containers"]["app"]
    assert parse_quantity(app["requests"]["cpu"]) == parse_quantity("500m")
    assert parse_quantity(app["requests"]["memory"]) == 512 * MI
    record = json.loads(dep["metadata"]["annotations"][RECORD_ANNOTATION])
    assert record["method"] == "InPlace" and record["state"] == "Applied"
    assert record["previous"]["app"]["requests"] == {"cpuMillicores": 1000,
                                                     "memoryBytes": 1024 * MI}  # fmt: skip

    events = cl.events(IP, "shrink")
    assert any(r == "ResourcesApplied" and "in place" in m for _, r, m in events), events
    resized = [m for _, r, m in events if r == "PodsResized"]
    assert len(resized) == 2, events  # one pod at a time (maxPodsPerWorkload 1)
    action = wait_for("lastAction", lambda: cl.entry(IP, "shrink").get("lastAction"), 30)
    assert action["type"] == "Applied" and action["method"] == "InPlace"
    assert parse_quantity(action["previous"]["app"]["requests"]["cpu"]) == 1
    wait_for("shrink in cooldown", lambda: cl.hold(IP, "shrink") == "Cooldown", 60)


def test_an_infeasible_resize_is_held_under_in_place(cluster: Setup) -> None:
    cl, uids = cluster
    wait_for("stuck held", lambda: cl.hold(IP, "stuck") == "ResizeInfeasible", 120)
    wait_for("the ResizeInfeasible Event", lambda: any(
        r == "ResizeInfeasible" for _, r, _ in cl.events(IP, "stuck")), 30)  # fmt: skip
    time.sleep(3)  # a few more ticks
    assert template_requests(cl, IP, "stuck") == {"cpu": 1, "memory": 1024 * MI}
    assert len(cl.replicasets(IP, "stuck")) == 1
    got = cl.in_force(IP, "stuck")
    assert [u for u, _, _ in got] == uids[(IP, "stuck")]
    assert [cpu for _, cpu, _ in got] == [1]  # the kubelet did not apply it
    assert sum(r == "PodsResized" for _, r, _ in cl.events(IP, "stuck")) == 1  # asked once


def test_an_infeasible_resize_rolls_out_under_in_place_or_rollout(cluster: Setup) -> None:
    cl, _ = cluster
    wait_for("stuck rolled out", lambda: template_requests(cl, FB, "stuck")["cpu"] < 1, 120)
    assert template_requests(cl, FB, "stuck") == {"cpu": parse_quantity("500m"),
                                                  "memory": 512 * MI}  # fmt: skip
    wait_for("a second ReplicaSet", lambda: len(cl.replicasets(FB, "stuck")) == 2, 60)
    wait_for("the annotation gone", lambda: cl.annotation(
        FB, "stuck", POD_RESOURCES_ANNOTATION) is None, 30)  # fmt: skip
    record = json.loads(cl.annotation(FB, "stuck", RECORD_ANNOTATION) or "{}")
    assert record["reason"] == "InPlaceInfeasible" and record.get("method", "Rollout") == "Rollout"
    assert record["previous"]["app"]["requests"]["cpuMillicores"] == 1000
    events = cl.events(FB, "stuck")
    assert any(r == "ResourcesApplied" and "rolled out" in m for _, r, m in events), events


def test_a_deferred_resize_is_waited_for_across_a_restart_and_lands(cluster: Setup) -> None:
    cl, uids = cluster

    def deferred() -> bool:
        conditions = cl.pods(IP, "deferred")[0]["status"].get("conditions") or []
        return any(c["type"] == "PodResizePending" and c.get("reason") == "Deferred"
                   for c in conditions)  # fmt: skip

    wait_for("the resize deferred", deferred, 120)
    wait_for("shown as resizing", lambda: cl.state(IP, "deferred") == ("Applied", "Resizing"), 60)
    time.sleep(3)  # a few more ticks: waited for, not asked again, not held
    assert cl.state(IP, "deferred") == ("Applied", "Resizing")
    assert sum(r == "PodsResized" for _, r, _ in cl.events(IP, "deferred")) == 1
    # The operator restarts in the middle of the resize: it reads the record and the pod
    # again, asks nothing twice and loses nothing.
    cl.operator.stop()
    cl.start()
    wait_reconciles(cl.operator, IP, "rightsize", 2, 90)
    assert cl.state(IP, "deferred") == ("Applied", "Resizing")
    assert sum(r == "PodsResized" for _, r, _ in cl.events(IP, "deferred")) == 1
    assert sum(r == "ResourcesApplied" for _, r, _ in cl.events(IP, "deferred")) == 1
    # Room frees up on the node: the kubelet retries the resize and it lands.
    name = cl.pods(IP, "deferred")[0]["metadata"]["name"]
    client.CoreV1Api(cl.api).patch_namespaced_pod(
        name, IP, {"metadata": {"annotations": {KUBELET_ANSWER: None}}}
    )
    got = wait_for("in force", lambda: (g := cl.in_force(IP, "deferred"))[0][1] == 0.5 and g, 60)
    assert [u for u, _, _ in got] == uids[(IP, "deferred")]
    wait_for("deferred in cooldown", lambda: cl.hold(IP, "deferred") == "Cooldown", 60)
    assert template_requests(cl, IP, "deferred")["cpu"] == 1


def test_an_oom_kill_after_a_resize_puts_the_previous_values_back(cluster: Setup) -> None:
    cl, uids = cluster
    wait_for("oom resized", lambda: cl.in_force(IP, "oom")[0][1] == 0.5, 120)
    assert cl.annotation(IP, "oom", POD_RESOURCES_ANNOTATION) is not None
    pod = cl.pods(IP, "oom")[0]
    statuses = pod["status"]["containerStatuses"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses[0]["lastState"] = {"terminated": {
        "reason": "OOMKilled", "exitCode": 137, "startedAt": now, "finishedAt": now}}  # fmt: skip
    client.CoreV1Api(cl.api).patch_namespaced_pod_status(
        pod["metadata"]["name"], IP, {"status": {"containerStatuses": statuses}}
    )
    wait_for("the annotation removed", lambda: cl.annotation(
        IP, "oom", POD_RESOURCES_ANNOTATION) is None, 60)  # fmt: skip
    got = wait_for("the previous values back in force", lambda: (
        (g := cl.in_force(IP, "oom"))[0][1] == 1 and g), 60)  # fmt: skip
    assert [u for u, _, _ in got] == uids[(IP, "oom")]
    assert got[0][2] == 1024 * MI
    record = json.loads(cl.annotation(IP, "oom", RECORD_ANNOTATION) or "{}")
    assert record["state"] == "Reverted" and "OOMKilled" in record["reason"]
    events = cl.events(IP, "oom")
    assert any(t == "Warning" and r == "ResizeFailed" for t, r, _ in events), events
    wait_for("held", lambda: cl.hold(IP, "oom") == "HeldAfterFailedRollout", 60)
    action = cl.entry(IP, "oom")["lastAction"]
    assert action["type"] == "Reverted" and action["method"] == "InPlace"
    assert len(cl.replicasets(IP, "oom")) == 1
    assert template_requests(cl, IP, "oom")["cpu"] == 1


def test_a_namespace_not_opted_in_gets_nothing(cluster: Setup) -> None:
    cl, uids = cluster

    def blocked() -> dict[str, Any] | None:
        conds = {c["type"]: c for c in cl.policy(OFF).get("status", {}).get("conditions", [])}
        c = conds.get("AutoApplyBlocked")
        ready = conds.get("RecommendationsAvailable", {}).get("status") == "True"
        return c if c and ready else None

    cond = wait_for("AutoApplyBlocked", blocked, 90)
    assert cond["status"] == "True" and cond["reason"] == "NamespaceNotOptedIn"
    time.sleep(3)  # a few more ticks
    annotations = cl.deployment(OFF, "shrink")["metadata"].get("annotations") or {}
    assert POD_RESOURCES_ANNOTATION not in annotations
    assert RECORD_ANNOTATION not in annotations
    got = cl.in_force(OFF, "shrink")
    assert [u for u, _, _ in got] == uids[(OFF, "shrink")]
    assert [cpu for _, cpu, _ in got] == [1]
    assert cl.pods(OFF, "shrink")[0]["spec"]["containers"][0]["resources"]["requests"][
        "cpu"] == "1"  # fmt: skip


def test_the_policy_says_resize_is_served(cluster: Setup) -> None:
    cl, _ = cluster

    def served() -> dict[str, Any] | None:
        conds = {c["type"]: c for c in cl.policy(IP).get("status", {}).get("conditions", [])}
        return conds.get("InPlaceResize")

    cond = wait_for("InPlaceResize", served, 90)
    assert cond["status"] == "True" and cond["reason"] == "Served"
