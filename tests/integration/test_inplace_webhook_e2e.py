"""In-place resize and the admission webhook together (issue 15 item 6), on the sandbox:
the operator (one process, its webhook served over TLS at 127.0.0.1 and called by the real
kube-apiserver) resizes a Deployment's running pod in place, then the Deployment is scaled
up and its new pods are created with the values the operator applied — sized at
admission, not resized afterwards — while the template keeps its values."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer import names
from rightsizer.quantity import parse_quantity
from tests.integration.test_admission_webhook import SCOPE_LABEL, app, note, scale, webhook
from tests.integration.test_inplace_e2e import InPlaceCluster, deployment, policy
from tests.integration.test_operator_e2e import GROUP, PLURAL, VERSION, install_crd
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

STEP_S, DAYS, MI = 300, 2, 2**20


def usage(ns: str, end_s: float) -> pd.DataFrame:
    """Two days of low usage (0.1 core, 200Mi, one 300Mi peak): 1 core → 500m, 1Gi → 512Mi."""
    n = int(DAYS * 24 * 3600 / STEP_S)
    t = end_s - (n - 1 - np.arange(n)) * STEP_S
    memory = np.full(n, 200 * MI, dtype=float)
    memory[n // 2] = 300 * MI
    return pd.DataFrame({
        "timestamp": t.astype(np.int64), "namespace": ns, "workload": "Deployment/web",
        "pod": "web-6d4cf56db6-x2x7k", "container": "app",
        "cpu": np.round(0.1 * np.random.default_rng(3).uniform(0.9, 1.1, n), 4),
        "memory": memory, "cpu_request": 1.0, "cpu_limit": 2.0,
        "memory_request": 1024 * MI, "memory_limit": 1024 * MI,
    })  # fmt: skip


def requests_of(container: dict[str, Any]) -> tuple[float, float]:
    r = (container.get("resources") or {}).get("requests") or {}
    return float(parse_quantity(r.get("cpu", "0"))), float(parse_quantity(r.get("memory", "0")))


def test_resized_in_place_then_new_pods_sized_at_admission(
    kubeconfig: str, k8s_api: ApiClient, prometheus: Prometheus, tmp_path: Path
) -> None:
    install_crd(kubeconfig)
    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    custom = client.CustomObjectsApi(k8s_api)
    end_s = float(int(time.time() // STEP_S) * STEP_S)
    ns = f"t-ipwh-{uuid.uuid4().hex[:8]}"
    with webhook(k8s_api, kubeconfig, tmp_path / "operator.log", [prometheus.url]) as hook:
        labels = {names.AUTO_APPLY_LABEL: "enabled", SCOPE_LABEL: hook.scope}
        core.create_namespace({"metadata": {"name": ns, "labels": labels}})
        try:
            usage(ns, end_s).to_csv(tmp_path / "samples.csv", index=False)
            prometheus.load_samples(tmp_path / "samples.csv", end_s, tmp_path / "om")
            apps.create_namespaced_deployment(ns, deployment(ns, "web", 1))
            cl = InPlaceCluster(k8s_api, kubeconfig, tmp_path / "operator.log", prometheus.url)
            [(uid, _, _)] = wait_for("the pod running, its resources reported", lambda: (
                (got := cl.in_force(ns, "web")) and len(got) == 1 and got[0][1] == 1 and got
            ), 90)  # fmt: skip
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, policy(ns, prometheus.url, "InPlace")
            )
            resized = wait_for("the pod resized in place to 500m/512Mi", lambda: (
                (got := cl.in_force(ns, "web")) and got == [(uid, 0.5, 512 * MI)] and got
            ), 180)  # fmt: skip
            assert resized[0][0] == uid  # the same pod
            pods = scale(k8s_api, ns, "web", 3)
            new = [p for p in pods if p["metadata"]["uid"] != uid]
            assert len(new) == 2
            for p in new:
                assert requests_of({"resources": app(p)}) == (0.5, 512 * MI), note(p)
                assert (note(p) or "").startswith("app: cpu request 1→500m"), note(p)
            template = cl.deployment(ns, "web")["spec"]["template"]["spec"]["containers"][0]
            assert requests_of(template) == (1.0, 1024 * MI)  # the template is untouched
            assert len(cl.replicasets(ns, "web")) == 1  # no rollout
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "rightsize")
            wait_for("the policy gone", lambda: not custom.list_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL)["items"], 60)  # fmt: skip
        finally:
            core.delete_namespace(ns, propagation_policy="Background")
