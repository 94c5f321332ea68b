"""Apply mode after its operator died (issue 12, findings 6 and 7), end to end on the
sandbox: the operator is a subprocess, kube-controller-manager rolls real ReplicaSets onto
kwok nodes and sets ``ProgressDeadlineExceeded``; the operator is killed with SIGKILL and
a new one started, which must finish the job from the workloads' records alone.

Finding 6: a write that could never roll out was never reverted when its deadline passed
after the watch had ended. Finding 7: the Events of the writes made before a ``kill -9``
were never posted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.guardrails.rollout import RolloutWatch, watch_s
from rightsizer.model.workloads import workload_info
from rightsizer.names import RECORD_ANNOTATION
from rightsizer.quantity import parse_quantity
from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    RSR,
    VERSION,
    Operator,
    install_crd,
)
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

#: Namespaces of their own per run: a kept sandbox's Prometheus still has earlier runs' series.
RUN = uuid.uuid4().hex[:6]
LATE, CRASH = f"rollout-late-{RUN}", f"events-crash-{RUN}"
CRASH_WORKLOADS = ("shrink-a", "shrink-b", "shrink-c", "shrink-d")
STEP_S = 300
DAYS = 2
MI = 2**20
#: The install-time watch the first test lowers (defaults: 600 s, 120 s): with a 15 s
#: progress deadline the watch ends 20 s after the write, as 10 minutes did under the
#: default deadline of 600 s.
WATCH = RolloutWatch(min_s=5.0, deadline_margin_s=5.0)
WATCH_ENV = {
    "RIGHTSIZER_ROLLOUT_WATCH_SECONDS": f"{WATCH.min_s:g}",
    "RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS": f"{WATCH.deadline_margin_s:g}",
}
HOLD_EVENTS = "rightsizer-test-hold-resources-applied"


def usage_frame(end_s: float) -> pd.DataFrame:
    """Two days at 5 minutes: ``stuck`` uses ~40 cores (no kwok node has them), the
    ``shrink-*`` ~0.1 of their 1 core."""
    rng = np.random.default_rng(7)
    specs = [(LATE, "stuck", 40.0)] + [(CRASH, name, 0.1) for name in CRASH_WORKLOADS]
    n = int(DAYS * 24 * 3600 / STEP_S)
    t = end_s - (n - 1 - np.arange(n)) * STEP_S
    frames = [
        pd.DataFrame({
            "timestamp": t.astype(np.int64), "namespace": ns, "workload": f"Deployment/{name}",
            "pod": f"{name}-6d4cf56db6-x2x7k", "container": "app",
            "cpu": np.round(cpu * rng.uniform(0.9, 1.1, n), 4), "memory": 200.0 * MI,
            "cpu_request": 1.0, "cpu_limit": 2.0,
            "memory_request": 1024 * MI, "memory_limit": 1024 * MI,
        })
        for ns, name, cpu in specs
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def deployment(ns: str, name: str, progress_deadline_s: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": name}},
            "progressDeadlineSeconds": progress_deadline_s,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": f"registry.example/{name}:1", "resources": {
                    "requests": {"cpu": "1", "memory": "1Gi"},
                    "limits": {"cpu": "2", "memory": "1Gi"}}}]}},
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
            "update": {"mode": "Apply", "maxConcurrentRollouts": 10},
            "reconcileInterval": "5s",
        },
    }  # fmt: skip


class Cluster:
    def __init__(self, api: ApiClient, kubeconfig: str, tmp: Path, prometheus_url: str) -> None:
        self.api, self.kubeconfig, self.tmp = api, kubeconfig, tmp
        self.prometheus_url = prometheus_url
        self.operators: list[Operator] = []

    def operator(self, log: str, env: dict[str, str] | None = None) -> Operator:
        op = Operator(self.kubeconfig, self.tmp / log, [self.prometheus_url], env=env)
        self.operators.append(op)
        return op

    def deployment(self, ns: str, name: str) -> dict[str, Any]:
        obj = client.AppsV1Api(self.api).read_namespaced_deployment(name, ns)
        data: dict[str, Any] = self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return data

    def record(self, ns: str, name: str) -> dict[str, Any] | None:
        text = (self.deployment(ns, name)["metadata"].get("annotations") or {}).get(
            RECORD_ANNOTATION
        )
        return json.loads(text) if text else None

    def cpu(self, ns: str, name: str) -> float:
        c = self.deployment(ns, name)["spec"]["template"]["spec"]["containers"][0]
        return float(parse_quantity(c["resources"]["requests"]["cpu"]))

    def entry(self, ns: str, name: str) -> dict[str, Any]:
        """The workload's recommendation status (state, lastAction, autoApply)."""
        try:
            obj = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, ns, RSR, f"deployment-{name}"
            )
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        status: dict[str, Any] = obj.get("status") or {}
        return status

    def events(self, ns: str, name: str, reason: str) -> list[tuple[str, str]]:
        items = client.CoreV1Api(self.api).list_namespaced_event(ns).items
        return [
            (e.type, e.message) for e in items
            if e.involved_object.kind == "Deployment" and e.involved_object.name == name
            and e.reason == reason
        ]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(
    k8s_api: ApiClient, kubeconfig: str, prometheus: Prometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:  # fmt: skip
    install_crd(kubeconfig)
    tmp = tmp_path_factory.mktemp("recovery")
    end_s = float(int(time.time() // STEP_S) * STEP_S)
    usage_frame(end_s).to_csv(tmp / "samples.csv", index=False)
    prometheus.load_samples(tmp / "samples.csv", end_s, tmp / "om")
    core = client.CoreV1Api(k8s_api)
    _delete_hold(k8s_api)  # what an interrupted run on a kept sandbox may have left
    for ns in (LATE, CRASH):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=ns, labels={"rightsizer.dev/auto-apply": "enabled"})))  # fmt: skip
    cl = Cluster(k8s_api, kubeconfig, tmp, prometheus.url)
    yield cl
    custom = client.CustomObjectsApi(k8s_api)
    _delete_hold(k8s_api)
    cleaner = cl.operator("cleanup.log")  # releases the policies' finalizers
    for ns in (LATE, CRASH):
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "rightsize")
        except ApiException as exc:
            if exc.status != 404:
                raise
    wait_for("the policies gone", lambda: not any(
        custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        for ns in (LATE, CRASH)), 60, hint=cleaner.hint)  # fmt: skip
    for op in cl.operators:
        op.stop()
    for ns in (LATE, CRASH):
        core.delete_namespace(ns, propagation_policy="Background")


def kill(op: Operator) -> None:
    """``kill -9``: no handler, no Event queue, nothing finishes."""
    op.proc.kill()
    op.proc.wait()


def deadline_exceeded(d: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in (d.get("status") or {}).get("conditions") or []
    )


def test_a_deadline_exceeded_after_the_watch_ended_is_reverted_by_a_new_operator(
    cluster: Cluster,
) -> None:
    """Finding 6, scaled down: the watch ends (install settings lowered to 5 s + 5 s past
    the 15 s progress deadline) before the operator sees the deadline pass. The operator
    that wrote is killed right after its write; kube-controller-manager marks the deadline
    exceeded; only once the write is older than the whole watch does a new operator start.
    It must revert from the record alone — the old fixed watch (ended at the write's age
    10 min, here 5 s) left such a write Applied for good."""
    apps = client.AppsV1Api(cluster.api)
    apps.create_namespaced_deployment(LATE, deployment(LATE, "stuck", progress_deadline_s=15))
    wait_for("stuck available", lambda: (apps.read_namespaced_deployment(
        "stuck", LATE).status.available_replicas or 0) >= 1, 60)  # fmt: skip
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        GROUP, VERSION, LATE, PLURAL, policy(LATE, cluster.prometheus_url)
    )
    writer = cluster.operator("late-writer.log", WATCH_ENV)
    record = wait_for("the write of ~40 cores", lambda: cluster.record(LATE, "stuck"), 90,
                      hint=writer.hint)  # fmt: skip
    kill(writer)
    assert record["state"] == "Applied" and cluster.cpu(LATE, "stuck") > 32
    assert not deadline_exceeded(cluster.deployment(LATE, "stuck"))

    wait_for("ProgressDeadlineExceeded from the controller-manager",
             lambda: deadline_exceeded(cluster.deployment(LATE, "stuck")), 120)  # fmt: skip
    watch = watch_s(workload_info("Deployment", cluster.deployment(LATE, "stuck")).rollout, WATCH)
    assert watch == 15 + WATCH.deadline_margin_s
    wait_for("the write older than its whole watch",
             lambda: time.time() - record["time"] > watch + 1, 60)  # fmt: skip
    assert cluster.record(LATE, "stuck") == record  # nobody touched it meanwhile

    reverter = cluster.operator("late-reverter.log", WATCH_ENV)
    reverted = wait_for("the revert", lambda: (r := cluster.record(LATE, "stuck")) and r[
        "state"] == "Reverted" and r, 90, hint=reverter.hint)  # fmt: skip
    assert "ProgressDeadlineExceeded" in reverted["reason"]
    assert cluster.cpu(LATE, "stuck") == 1
    assert reverted["applied"]["app"]["requests"]["cpuMillicores"] == 1000
    wait_for("the RolloutFailed Event", lambda: any(
        t == "Warning" and "ProgressDeadlineExceeded" in m
        for t, m in cluster.events(LATE, "stuck", "RolloutFailed")), 30)  # fmt: skip
    wait_for("held, lastAction Reverted", lambda: (
        (cluster.entry(LATE, "stuck").get("autoApply") or {}).get("reason")
        == "HeldAfterFailedRollout"
        and (cluster.entry(LATE, "stuck").get("lastAction") or {}).get("type") == "Reverted"
    ), 30, hint=reverter.hint)  # fmt: skip
    kill(reverter)


def _hold_events(api: ApiClient) -> None:
    """An admission policy refusing ``ResourcesApplied`` Events in CRASH."""
    admission: Any = client.AdmissionregistrationV1Api(api)
    admission.create_validating_admission_policy({
        "metadata": {"name": HOLD_EVENTS},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["", "events.k8s.io"], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["events"]}]},
            "validations": [{"expression": "object.reason != 'ResourcesApplied'",
                             "message": "held by the test"}],
        },
    })  # fmt: skip
    admission.create_validating_admission_policy_binding({
        "metadata": {"name": HOLD_EVENTS},
        "spec": {
            "policyName": HOLD_EVENTS, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": CRASH}}},
        },
    })  # fmt: skip


def _delete_hold(api: ApiClient) -> None:
    admission: Any = client.AdmissionregistrationV1Api(api)
    for delete in (
        admission.delete_validating_admission_policy_binding,
        admission.delete_validating_admission_policy,
    ):
        try:
            delete(HOLD_EVENTS)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _event_refused(api: ApiClient) -> bool:
    """Whether a ``ResourcesApplied`` Event in CRASH is refused now (a probe, removed)."""
    core = client.CoreV1Api(api)
    try:
        made = core.create_namespaced_event(CRASH, {
            "metadata": {"generateName": "probe-"}, "reason": "ResourcesApplied",
            "message": "probe", "type": "Normal",
            "involvedObject": {"kind": "ConfigMap", "name": "probe", "namespace": CRASH},
        })  # fmt: skip
    except ApiException as exc:
        if exc.status in (400, 403, 422):
            return True
        raise
    core.delete_namespaced_event(made.metadata.name, CRASH)
    return False


def test_the_events_of_writes_before_a_kill_are_posted_by_the_next_operator(
    cluster: Cluster,
) -> None:
    """Finding 7. Four workloads are written in one pass; the operator is killed right
    after the first write shows on the API server; a new operator posts the Events of the
    writes the dead one made, each exactly once, and a third operator posts none again.

    Where a kill lands between a write and its Event's post is up to chance; an admission
    policy refusing ``ResourcesApplied`` Events while the first operator runs makes every
    such Event the dead operator's to lose (it is removed before the next one starts)."""
    apps = client.AppsV1Api(cluster.api)
    for name in CRASH_WORKLOADS:
        apps.create_namespaced_deployment(CRASH, deployment(CRASH, name, progress_deadline_s=60))
    wait_for("the deployments available", lambda: all(
        (apps.read_namespaced_deployment(n, CRASH).status.available_replicas or 0) >= 1
        for n in CRASH_WORKLOADS), 60)  # fmt: skip
    _hold_events(cluster.api)
    wait_for("the Events held", lambda: _event_refused(cluster.api), 60)
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        GROUP, VERSION, CRASH, PLURAL, policy(CRASH, cluster.prometheus_url)
    )
    first = cluster.operator("crash-first.log")

    def a_write() -> bool:
        items = apps.list_namespaced_deployment(CRASH).items
        return any(RECORD_ANNOTATION in (d.metadata.annotations or {}) for d in items)

    deadline = time.monotonic() + 90
    while not a_write():  # polled without pause: the kill lands mid-pass
        assert time.monotonic() < deadline, "no write within 90 s" + first.hint()
        assert first.proc.poll() is None, "the operator died" + first.hint()
    kill(first)
    written = [n for n in CRASH_WORKLOADS if cluster.record(CRASH, n)]
    assert written
    _delete_hold(cluster.api)
    wait_for("the Events let through", lambda: not _event_refused(cluster.api), 60)
    assert not any(cluster.events(CRASH, n, "ResourcesApplied") for n in written)

    second = cluster.operator("crash-second.log")
    wait_for("every workload written", lambda: all(
        cluster.record(CRASH, n) for n in CRASH_WORKLOADS), 90, hint=second.hint)  # fmt: skip
    wait_for("a ResourcesApplied Event on each", lambda: all(
        cluster.events(CRASH, n, "ResourcesApplied") for n in CRASH_WORKLOADS), 60,
        hint=second.hint)  # fmt: skip
    second.stop()

    third = cluster.operator("crash-third.log")
    marker = f"[{CRASH}/rightsize] reconciled:"
    wait_for("two reconciles of the third operator (its first Apply pass done)",
             lambda: third.log().count(marker) >= 2, 90, hint=third.hint)  # fmt: skip
    for name in CRASH_WORKLOADS:
        events = cluster.events(CRASH, name, "ResourcesApplied")
        assert len(events) == 1, (name, events)
        assert "cpu 1→500m" in events[0][1] and f"by policy {CRASH}/rightsize" in events[0][1]
    third.stop()
