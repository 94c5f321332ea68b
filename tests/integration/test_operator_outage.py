"""Issue 12, finding 5: after an API outage longer than Kopf's retries, every policy must
reconcile again by itself. The API server and etcd are stopped for two minutes under a
running operator (a subprocess) whose policies reconcile every 2 s; then they come back
with their data, and every policy's timer must still run. (A steady policy no longer
rewrites its status at each reconcile, so it may meet the outage with nothing to write:
what this test proves since is that the timers outlive the outage.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    condition,
    get_policy,
    install_crd,
    policy_body,
    reconciles,
)
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus, Sandbox

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

NS = "rs-outage"
POLICIES = [f"p{i}" for i in range(4)]
OUTAGE_S = 120.0


@pytest.fixture
def policies(k8s_api: ApiClient, kubeconfig: str, prometheus: Prometheus) -> Iterator[ApiClient]:
    install_crd(kubeconfig)
    core = client.CoreV1Api(k8s_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    custom = client.CustomObjectsApi(k8s_api)
    for name in POLICIES:
        body = policy_body(name, prometheus.url, namespace=NS, history="1h")
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    yield k8s_api
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]:
        custom.patch_namespaced_custom_object(  # the operator is gone: drop finalizers
            GROUP, VERSION, NS, PLURAL, item["metadata"]["name"], {"metadata": {"finalizers": None}}
        )
    core.delete_namespace(NS, propagation_policy="Background")


def digest(log: str) -> str:
    """The operator log's lines about patches given up and statuses kept."""
    lines = [ln for ln in log.splitlines() if "escalating" in ln or "not written" in ln]
    return "\n".join(lines[-20:])


def test_every_policy_reconciles_again_after_a_two_minute_api_outage(
    policies: ApiClient, kubeconfig: str, prometheus: Prometheus, sandbox: Sandbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    op = Operator(
        kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", [prometheus.url]
    )
    try:
        for name in POLICIES:
            wait_for(
                f"{name} Ready",
                lambda name=name: (
                    condition(get_policy(policies, name, NS), "Ready").get("status") == "True"
                ),
            )
        running = [c for c in ("etcd", "kube-apiserver") if sandbox.pid(c) is not None]
        assert running == ["etcd", "kube-apiserver"]
        others = [c for c in sandbox.status() if sandbox.pid(c) is not None]
        sandbox.down(["etcd"])  # the API server, and all that needs it, with it
        try:
            # The operator's status writes fail all along (connection refused); this is
            # the outage's length, not a timing assertion.
            time.sleep(OUTAGE_S)
        finally:
            sandbox.up([c for c in others if c != "prometheus"], keep_data=True)
        # Every policy's timer lives on: each reconciles again (the operator's own count;
        # the status's lastReconcileTime is only a coarse heartbeat) and its status is
        # still written when something changes.
        counts = {name: reconciles(op, NS, name) for name in POLICIES}
        for name in POLICIES:
            wait_for(
                f"{name} reconciled after the outage",
                lambda name=name: reconciles(op, NS, name) >= counts[name] + 2,
                timeout=180,
                hint=lambda: "\n" + digest(op.log()),
            )
    finally:
        op.stop()
