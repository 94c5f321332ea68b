"""The Grafana dashboard (``dashboards/rightsizer.json``) against real data.

The file is checked as Grafana imports it (panels, ids, grid, a datasource variable
instead of a fixed datasource). Then the operator runs as a subprocess on the sandbox
with one policy in Apply mode over three Deployments — one shrinks (an apply), one is
excluded (a hold), one grows beyond what any kwok node offers (its pods stay Pending, the
rollout misses its deadline and is reverted) — and a second policy that names a
Prometheus outside the operator's allow-list (a source error). A Prometheus of its own,
the sandbox's binary, scrapes the operator's metrics every second. Every panel's every
query then runs against it, with Grafana's variables filled in: an invalid query fails at
once, and a query that returns nothing fails when the wait for data runs out.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.integration.test_auto_apply_e2e import deployment
from tests.integration.test_deploy_manifests import GROUP, PLURAL, VERSION, Operator, policies
from tests.integration.test_operator_e2e import install_crd
from tests.integration.waiting import free_port, wait_for
from tests.sandbox import Prometheus, Sandbox
from tests.sandbox.http import request

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "rightsizer.json"
STEP_S, DAYS, MI = 300, 2, 2**20
OUTSIDE = "http://prometheus.elsewhere:9090"  # not in the operator's allow-list
#: Grafana's variables as the test fills them: every namespace and policy; a rate
#: window of several scrapes (the scraper below scrapes every second).
VARIABLES = {
    "$__rate_interval": "15s",
    "$__interval": "2s",
    "$__range": "5m",
    "$namespace": ".*",
    "$policy": ".*",
}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def query_panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def fill(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    assert not leftover, f"unfilled variables {leftover} in {expr}"
    return expr


# ------------------------------------------------------------------ the file
def test_dashboard_is_importable_as_is() -> None:
    dash = dashboard()
    assert dash["uid"] == "rightsizer" and dash["title"]
    assert "__inputs" not in dash, "the sidecar loads the file unchanged: no import inputs"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in query_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()
    titles = " | ".join(p["title"].lower() for p in query_panels())
    for wanted in ("recommended vs current", "cores freed", "cores added", "gib freed",
                   "gib added", "by state", "holds by reason", "applies and reverts",
                   "reconcile duration", "source read duration", "source errors"):  # fmt: skip
        assert wanted in titles, f"no panel about {wanted!r}"


# ------------------------------------------------------------------ against real data
class Scraper:
    """A Prometheus of the test's own that scrapes only the operator."""

    def __init__(self, binary: Path, target: str, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = home / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: rightsizer\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log_path = home / "prometheus.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), f"--config.file={config}", f"--storage.tsdb.path={home / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for("the scraping Prometheus to be ready", self.ready, 60, hint=self.hint)

    def hint(self) -> str:
        return "\n" + self.log_path.read_text(errors="replace")[-3000:]

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}{self.hint()}")
        try:
            status, _ = request(f"{self.url}/-/ready", timeout=2.0)
        except OSError:
            return False
        return status == 200

    def query_range(self, expr: str, start: float, end: float) -> list[Any]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "2"}
        status, body = request(
            f"{self.url}/api/v1/query_range?{urllib.parse.urlencode(params)}", timeout=30.0
        )
        data = json.loads(body)
        # An invalid query is a 400 with errorType bad_data: fail now, never wait on it.
        assert status == 200 and data["status"] == "success", f"{expr}\n→ {status} {data}"
        result: list[Any] = data["data"]["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        params = urllib.parse.urlencode({"match[]": match})
        status, body = request(f"{self.url}/api/v1/label/{label}/values?{params}", timeout=30.0)
        assert status == 200, body
        values: list[str] = json.loads(body)["data"]
        return values

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def usage(namespace: str, end_s: float) -> pd.DataFrame:
    """Two days at 5 minutes: shrink and excluded use 0.1 core, grows 40 (no kwok node
    has that much: its new pods stay Pending)."""
    rng = np.random.default_rng(20)
    frames = []
    n = DAYS * 86400 // STEP_S
    t = end_s - (n - 1 - np.arange(n)) * STEP_S
    for name, cpu in (("shrink", 0.1), ("excluded", 0.1), ("grows", 40.0)):
        frames.append(pd.DataFrame({
            "timestamp": t.astype(np.int64), "namespace": namespace,
            "workload": f"Deployment/{name}", "pod": f"{name}-6d4cf56db6-x2x7k",
            "container": "app", "cpu": np.round(cpu * rng.uniform(0.9, 1.1, n), 4),
            "memory": np.full(n, 200.0 * MI), "cpu_request": 1.0, "cpu_limit": 2.0,
            "memory_request": 1024 * MI, "memory_limit": 1024 * MI,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def apply_policy(name: str, namespace: str, url: str, mode: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targets": {"kinds": ["Deployment"], "selector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": app.split(",")}]}},
            "source": {"prometheus": {"url": url, "history": f"{DAYS}d", "step": f"{STEP_S}s"},
                       "metricsServer": {"enabled": False}},
            "update": {"mode": mode},
            "reconcileInterval": "5s",
        },
    }  # fmt: skip


@pytest.fixture
def running(
    sandbox: Sandbox, k8s_api: ApiClient, kubeconfig: str, prometheus: Prometheus,
    namespace: str, tmp_path: Path,
) -> Iterator[tuple[Operator, Scraper]]:  # fmt: skip
    install_crd(kubeconfig)  # whatever ran before (the CRD may not be there yet)
    end_s = float(int(time.time() // STEP_S) * STEP_S)
    usage(namespace, end_s).to_csv(tmp_path / "samples.csv", index=False)
    prometheus.load_samples(tmp_path / "samples.csv", end_s, tmp_path / "om")

    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    custom: Any = client.CustomObjectsApi(k8s_api)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"rightsizer.dev/auto-apply": "enabled"}}}
    )
    for body in (deployment(namespace, "shrink"), deployment(namespace, "grows"),
                 deployment(namespace, "excluded",
                            annotations={"rightsizer.dev/exclude": "true"})):  # fmt: skip
        apps.create_namespaced_deployment(namespace, body)
    wait_for("the deployments to be available", lambda: all(
        (apps.read_namespaced_deployment(n, namespace).status.available_replicas or 0) >= 1
        for n in ("shrink", "grows", "excluded")), 60)  # fmt: skip

    # The dashboard's subject is the metrics: no admission webhook (no configuration here).
    operator = Operator(Path(kubeconfig), tmp_path / "operator.log", prometheus.url, webhook=False)
    scraper = Scraper(
        sandbox.cfg.binary("prometheus"), f"127.0.0.1:{operator.metrics_port}", tmp_path
    )
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, apply_policy(
            "apply", namespace, prometheus.url, "Apply", "shrink,grows,excluded"))  # fmt: skip
        # Names a Prometheus the operator may not use: refused, a source error.
        refused = apply_policy("refused", namespace, OUTSIDE, "Recommend", "none")
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, refused)
        yield operator, scraper
        for name in policies(custom, namespace):
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_for("the policies to be gone", lambda: not policies(custom, namespace), 60,
                 hint=operator.hint)  # fmt: skip
    finally:
        scraper.stop()
        operator.stop()
        for name in policies(custom, namespace):
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
            )


@pytest.mark.k8s
@pytest.mark.prometheus
@pytest.mark.slow
def test_every_panel_query_is_valid_and_returns_data(
    running: tuple[Operator, Scraper], namespace: str
) -> None:
    operator, scraper = running
    start = time.time() - 60
    targets = [
        (panel["title"], target["refId"], fill(target["expr"]))
        for panel in query_panels()
        for target in panel["targets"]
    ]

    def empty() -> list[str]:
        end = time.time()
        return [f"{title} [{ref}]: {expr}" for title, ref, expr in targets
                if not scraper.query_range(expr, start, end)]  # fmt: skip

    # Valid queries first: each is sent once now, and a syntax or type error fails here
    # (the assertion in query_range), whatever the data.
    empty()
    # Then data: an apply, a hold, a revert and a source error take a few reconciles.
    wait_for(
        "every panel query to return data",
        lambda: not empty(),
        240,
        hint=lambda: "\nno data yet:\n  " + "\n  ".join(empty()) + operator.hint(),
    )

    # The dashboard's variables list the policies the operator serves.
    assert namespace in scraper.label_values("namespace", "rightsizer_recommendation")
    assert {"apply"} <= set(scraper.label_values("policy", "rightsizer_recommendation"))
