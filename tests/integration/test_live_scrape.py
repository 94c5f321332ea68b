"""Live scrape: the real kube-state-metrics and kwok's kubelet endpoint, scraped by a real
Prometheus with kube-prometheus-stack's job shapes (``scrape_prometheus``, see
tests/sandbox/cluster.py ``scrape_config``), read by ``rightsizer report`` and the operator.

Workloads run on the kwok node with chosen usage (kwok's ``usage-from-annotation``):
kwok's ``/metrics/resource`` then serves that memory as ``container_memory_working_set_bytes``
exactly and integrates that CPU over wall time into ``container_cpu_usage_seconds_total``.
Stated precision of the emulation as read here: memory exact; CPU per ``irate`` within
the jitter between kwok's clock reads and Prometheus' scrape timestamps (≈ 0.1 % on an
idle machine; the tests allow 5 % + 2m). Owners, current requests/limits, restarts and
the last termination's reason come from kube-state-metrics' own series.

An OOM kill: kwok v0.8.0 has no stage that kills or restarts a container, so the test
writes what the kubelet writes on an OOM kill, the pod's container status (restartCount
+1, lastState.terminated reason OOMKilled, exit code 137), through the API's status
subresource; kwok leaves a Running pod's status alone, and kube-state-metrics turns it into
its real ``kube_pod_container_status_restarts_total`` and
``kube_pod_container_status_last_terminated_reason`` series. No usage spike precedes it
(kwok's usage is a constant per pod).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.cli.main import main
from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    install_crd,
    stop_after_deleting_policies,
)
from tests.integration.waiting import wait_for
from tests.sandbox import OperatorProcess, Prometheus
from tests.sandbox.operator import kopf_command

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

MI = 2**20
#: workload → (container, requests, memory limit, replicas, usage CPU millicores, usage memory)
WEB = ("Deployment/web", "app", {"cpu": "500m", "memory": "1Gi"}, "1Gi", 2, 250, 600 * MI)
DB = ("StatefulSet/db", "postgres", {"cpu": "1", "memory": "2Gi"}, "2Gi", 1, 700, 1536 * MI)
#: Enough scraped history per pod (samples at the 5 s scrape interval: 2 minutes).
MIN_SAMPLES_PER_POD = 24
#: Every series the project queries (operator/rightsizer/sources/promql.py).
QUERIED = (
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_owner",
    "kube_replicaset_owner",
    "kube_pod_container_resource_requests",
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_last_terminated_reason",
)


def _template(name: str, container: str, requests: dict[str, str], limit: str,
              cpu_m: int, memory: int) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"labels": {"app": name}, "annotations": {
            "kwok.x-k8s.io/usage-cpu": f"{cpu_m}m", "kwok.x-k8s.io/usage-memory": str(memory)}},
        "spec": {"containers": [{"name": container, "image": f"registry.example/{name}:1",
                                 "resources": {"requests": requests,
                                               "limits": {"memory": limit}}}]},
    }  # fmt: skip


def _workloads(apps: client.AppsV1Api, ns: str) -> None:
    _, container, requests, limit, replicas, cpu_m, memory = WEB
    apps.create_namespaced_deployment(ns, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": _template("web", container, requests, limit, cpu_m, memory)},
    })  # fmt: skip
    _, container, requests, limit, replicas, cpu_m, memory = DB
    apps.create_namespaced_stateful_set(ns, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": replicas, "serviceName": "db",
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": _template("db", container, requests, limit, cpu_m, memory)},
    })  # fmt: skip


def _count(prom: Prometheus, expr: str) -> dict[str, float]:
    return {r["metric"].get("pod", ""): float(r["value"][1]) for r in prom.query(expr)}


def _oom_kill(core: client.CoreV1Api, ns: str, pod: str, container: str) -> None:
    """What the kubelet writes when it restarts an OOM-killed container."""
    status = core.read_namespaced_pod(pod, ns).status
    current = next(s for s in status.container_statuses if s.name == container)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = current.state.running.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[union-attr]
    core.patch_namespaced_pod_status(pod, ns, {"status": {"containerStatuses": [{
        "name": container, "image": current.image, "imageID": current.image_id or "",
        "ready": True, "restartCount": current.restart_count + 1,
        "state": {"running": {"startedAt": now}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                     "startedAt": started, "finishedAt": now}},
    }]}})  # fmt: skip


@pytest.fixture(scope="module")
def live(scrape_prometheus: Prometheus, k8s_api: ApiClient) -> Iterator[dict[str, Any]]:
    """A fresh namespace with the two workloads, scraped for ≥ 2 minutes, one web pod
    OOM-killed once after its restart count had been scraped at 0."""
    ns = f"live-{uuid.uuid4().hex[:8]}"
    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    prom = scrape_prometheus
    try:
        _workloads(apps, ns)
        pods = 3
        sel = f'namespace="{ns}"'
        restarts = f"count_over_time(kube_pod_container_status_restarts_total{{{sel}}}[10m])"
        scraped: dict[str, float] = wait_for(
            "every pod's restart count scraped 3 times",
            lambda: len(got := _count(prom, f"{restarts} >= 3")) == pods and got,
            180,
        )
        oom_pod = sorted(p for p in scraped if p.startswith("web-"))[0]
        _oom_kill(core, ns, oom_pod, WEB[1])
        oom = (
            f'kube_pod_container_status_last_terminated_reason{{{sel},reason="OOMKilled"}}'
            f" * on (pod, container) kube_pod_container_status_restarts_total{{{sel}}}"
        )
        wait_for(
            "the OOM kill scraped",
            lambda: _count(prom, oom).get(oom_pod) == 1,
            60,
        )
        memory = f"count_over_time(container_memory_working_set_bytes{{{sel}}}[10m])"
        wait_for(
            f"{MIN_SAMPLES_PER_POD} usage samples of every pod",
            lambda: len(_count(prom, f"{memory} >= {MIN_SAMPLES_PER_POD}")) == pods,
            300,
        )
        yield {"namespace": ns, "oom_pod": oom_pod, "prometheus": prom}
    finally:
        core.delete_namespace(ns, propagation_policy="Background")


def _label_names(prom: Prometheus, metric: str, ns: str) -> set[frozenset[str]]:
    result = prom.query(f'{metric}{{namespace="{ns}"}}')
    return {frozenset(r["metric"]) - {"__name__"} for r in result}


def _converted_label_names(tmp_path: Path) -> dict[str, set[frozenset[str]]]:
    """The label names of each series `rightsizer dev openmetrics` writes for samples of
    the same shape (a Deployment with an OOM kill, a StatefulSet)."""
    rows = ["timestamp,namespace,workload,pod,container,cpu,memory,"
            "cpu_request,cpu_limit,memory_request,memory_limit,oom"]  # fmt: skip
    for i in range(6):
        t = 1_700_000_000 + 10 * i
        for wl, pod, ctr in (("Deployment/web", "web-abc12-x1", "app"),
                             ("StatefulSet/db", "db-0", "postgres")):  # fmt: skip
            oom = int(pod.startswith("web") and i == 3)
            rows.append(f"{t},ns,{wl},{pod},{ctr},0.25,629145600,0.5,,1073741824,1073741824,{oom}")
    samples = tmp_path / "samples.csv"
    samples.write_text("\n".join(rows) + "\n")
    out = tmp_path / "om"
    assert main(["dev", "openmetrics", "--samples", str(samples), "--output", str(out)]) == 0
    names: dict[str, set[frozenset[str]]] = {}
    for f in out.glob("*.om"):
        for line in f.read_text().splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} ", line)
            if m:
                keys = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2)))
                names.setdefault(m.group(1), set()).add(keys)
    return names


def test_every_queried_series_exists_with_the_converters_labels(
    live: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each series the queries read is scraped from the real exporters with the labels
    the queries use, and `rightsizer dev openmetrics` writes exactly the same label names
    (so the history tests read what a real cluster's Prometheus holds)."""
    prom, ns = live["prometheus"], live["namespace"]
    converted = _converted_label_names(tmp_path)
    capsys.readouterr()
    for metric in QUERIED:
        scraped = _label_names(prom, metric, ns)
        assert scraped, f"{metric}: no series scraped in {ns}"
        assert scraped == converted[metric], (metric, scraped, converted[metric])
        for keys in scraped:
            assert {"namespace", "job"} <= keys, (metric, keys)
    assert set(converted) == set(QUERIED)
    # The types the exporters declare, as Prometheus recorded them.
    types = {m: t for m, t in _metadata_types(prom).items() if m in QUERIED}
    assert types["container_cpu_usage_seconds_total"] == "counter"
    assert types["kube_pod_container_status_restarts_total"] == "counter"
    assert types["container_memory_working_set_bytes"] == "gauge"
    assert types["kube_pod_container_resource_requests"] == "gauge"
    units = {
        r["metric"]["resource"]: r["metric"]["unit"]
        for r in prom.query(f'kube_pod_container_resource_requests{{namespace="{ns}"}}')
    }
    assert units == {"cpu": "core", "memory": "byte"}


def _metadata_types(prom: Prometheus) -> dict[str, str]:
    from tests.sandbox.http import request

    status, body = request(f"{prom.url}/api/v1/metadata", timeout=30.0)
    assert status == 200
    data: dict[str, list[dict[str, str]]] = json.loads(body)["data"]
    return {name: entries[0]["type"] for name, entries in data.items()}


def _current(requests: dict[str, str], limit: str) -> dict[str, dict[str, str]]:
    """Requests and limits as `report` and the status write them (millicores, bytes)."""

    def millicores(q: str) -> str:
        return q if q.endswith("m") else f"{int(q) * 1000}m"

    def size(q: str) -> str:
        return str(int(q.removesuffix("Gi")) * 1024 * MI)

    return {"requests": {"cpu": millicores(requests["cpu"]), "memory": size(requests["memory"])},
            "limits": {"memory": size(limit)}}  # fmt: skip


def _report(capsys: pytest.CaptureFixture[str], url: str, ns: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main([
        "report", "--prometheus", url, "-n", ns, "--history", "10m", "--step", "10s",
        "--older-step", "10s", "--strategy", "percentile", "--min-history", "1m",
        "--min-samples", "10", "--format", "json",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _expect(rec_cpu: str, rec_memory: str, cpu_m: int, memory: int) -> None:
    """percentile: CPU p95 of the irates (within the emulation's precision), memory the
    exact peak × 1.15 (rounded up to whole MiB)."""
    cpu = int(rec_cpu.removesuffix("m"))
    assert abs(cpu - cpu_m) <= 0.05 * cpu_m + 2, (rec_cpu, cpu_m)
    assert 0 <= int(rec_memory) - memory * 1.15 < MI, (rec_memory, memory)


def test_report_recommends_the_configured_usage(
    live: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """`rightsizer report` on the scraped data alone (no --kube): workloads resolved through
    kube-state-metrics' owner series, current requests and limits from its resource series,
    the OOM kill from its restart and termination series, usage as configured."""
    ns = live["namespace"]
    doc = _report(capsys, live["prometheus"].url, ns)
    recs = {(r["workload"], r["container"]): r for r in doc["recommendations"]}
    assert set(recs) == {(WEB[0], WEB[1]), (DB[0], DB[1])}
    for workload, container, requests, limit, replicas, cpu_m, memory in (WEB, DB):
        rec = recs[(workload, container)]
        assert rec["namespace"] == ns
        assert "insufficientData" not in rec, rec
        assert rec["pods"] == replicas
        assert rec["current"] == _current(requests, limit)
        assert int(rec["peakMemory"]) == memory
        _expect(rec["target"]["cpu"], rec["target"]["memory"], cpu_m, memory)
        assert rec["samples"]["cpu"] >= 10 * replicas
    assert recs[(WEB[0], WEB[1])]["oomKills"] == 1
    assert recs[(DB[0], DB[1])]["oomKills"] == 0


#: The operator with its 1 h / 30-sample minimum before it recommends lowered to 1 minute /
#: 10 samples (module constants of rightsizer.controller.reconcile, set before Kopf loads
#: the handlers): a live test of a few minutes cannot wait an hour of scraping.
_LOWERED_MINIMUMS = (
    "import sys\n"
    "import rightsizer.controller.reconcile as reconcile\n"
    "reconcile.MIN_HISTORY_S = 60.0\n"
    "reconcile.MIN_SAMPLES = 10\n"
    "from kopf.cli import main\n"
    "sys.argv = ['kopf', *sys.argv[1:]]\n"
    "main()\n"
)


def test_operator_recommends_the_configured_usage(
    live: dict[str, Any], k8s_api: ApiClient, kubeconfig: str, tmp_path: Path
) -> None:
    """The operator, given the live Prometheus, writes the configured usage's targets and
    the evidence into the RightSizeRecommendation objects."""
    ns, prom = live["namespace"], live["prometheus"]
    install_crd(kubeconfig)
    argv = [sys.executable, "-c", _LOWERED_MINIMUMS,
            *kopf_command(namespaces=[ns], health_port=0)[1:]]  # fmt: skip
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", [prom.url], argv=argv)
    custom = client.CustomObjectsApi(k8s_api)
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
            "metadata": {"name": "live", "namespace": ns},
            "spec": {"source": {"prometheus": {
                        "url": prom.url, "history": "10m", "step": "10s",
                        "bootstrap": {"olderStep": "10s"}},
                        "metricsServer": {"enabled": False}},
                     "strategy": {"name": "percentile"}, "reconcileInterval": "2s"},
        })  # fmt: skip

        def ready() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = custom.list_namespaced_custom_object(
                GROUP, VERSION, ns, "rightsizerecommendations"
            )["items"]
            targets = [c for o in items for c in o.get("status", {}).get("containers", [])]
            if len(items) == 2 and len(targets) == 2 and all("target" in c for c in targets):
                return items
            return None

        objects = wait_for("two RightSizeRecommendation objects with targets", ready, 180,
                           hint=op.hint)  # fmt: skip
        containers = {
            (f"{o['spec']['workload']['kind']}/{o['spec']['workload']['name']}", c["name"]): c
            for o in objects
            for c in o["status"]["containers"]
        }
        for workload, container, requests, limit, _replicas, cpu_m, memory in (WEB, DB):
            exact = containers[(workload, container)]["exact"]
            current = _current(requests, limit)
            assert f"{exact['requests']['cpuMillicores']}m" == current["requests"]["cpu"], exact
            assert str(exact["requests"]["memoryBytes"]) == current["requests"]["memory"], exact
            assert str(exact["limits"]["memoryBytes"]) == current["limits"]["memory"], exact
            target = exact["target"]
            _expect(f"{target['cpuMillicores']}m", str(target["memoryBytes"]), cpu_m, memory)
        evidence = {c["name"]: c["evidence"] for o in objects for c in o["status"]["containers"]}
        assert evidence[WEB[1]]["oomKills"] == 1
        assert evidence[DB[1]]["oomKills"] == 0
        assert evidence[WEB[1]]["peakMemoryBytes"] == WEB[6]
        assert evidence[DB[1]]["peakMemoryBytes"] == DB[6]
    finally:
        stop_after_deleting_policies(op, k8s_api, ns)
