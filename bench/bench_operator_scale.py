"""The operator at scale: 1,000 Deployments on kwok nodes, a week of history in Prometheus,
one RightSizePolicy selecting them all.

Runs in its own sandbox (state ``/tmp/rightsizer-bench-operator``, fresh data, ports 12xxx:
below the ephemeral port range) so that nothing else talks to its apiserver. The operator
runs as a local process with the install manifests' ServiceAccount (a TokenRequest
token), exactly as in the cluster. Prints:

* time from policy creation to a complete status (Ready, every workload and container
  counted in ``status.summary``);
* API requests of the operator: during that first reconcile (bootstrap) and per
  steady-state reconcile. Counted exactly by the apiserver's Priority & Fairness
  metric ``apiserver_flowcontrol_dispatched_requests_total{flow_schema="service-accounts"}``
  (only the operator authenticates as a ServiceAccount here; the sandbox's components use
  the admin certificate), with a per-verb/resource breakdown from
  ``apiserver_request_total`` (scraped with the admin client certificate; other clients'
  background requests subtracted at the rate measured before the policy existed);
* Prometheus queries (``prometheus_http_requests_total``), reconcile durations (the
  operator's ``rightsizer_reconcile_duration_seconds``), the status size;
* the operator's peak RSS (``VmHWM`` in ``/proc/PID/status``) and CPU time.

Then, unless ``--no-compare``, a second first contact in the same operator process: the
policy is deleted (Kopf removes its finalizer; the controller-manager's garbage collector
removes the checkpoint ConfigMap it owns), and a policy of another name with
``bootstrap: {olderStep: <step>}`` (everything read at full resolution, the behaviour
before tiered bootstrap) is created. Both first contacts are printed side by side: time
to a complete status, Prometheus queries (count, evaluation time, Prometheus's CPU), API
requests, operator CPU seconds and peak RSS (``VmHWM`` reset through
``/proc/PID/clear_refs`` before the second one, so it is that phase's peak on a heap
warmed by the first), and the ratios full / tiered.

``--profile DIR`` samples the operator with py-spy during each first contact (folded
stacks in DIR) and prints the top functions by own and inclusive samples.

    python bench/bench_operator_scale.py [--deployments 1000] [--days 7] [--reconciles 3]
                                         [--no-metrics-server] [--no-compare]
                                         [--profile DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.sandbox: the sandbox's Python API

from kubernetes import client  # noqa: E402
from kubernetes import config as kube_config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fleet_history import NAMESPACE, Fleet, Pipeline, day_files, load_pipelined  # noqa: E402
from tests.sandbox import (  # noqa: E402
    Config,
    OperatorExitedError,
    OperatorProcess,
    Prometheus,
    Sandbox,
)
from tests.sandbox.http import KubeRest  # noqa: E402

POLICY = "bench"
#: The second first contact (--no-compare skips it): everything read at full resolution.
POLICY_FULL = "bench-full"
STEP = "1m"
GROUP, VERSION, PLURAL = "rightsizer.dev", "v1alpha1", "rightsizepolicies"
OPERATOR_NS, SERVICE_ACCOUNT = "rightsizer-system", "rightsizer"
PODS_PER_NODE = 110
STATE_DIR = "/tmp/rightsizer-bench-operator"
PORTS = {
    "RIGHTSIZER_SANDBOX_ETCD_PORT": 12379,
    "RIGHTSIZER_SANDBOX_ETCD_PEER_PORT": 12380,
    "RIGHTSIZER_SANDBOX_APISERVER_PORT": 12443,
    "RIGHTSIZER_SANDBOX_CONTROLLER_MANAGER_PORT": 12257,
    "RIGHTSIZER_SANDBOX_SCHEDULER_PORT": 12259,
    "RIGHTSIZER_SANDBOX_KWOK_PORT": 12250,
    "RIGHTSIZER_SANDBOX_METRICS_SERVER_PORT": 12444,
    "RIGHTSIZER_SANDBOX_PROMETHEUS_PORT": 12090,
}
#: (API group, resource) the operator's ClusterRole grants: the breakdown counts only these.
OPERATOR_RESOURCES = {
    (group, resource.split("/")[0])
    for rule in yaml.safe_load((ROOT / "manifests" / "clusterrole.yaml").read_text())["rules"]
    for group in rule["apiGroups"]
    for resource in rule["resources"]
}
PROMETHEUS_METRICS = [
    "prometheus_http_requests_total",
    "process_cpu_seconds_total",
    "prometheus_engine_query_duration_seconds_sum",
]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def exists(read: Callable[[], Any]) -> bool:
    """Whether read() finds its object (False on 404)."""
    try:
        read()
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or a == 0 else f"{b / a:.2f}×"


# ------------------------------------------------------------------ metrics scraping
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str, names: Iterable[str]) -> Samples:
    wanted = set(names)
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted:
                out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def queries(snapshot: Snapshot) -> float:
    """PromQL queries Prometheus has answered (not this script's scrapes of /metrics)."""
    return sum(
        v
        for (name, labels), v in snapshot.prometheus.items()
        if name == "prometheus_http_requests_total"
        and dict(labels).get("handler", "").startswith("/api/v1/query")
    )


def prometheus_cpu(snapshot: Snapshot) -> float:
    """CPU seconds of the Prometheus process (its own process_cpu_seconds_total)."""
    return total(snapshot.prometheus, "process_cpu_seconds_total")


def prometheus_eval(snapshot: Snapshot) -> float:
    """Seconds Prometheus's engine spent evaluating queries (the inner_eval slice)."""
    return total(snapshot.prometheus, "prometheus_engine_query_duration_seconds_sum",
                 slice="inner_eval")  # fmt: skip


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all(dict(labels).get(k) == want for k, want in match.items())
    )


@dataclass
class Snapshot:
    at: float
    apiserver: Samples
    prometheus: Samples
    operator: Samples
    reconciles: float = 0.0
    reconcile_s: float = 0.0
    #: This script created the policy between this snapshot and the next.
    policy_created_between: bool = False


@dataclass
class FirstContact:
    """One policy's first reconcile: from its creation to a complete status."""

    name: str
    policy: dict[str, Any]
    to_status: float
    before: Snapshot
    after: Snapshot
    #: The operator's /proc status (VmHWM, VmRSS KiB, CPU ticks) at creation and at the end.
    start: dict[str, int]
    end: dict[str, int]
    status_gets: int

    @property
    def cpu_s(self) -> float:
        return (self.end["cpu_ticks"] - self.start["cpu_ticks"]) / os.sysconf("SC_CLK_TCK")

    @property
    def queries(self) -> float:
        return queries(self.after) - queries(self.before)

    @property
    def prometheus_cpu_s(self) -> float:
        return prometheus_cpu(self.after) - prometheus_cpu(self.before)

    @property
    def prometheus_eval_s(self) -> float:
        return prometheus_eval(self.after) - prometheus_eval(self.before)

    @property
    def reconcile_s(self) -> float:
        return self.after.reconcile_s - self.before.reconcile_s

    @property
    def api_requests(self) -> float:
        name, schema = "apiserver_flowcontrol_dispatched_requests_total", "service-accounts"
        return total(self.after.apiserver, name, flow_schema=schema) - total(
            self.before.apiserver, name, flow_schema=schema
        )


def frame_name(frame: str) -> str:
    """py-spy's "function (path/to/module.py:line)" as "function (package/module.py)"."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = re.sub(r"^.*?(site-packages/|/operator/|/lib/python3\.\d+/)", "", path)
    return f"{func} ({path})" if where else func


def profile_summary(path: Path, rate: int, top: int = 15) -> list[str]:
    """The top functions of py-spy's folded stacks, by own and by inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    n = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame_name(f) for f in stack.split(";")]
        n += int(count)
        own[frames[-1]] += int(count)
        for f in set(frames):
            inclusive[f] += int(count)
    if not n:
        return [f"  no samples in {path}"]
    out = [f"  {n} samples at {rate} Hz (≈ {n / rate:.1f} s of non-idle thread time), {path}"]
    for title, counts in (("own", own), ("inclusive", inclusive)):
        out.append(f"  top {top} by {title} samples:")
        out += [f"    {100 * c / n:5.1f}%  {f}" for f, c in counts.most_common(top)]
    return out


@dataclass
class Bench:
    args: argparse.Namespace
    cfg: Config = field(default_factory=Config)
    sandbox: Sandbox = field(init=False)
    kubectl: str = ""
    admin: Any = None
    ssl_admin: ssl.SSLContext | None = None
    operator: OperatorProcess | None = None
    operator_log: Path = Path()
    metrics_port: int = 0
    status_gets: int = 0
    scrape_errors: list[str] = field(default_factory=list)
    profiler: subprocess.Popen[bytes] | None = None
    profiles: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sandbox = Sandbox(self.cfg)

    # ------------------------------------------------------------------ setup
    def sandbox_up(self) -> None:
        self.sandbox.down()
        components = ["kube", "prometheus"] + ([] if self.args.no_metrics_server else
                                               ["metrics-server"])  # fmt: skip
        self.sandbox.up(components, keep_data=False, log=lambda line: log("  " + line))
        self.kubectl = str(self.cfg.binary("kubectl"))
        ctx = ssl.create_default_context(cafile=str(self.cfg.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.cfg.pki / "admin.crt"), str(self.cfg.pki / "admin.key"))
        self.ssl_admin = ctx
        configuration = client.Configuration()
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            str(self.cfg.kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = 16
        self.admin = client.ApiClient(configuration)

    def k(self, *args: str, kubeconfig: str | None = None, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [self.kubectl, f"--kubeconfig={kubeconfig or self.cfg.kubeconfig}", *args],
            input=stdin, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"bench: kubectl {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def install(self) -> Path:
        """CRD + manifests; returns a kubeconfig with the operator's ServiceAccount token."""
        self.k("apply", "-f", str(ROOT / "crds"))
        self.k("apply", "-k", str(ROOT / "manifests"))
        self.k("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}",
               f"crd/rightsizerecommendations.{GROUP}")  # fmt: skip
        token = self.k("create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NS,
                       "--duration=4h").strip()  # fmt: skip
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "operator",
            "clusters": [{"name": "bench", "cluster": {
                "server": self.cfg.apiserver_url,
                "certificate-authority": str(self.cfg.pki / "ca.crt")}}],
            "users": [{"name": "operator", "user": {"token": token}}],
            "contexts": [{"name": "operator",
                          "context": {"cluster": "bench", "user": "operator"}}],
        }  # fmt: skip
        path = self.cfg.state / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def nodes(self, deployments: int) -> None:
        kube = KubeRest(self.cfg)
        count = math.ceil((deployments + 20) / PODS_PER_NODE)
        for i in range(count):
            name = f"kwok-bench-{i:02d}"
            kube.apply("/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0",
                        "metrics.k8s.io/resource-metrics-path":
                            f"/metrics/nodes/{name}/metrics/resource",
                    },
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                               "kubernetes.io/arch": "amd64", "type": "kwok"},
                },
                "spec": {},
                "status": {
                    "allocatable": {"cpu": "64", "memory": "512Gi", "pods": str(PODS_PER_NODE)},
                    "capacity": {"cpu": "64", "memory": "512Gi", "pods": str(PODS_PER_NODE)},
                    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
                },
            })  # fmt: skip

        def ready() -> bool:
            items = kube.get("/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
            return sum(
                any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (n.get("status") or {}).get("conditions", []))
                for n in items
            ) >= count  # fmt: skip

        wait_for(f"{count} kwok nodes Ready", ready, 120)
        log(f"  {count} extra kwok nodes Ready ({PODS_PER_NODE} pods each)")

    def create_deployments(self, fleet: Fleet) -> None:
        core: Any = client.CoreV1Api(self.admin)
        apps: Any = client.AppsV1Api(self.admin)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: apps.create_namespaced_deployment(NAMESPACE,
                                                                      fleet.deployment(i)),
                          range(len(fleet.names))))  # fmt: skip

        def available() -> bool:
            items = apps.list_namespaced_deployment(NAMESPACE).items
            ready = sum(1 for d in items if (d.status.available_replicas or 0) >= 1)
            return ready >= len(fleet.names)

        wait_for("all Deployments available", available, 900, interval=3)

    def load_history(self, fleet: Fleet) -> Pipeline:
        """The fleet's history into Prometheus: day files written (fleet_history.day_files)
        while promtool loads the one before, then Prometheus restarted once."""
        end_s = math.floor(time.time() / 60) * 60
        prometheus = Prometheus(self.sandbox)
        files = day_files(fleet, self.args.days, end_s, self.cfg.state / "om")
        run = load_pipelined(files, lambda f: prometheus.load_openmetrics(f, restart=False),
                             log=log)  # fmt: skip
        if self.sandbox.pid(prometheus.component) is not None:
            prometheus.restart()
        run.end_s = end_s
        log(f"  history: {run.files} day files, {run.bytes / 2**30:.1f} GiB, ready in "
            f"{run.wall_s:.0f}s (writing {run.write_s:.0f}s / {run.write_cpu_s:.0f}s CPU, "
            f"promtool {run.load_s:.0f}s / {run.load_cpu_s:.0f}s CPU, overlapped); bench peak "
            f"RSS {run.peak_rss_mib:.0f} MiB")  # fmt: skip
        return run

    def history_only(self, fleet: Fleet) -> None:
        """Only the history (``--history-only``): Prometheus alone, the fleet's days loaded,
        then what its blocks and queries hold."""
        self.sandbox.down()
        self.sandbox.up(["prometheus"], keep_data=False, log=lambda line: log("  " + line))
        n, days = len(fleet.names), self.args.days
        log(f"history only: {n} containers × {days:g} days at 1 minute …")
        t0 = time.monotonic()
        run = self.load_history(fleet)
        ready_s = time.monotonic() - t0
        prometheus = Prometheus(self.sandbox)
        blocks = [json.loads(m.read_text())
                  for m in sorted(prometheus.tsdb_dir.glob("*/meta.json"))]  # fmt: skip
        samples = sum(b["stats"]["numSamples"] for b in blocks)
        start_s = run.end_s - (int(days * 86400 / 60) - 1) * 60
        counts = {
            at: prometheus.value("count(container_cpu_usage_seconds_total)", at)
            for at in (start_s, run.end_s)
        }
        rows = [
            ("history ready (written + promtool + restart)", f"{ready_s:.0f} s"),
            ("  writing day files (overlapped): wall, CPU",
             f"{run.write_s:.0f} s, {run.write_cpu_s:.0f} s"),
            ("  promtool: wall, CPU", f"{run.load_s:.0f} s, {run.load_cpu_s:.0f} s"),
            ("day files / OpenMetrics text", f"{run.files} / {run.bytes / 2**30:.1f} GiB"),
            ("blocks / samples", f"{len(blocks)} / {samples:,}"),
            ("CPU counter series at the first / last minute",
             f"{counts[start_s]:.0f} / {counts[run.end_s]:.0f} (expected {n})"),
            ("bench peak RSS (ru_maxrss)", f"{run.peak_rss_mib:.0f} MiB"),
        ]  # fmt: skip
        print(f"\nhistory at scale: {n} Deployments × {days:g} days of 1-minute history "
              f"(cAdvisor every minute, kube-state-metrics every 5 min); "
              f"{os.cpu_count()} CPUs\n")  # fmt: skip
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k.ljust(width)}  {v}")
        sys.stdout.flush()

    # ------------------------------------------------------------------ the operator
    def start_operator(
        self, kubeconfig: Path, env: dict[str, str] | None = None, start_timeout_s: float = 120
    ) -> None:
        self.operator_log = self.cfg.state / "operator.log"
        self.operator_log.unlink(missing_ok=True)
        try:
            self.operator = OperatorProcess(
                kubeconfig, self.operator_log, self.cfg.prometheus_url, tick_s=2,
                log_format="json", start_timeout_s=start_timeout_s, env=env,
            )  # fmt: skip
        except (OperatorExitedError, TimeoutError) as exc:
            raise SystemExit(f"bench: the operator did not start: {exc}") from None
        self.metrics_port = self.operator.metrics_port
        # Settled: its watches and initial lists are done when its request count stops moving.
        self.wait_settled()

    def wait_settled(self) -> None:
        """Until the operator's API request count stops moving for 3 s."""

        def settled() -> bool:
            before = self.sa_requests(self.scrape_apiserver())
            time.sleep(3)
            return self.sa_requests(self.scrape_apiserver()) == before

        wait_for("the operator to settle", settled, 120, interval=0)

    def operator_status(self) -> dict[str, int]:
        """VmHWM, VmRSS (KiB) and CPU ticks of the operator process."""
        assert self.operator is not None
        pid = self.operator.pid
        out: dict[str, int] = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_ticks"] = int(stat[11]) + int(stat[12])  # utime + stime
        return out

    def reset_peak_rss(self) -> bool:
        """Resets the operator's VmHWM to its current RSS (Linux ≥ 4.0)."""
        assert self.operator is not None
        try:
            Path(f"/proc/{self.operator.pid}/clear_refs").write_text("5")
        except OSError as err:
            log(f"  cannot reset the operator's peak RSS ({err!r}): VmHWM stays cumulative")
            return False
        return True

    # ------------------------------------------------------------------ profiling
    def profile_start(self, name: str) -> None:
        if not self.args.profile:
            return
        assert self.operator is not None
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if spy is None:
            raise SystemExit("bench: --profile needs py-spy (pip install py-spy)")
        out = Path(self.args.profile).resolve() / f"{name}.folded"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        with (out.parent / f"{name}.py-spy.log").open("wb") as spy_log:
            self.profiler = subprocess.Popen(
                [spy, "record", "--pid", str(self.operator.pid), "--rate",
                 str(self.args.profile_rate), "--format", "raw", "--nonblocking",
                 "--output", str(out)],
                stdin=subprocess.DEVNULL, stdout=spy_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.profiles[name] = out
        time.sleep(1.0)  # attached
        if self.profiler.poll() is not None:
            raise SystemExit(f"bench: py-spy exited; see {out.parent / f'{name}.py-spy.log'}")

    def profile_stop(self) -> None:
        """Stops py-spy (SIGINT: it writes its output on the way out)."""
        if self.profiler is None:
            return
        if self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                self.profiler.wait(120)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
                self.profiler.wait()
        self.profiler = None

    # ------------------------------------------------------------------ measuring
    def scrape_apiserver(self) -> Samples:
        req = urllib.request.Request(self.cfg.apiserver_url + "/metrics")
        with urllib.request.urlopen(req, context=self.ssl_admin, timeout=30) as resp:
            text = resp.read().decode()
        return parse_metrics(
            text, ["apiserver_request_total", "apiserver_flowcontrol_dispatched_requests_total"]
        )

    def sa_requests(self, samples: Samples) -> float:
        return total(
            samples, "apiserver_flowcontrol_dispatched_requests_total",
            flow_schema="service-accounts",
        )  # fmt: skip

    def operator_metrics(self) -> str:
        """The operator's /metrics; failed scrapes are retried, counted and reported."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        for attempt in range(5):
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    return str(r.read().decode())
            except OSError as err:
                self.scrape_errors.append(f"{time.strftime('%H:%M:%S')} {err!r}")
                log(f"  scraping the operator's /metrics failed ({err!r}); retrying")
                time.sleep(0.5 * (attempt + 1))
        raise SystemExit(f"bench: the operator's {url} keeps failing: {self.scrape_errors}")

    def scrape(self) -> Snapshot:
        apiserver = self.scrape_apiserver()
        with urllib.request.urlopen(self.cfg.prometheus_url + "/metrics", timeout=30) as r:
            prometheus = parse_metrics(r.read().decode(), PROMETHEUS_METRICS)
        operator = parse_metrics(
            self.operator_metrics(),
            ["rightsizer_reconcile_duration_seconds_count",
             "rightsizer_reconcile_duration_seconds_sum"],
        )  # fmt: skip
        return Snapshot(
            at=time.monotonic(), apiserver=apiserver, prometheus=prometheus, operator=operator,
            reconciles=total(operator, "rightsizer_reconcile_duration_seconds_count",
                             namespace=NAMESPACE),
            reconcile_s=total(operator, "rightsizer_reconcile_duration_seconds_sum",
                              namespace=NAMESPACE),
        )  # fmt: skip

    def get_policy(self, name: str = POLICY) -> dict[str, Any]:
        custom: Any = client.CustomObjectsApi(self.admin)
        self.status_gets += 1
        obj: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name
        )
        return obj

    def create_policy(self, name: str = POLICY, bootstrap: dict[str, str] | None = None) -> None:
        """A policy selecting every Deployment; bootstrap: spec.source.prometheus.bootstrap
        (None: the CRD's defaults, tiered)."""
        prometheus: dict[str, Any] = {"url": self.cfg.prometheus_url,
                                      "history": f"{self.args.days:g}d", "step": STEP}  # fmt: skip
        if bootstrap is not None:
            prometheus["bootstrap"] = bootstrap
        custom: Any = client.CustomObjectsApi(self.admin)
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "targets": {"kinds": ["Deployment"]},
                "source": {
                    "prometheus": prometheus,
                    "metricsServer": {"enabled": not self.args.no_metrics_server},
                },
                "update": {"mode": "Recommend"},
                "reconcileInterval": f"{self.args.interval:g}s",
            },
        })  # fmt: skip

    def delete_policy(self, policy: dict[str, Any]) -> None:
        """Deletes the policy, waits until it is gone (the running operator removes its
        finalizer) and its checkpoint ConfigMap too (the garbage collector removes it; if it
        has not within a minute, this deletes it)."""
        name = policy["metadata"]["name"]
        checkpoint = ((policy.get("status") or {}).get("history") or {}).get(
            "checkpoint"
        ) or f"rightsizer-checkpoint-{name}"
        custom: Any = client.CustomObjectsApi(self.admin)
        core: Any = client.CoreV1Api(self.admin)
        t0 = time.monotonic()
        custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        wait_for(f"policy {name} to be gone (its finalizer removed by the operator)",
                 lambda: not exists(lambda: custom.get_namespaced_custom_object(
                     GROUP, VERSION, NAMESPACE, PLURAL, name)),
                 120, interval=0.5)  # fmt: skip
        log(f"  policy {name} gone after {time.monotonic() - t0:.1f}s")

        def checkpoint_exists() -> bool:
            return exists(lambda: core.read_namespaced_config_map(checkpoint, NAMESPACE))

        deadline = time.monotonic() + 60
        while checkpoint_exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        if checkpoint_exists():
            log(f"  ConfigMap {checkpoint} not garbage-collected within 60 s; deleting it")
            try:
                core.delete_namespaced_config_map(checkpoint, NAMESPACE)
            except ApiException as err:
                if err.status != 404:
                    raise
            wait_for(f"ConfigMap {checkpoint} to be gone", lambda: not checkpoint_exists(), 60,
                     interval=0.5)  # fmt: skip
        log(f"  ConfigMap {checkpoint} gone after {time.monotonic() - t0:.1f}s")

    def complete(self, deployments: int, name: str = POLICY) -> dict[str, Any] | None:
        policy = self.get_policy(name)
        status = policy.get("status") or {}
        summary = status.get("summary") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions", [])
        )
        counted = int(summary.get("containers", 0)) + int(summary.get("insufficientData", 0))
        if ready and summary.get("workloads") == deployments and counted >= deployments:
            return policy
        return None

    @staticmethod
    def deltas(a: Snapshot, b: Snapshot) -> dict[str, float]:
        """apiserver_request_total increase between a and b by "VERB group/resource"."""
        out: dict[str, float] = defaultdict(float)
        for (name, labels), value in b.apiserver.items():
            lab = dict(labels)
            if name != "apiserver_request_total" or not lab.get("resource"):
                continue  # non-resource URLs: /metrics scrapes, discovery
            if (lab.get("group", ""), lab["resource"]) not in OPERATOR_RESOURCES:
                continue  # what the operator may not touch (kwok's leases, controllers…)
            key = f"{lab.get('verb')} {lab.get('group') or 'core'}/{lab['resource']}" + (
                f"/{lab['subresource']}" if lab.get("subresource") else ""
            )
            out[key] += value - a.apiserver.get((name, labels), 0.0)
        return out

    def breakdown(
        self, a: Snapshot, b: Snapshot, background_per_s: dict[str, float], own_gets: int
    ) -> list[tuple[str, float]]:
        """Requests by verb and resource between a and b, without the background rate and
        this script's own status reads."""
        delta = self.deltas(a, b)
        delta[f"GET {GROUP}/{PLURAL}"] -= own_gets
        if a.policy_created_between:
            delta[f"POST {GROUP}/{PLURAL}"] -= 1
        seconds = b.at - a.at
        net = {k: v - background_per_s.get(k, 0.0) * seconds for k, v in delta.items()}
        return sorted(((k, v) for k, v in net.items() if v >= 0.5), key=lambda kv: -kv[1])

    def first_contact(
        self, name: str, before: Snapshot, bootstrap: dict[str, str] | None = None
    ) -> FirstContact:
        """Creates a policy and waits for its complete status; before: a fresh scrape."""
        before.policy_created_between = True
        self.status_gets = 0
        self.profile_start(name)
        start = self.operator_status()
        t0 = time.monotonic()
        self.create_policy(name, bootstrap)
        policy = wait_for(f"a complete status of {name}",
                          lambda: self.complete(self.args.deployments, name),
                          self.args.timeout, interval=0.5)  # fmt: skip
        to_status = time.monotonic() - t0
        end = self.operator_status()
        after = self.scrape()
        self.profile_stop()
        return FirstContact(
            name=name, policy=policy, to_status=to_status, before=before, after=after,
            start=start, end=end, status_gets=self.status_gets,
        )  # fmt: skip

    def print_profile(self, name: str) -> None:
        path = self.profiles.get(name)
        if path is None:
            return
        print(f"\nprofile of the operator (py-spy), first reconcile of {name}:")
        if not path.exists():
            print(f"  py-spy wrote nothing; see {path.with_suffix('.py-spy.log')}")
            return
        for line in profile_summary(path, self.args.profile_rate):
            print(line)

    def run(self) -> None:
        args = self.args
        t_start = time.monotonic()
        log(f"sandbox in {os.environ['RIGHTSIZER_SANDBOX_DIR']} (fresh data)")
        self.sandbox_up()
        kubeconfig = self.install()
        self.nodes(args.deployments)
        fleet = Fleet.make(args.deployments)
        log(f"history: {args.deployments} containers × {args.days:g} days at 1 minute …")
        self.load_history(fleet)
        log(f"creating {args.deployments} Deployments …")
        t0 = time.monotonic()
        self.create_deployments(fleet)
        log(f"  {args.deployments} Deployments available in {time.monotonic() - t0:.0f}s")
        log("starting the operator (ServiceAccount token) …")
        self.start_operator(kubeconfig)
        ticks = os.sysconf("SC_CLK_TCK")
        idle_rss = self.operator_status()

        # Background traffic (kwok heartbeats, controllers) while the operator is idle.
        s0 = self.scrape()
        time.sleep(args.baseline)
        s1 = self.scrape()
        baseline = {k: v / (s1.at - s0.at) for k, v in self.deltas(s0, s1).items()}
        idle_sa = self.sa_requests(s1.apiserver) - self.sa_requests(s0.apiserver)

        log("creating the policy …")
        t_policy = time.monotonic()
        tiered = self.first_contact(POLICY, s1)
        policy, to_status, s2 = tiered.policy, tiered.to_status, tiered.after
        gets_first = self.status_gets
        log(f"  complete status after {to_status:.1f}s")
        after_first = tiered.end

        log(f"steady state: waiting for {args.reconciles} more reconciles …")
        wait_for(f"{args.reconciles} reconciles",
                 lambda: self.scrape().reconciles >= s2.reconciles + args.reconciles,
                 args.interval * (args.reconciles + 2) + 120, interval=1.0)  # fmt: skip
        s3 = self.scrape()
        proc_status = self.operator_status()

        # ------------------------------------------------------------ report
        status = policy["status"]
        summary = status["summary"]
        first_sa = self.sa_requests(s2.apiserver) - self.sa_requests(s1.apiserver)
        steady_sa = self.sa_requests(s3.apiserver) - self.sa_requests(s2.apiserver)
        steady_n = s3.reconciles - s2.reconciles
        prom_first = queries(s2) - queries(s1)
        prom_steady = queries(s3) - queries(s2)
        first_reconcile_s = s2.reconcile_s - s1.reconcile_s
        steady_reconcile_s = (s3.reconcile_s - s2.reconcile_s) / max(steady_n, 1)
        hwm_mib = proc_status["VmHWM"] / 1024
        setup_s = t_policy - t_start
        print(f"\nrightsizer operator at scale: {args.deployments} Deployments (1 pod, 1 container"
              f" each) on kwok nodes, {args.days:g} days of 1-minute history, metrics-server "
              f"{'off' if args.no_metrics_server else 'on'}; "
              f"{os.cpu_count()} CPUs; setup {setup_s:.0f}s\n")  # fmt: skip
        rows = [
            ("policy created → complete status", f"{to_status:.1f} s (target ≤ 60 s)"),
            ("  of which in the first reconcile", f"{first_reconcile_s:.1f} s"),
            ("status", f"{summary.get('workloads')} workloads, {summary.get('containers')} "
                       f"containers, {summary.get('insufficientData')} insufficient data, "
                       f"{len(status.get('topChanges') or [])} top changes, "
                       f"{len(json.dumps(status, separators=(',', ':'))) / 1024:.0f} KiB"),
            ("API requests, first reconcile", f"{first_sa:.0f}"),
            (f"API requests per steady reconcile ({steady_n:.0f} reconciles)",
             f"{steady_sa / max(steady_n, 1):.1f}"),
            ("API requests while idle (before the policy)",
             f"{idle_sa:.0f} in {s1.at - s0.at:.0f} s"),
            ("Prometheus queries, first reconcile", f"{prom_first:.0f}"),
            ("Prometheus queries per steady reconcile", f"{prom_steady / max(steady_n, 1):.1f}"),
            ("steady reconcile duration (mean)", f"{steady_reconcile_s:.2f} s"),
            ("operator peak RSS (VmHWM)", f"{hwm_mib:.0f} MiB (target ≤ 500 MiB)"),
            ("operator RSS idle / after first / end",
             f"{idle_rss['VmRSS'] / 1024:.0f} / {after_first['VmRSS'] / 1024:.0f} / "
             f"{proc_status['VmRSS'] / 1024:.0f} MiB"),
            ("operator CPU time, first reconcile", f"{tiered.cpu_s:.1f} s"),
            ("operator CPU time (total)", f"{proc_status['cpu_ticks'] / ticks:.1f} s"),
            ("failed scrapes of the operator's /metrics", str(len(self.scrape_errors))),
        ]  # fmt: skip
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k.ljust(width)}  {v}")
        gets_steady = self.status_gets - gets_first
        for title, a, b, gets in (("first reconcile", s1, s2, gets_first),
                                  ("steady state", s2, s3, gets_steady)):  # fmt: skip
            parts = self.breakdown(a, b, baseline, gets)
            print(f"\nAPI requests by verb/resource, {title} (the operator's resources, all "
                  f"clients, background subtracted; approximate):")  # fmt: skip
            for key, value in parts[:12]:
                print(f"  {value:8.0f}  {key}")
        self.print_profile(POLICY)
        sys.stdout.flush()
        if not args.no_compare:
            self.compare(tiered, proc_status)

    def compare(self, tiered: FirstContact, tiered_status: dict[str, int]) -> None:
        """Phase 2: the same first contact reading everything at full resolution."""
        log(f"phase 2: deleting policy {POLICY} (the operator keeps running) …")
        self.delete_policy(tiered.policy)
        self.wait_settled()
        reset = self.reset_peak_rss()
        before = self.scrape()
        log(f"creating policy {POLICY_FULL} (bootstrap.olderStep={STEP}: full resolution) …")
        full = self.first_contact(POLICY_FULL, before, {"olderStep": STEP})
        log(f"  complete status after {full.to_status:.1f}s")

        def summary(c: FirstContact) -> str:
            s = c.policy["status"]["summary"]
            return f"{s.get('workloads')} / {s.get('containers')} / {s.get('insufficientData')}"

        def mib(kib: int) -> str:
            return f"{kib / 1024:.0f} MiB"

        rows: list[tuple[str, str, str, str]] = [
            ("policy created → complete status", f"{tiered.to_status:.1f} s",
             f"{full.to_status:.1f} s", ratio(tiered.to_status, full.to_status)),
            ("  of which in the first reconcile", f"{tiered.reconcile_s:.1f} s",
             f"{full.reconcile_s:.1f} s", ratio(tiered.reconcile_s, full.reconcile_s)),
            ("operator CPU seconds, created → complete", f"{tiered.cpu_s:.1f} s",
             f"{full.cpu_s:.1f} s", ratio(tiered.cpu_s, full.cpu_s)),
            ("Prometheus queries", f"{tiered.queries:.0f}", f"{full.queries:.0f}",
             ratio(tiered.queries, full.queries)),
            ("Prometheus query evaluation (inner_eval)", f"{tiered.prometheus_eval_s:.1f} s",
             f"{full.prometheus_eval_s:.1f} s",
             ratio(tiered.prometheus_eval_s, full.prometheus_eval_s)),
            ("Prometheus CPU seconds, created → complete", f"{tiered.prometheus_cpu_s:.1f} s",
             f"{full.prometheus_cpu_s:.1f} s",
             ratio(tiered.prometheus_cpu_s, full.prometheus_cpu_s)),
            ("API requests (operator)", f"{tiered.api_requests:.0f}",
             f"{full.api_requests:.0f}", ratio(tiered.api_requests, full.api_requests)),
            ("operator peak RSS (VmHWM) at complete status",
             mib(tiered.end["VmHWM"]) + " (since start)",
             mib(full.end["VmHWM"]) + (" (since reset)" if reset else " (since start)"),
             ratio(tiered.end["VmHWM"], full.end["VmHWM"]) if reset else "n/a"),
            ("operator RSS at creation → at complete status",
             f"{mib(tiered.start['VmRSS'])} → {mib(tiered.end['VmRSS'])}",
             f"{mib(full.start['VmRSS'])} → {mib(full.end['VmRSS'])}", ""),
            ("status workloads / containers / insufficient", summary(tiered), summary(full), ""),
        ]  # fmt: skip
        head = ("", f"tiered ({POLICY})", f"full ({POLICY_FULL}, olderStep={STEP})", "full/tiered")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        print(f"\nfirst contact side by side, same operator process: tiered (defaults: "
              f"fullResolution 24h, olderStep 5m) vs everything at step {STEP}; "
              f"tiered peak RSS over the whole run so far: "
              f"{mib(tiered_status['VmHWM'])}\n")  # fmt: skip
        for label, *cells in [head, *rows]:
            columns = (c.rjust(w) for c, w in zip(cells, widths[1:], strict=True))
            print("  ".join([label.ljust(widths[0]), *columns]))
        print(f"(the full run's RSS starts from the heap the tiered run left: "
              f"{mib(full.start['VmRSS'])} at its creation)")  # fmt: skip
        self.print_profile(POLICY_FULL)

    def stop(self) -> None:
        self.profile_stop()
        if self.operator is not None:
            self.operator.stop()
        if not self.args.keep:
            self.sandbox.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0, help="days of history (default 7)")
    parser.add_argument("--interval", type=float, default=20.0,
                        help="the policy's reconcileInterval, seconds (default 20)")  # fmt: skip
    parser.add_argument("--reconciles", type=int, default=3,
                        help="steady-state reconciles to average over (default 3)")  # fmt: skip
    parser.add_argument("--baseline", type=float, default=20.0,
                        help="seconds of background traffic to measure (default 20)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for a complete status (default 900)")  # fmt: skip
    parser.add_argument("--no-metrics-server", action="store_true",
                        help="no metrics-server (the policy reads Prometheus only)")  # fmt: skip
    parser.add_argument("--no-compare", action="store_true",
                        help="skip phase 2 (a second first contact, full resolution)")  # fmt: skip
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the operator with py-spy during each first reconcile; "
                             "folded stacks in DIR")  # fmt: skip
    parser.add_argument("--profile-rate", type=int, default=100,
                        help="py-spy samples per second (default 100)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()
    run_in_sandbox(Bench, args, STATE_DIR, PORTS)


def run_in_sandbox(
    bench_class: Any, args: argparse.Namespace, state_dir: str, ports: dict[str, int],
    *, own: bool = False,
) -> None:  # fmt: skip
    """Run a benchmark in its sandbox (state dir and ports: those of the environment, or
    these; ``own``: these whatever the environment says), and stop what it started."""
    if own:
        os.environ["RIGHTSIZER_SANDBOX_DIR"] = state_dir
        os.environ.update({var: str(port) for var, port in ports.items()})
    else:
        os.environ.setdefault("RIGHTSIZER_SANDBOX_DIR", state_dir)
        for var, port in ports.items():
            os.environ.setdefault(var, str(port))
    bench = bench_class(args)
    try:
        bench.run()
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
