"""The rightsizer demo (``make demo`` → ``scripts/demo``): the operator, end to end.

1. Without ``KUBECONFIG``: builds/reuses the sandbox's binaries and brings the sandbox up
   (``scripts/sandbox up``: kube-apiserver, controller-manager, scheduler, kwok,
   metrics-server, Prometheus). With ``KUBECONFIG`` set, that cluster is used instead and
   only a local Prometheus is started for the history (unless ``PROMETHEUS_URL`` is set).
2. Installs the CRD and starts the operator as a local background process serving the
   demo's namespace only (log in the sandbox's state directory).
3. Creates sample workloads (Deployments, a StatefulSet, a DaemonSet) whose pods "use"
   CPU and memory through kwok's usage annotations (live, via metrics-server), and loads
   a week of realistic usage history for exactly those workloads into Prometheus
   (``rightsizer dev openmetrics`` + promtool), ending now.
4. Creates a RightSizePolicy, waits until it is Ready and prints ``kubectl get rsp -A``
   and the recommendations.
5. Opts the namespace in and switches the policy to Apply with ``method: InPlace``: the
   running pods are resized through ``pods/resize`` — the same pods (UIDs), no restart, no
   new ReplicaSet — shown before and after. Everything is left running; the last lines say
   how to look around and how to stop.

A re-run replaces the demo namespace, its history and the operator process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.sandbox: the sandbox's stdlib-only Python API

from rightsizer.dev.openmetrics import replicaset_name  # noqa: E402
from rightsizer.dev.synthetic import MI, ContainerProfile, profile_frame  # noqa: E402
from rightsizer.quantity import parse_quantity  # noqa: E402
from tests.sandbox import (  # noqa: E402
    Config,
    MissingBinaryError,
    OperatorExitedError,
    OperatorProcess,
    Prometheus,
    Sandbox,
)

GROUP, VERSION, PLURAL = "rightsizer.dev", "v1alpha1", "rightsizepolicies"
CRD = f"{PLURAL}.{GROUP}"
RECOMMENDATION_CRD = f"rightsizerecommendations.{GROUP}"
POLICY = "demo"
DEMO_LABEL = "app.kubernetes.io/created-by"
DEMO_LABEL_VALUE = "rightsizer-demo"
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet for generated name suffixes
DAY_S = 86_400
STEP_S = 60
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


# ------------------------------------------------------------------ the sample workloads
@dataclass(frozen=True)
class Container:
    name: str
    requests: tuple[str, str]  # cpu, memory
    limits: tuple[str | None, str | None]
    # usage: base CPU cores, daily swing, base memory bytes, growth per day, spikes
    cpu: float
    cpu_swing: float
    memory: float
    memory_growth: float = 0.0
    spikes: float = 0.002


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    replicas: int
    containers: tuple[Container, ...]


WORKLOADS = (
    # Generously sized web frontend with a sidecar (excluded by the policy): most of its
    # requests are idle.
    Workload("Deployment", "web", 3, (
        Container("app", ("500m", "512Mi"), ("1", "1Gi"), 0.12, 0.08, 180 * MI, 1 * MI),
        Container("proxy", ("100m", "128Mi"), (None, "256Mi"), 0.02, 0.01, 60 * MI),
    )),
    # An API that outgrew its requests: CPU throttled at peaks, memory near its limit.
    Workload("Deployment", "api", 2, (
        Container("app", ("100m", "256Mi"), ("200m", "320Mi"), 0.16, 0.12, 250 * MI, 2 * MI,
                  spikes=0.005),
    )),
    # A bursty queue worker asking for far more than it needs most of the day.
    Workload("Deployment", "worker", 2, (
        Container("worker", ("2", "2Gi"), ("4", "2Gi"), 0.6, 0.5, 350 * MI, spikes=0.02),
    )),
    # A database whose memory keeps growing.
    Workload("StatefulSet", "db", 1, (
        Container("postgres", ("250m", "1Gi"), (None, "1536Mi"), 0.3, 0.1, 900 * MI, 20 * MI,
                  spikes=0.01),
    )),
    # A node agent: one pod per node.
    Workload("DaemonSet", "node-agent", 1, (
        Container("agent", ("100m", "128Mi"), ("200m", "128Mi"), 0.015, 0.005, 40 * MI),
    )),
)  # fmt: skip


def _cores(q: str | None) -> float | None:
    return None if q is None else float(parse_quantity(q))


def workload_manifest(w: Workload, namespace: str) -> dict[str, Any]:
    labels = {"app": w.name, DEMO_LABEL: DEMO_LABEL_VALUE}
    # kwok reports these as every container's usage (→ metrics-server → the operator's live
    # samples): the main container's typical level.
    main = w.containers[0]
    cpu_m = round((main.cpu + 0.5 * main.cpu_swing) * 1000)
    mem_mi = round(main.memory / MI)
    containers = []
    for c in w.containers:
        resources: dict[str, dict[str, str]] = {
            "requests": {"cpu": c.requests[0], "memory": c.requests[1]}
        }
        limits = {k: v for k, v in zip(("cpu", "memory"), c.limits, strict=True) if v}
        if limits:
            resources["limits"] = limits
        # pause: runs anywhere (a real cluster too); on kwok nodes nothing runs at all.
        containers.append({"name": c.name, "image": PAUSE_IMAGE, "resources": resources})
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": w.name}},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {
                    "kwok.x-k8s.io/usage-cpu": f"{cpu_m}m",
                    "kwok.x-k8s.io/usage-memory": f"{mem_mi}Mi",
                },
            },
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 5},
        },
    }
    if w.kind != "DaemonSet":
        spec["replicas"] = w.replicas
    if w.kind == "StatefulSet":
        spec["serviceName"] = w.name
    return {
        "apiVersion": "apps/v1",
        "kind": w.kind,
        "metadata": {"name": w.name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def history_frame(namespace: str, days: float, end_s: float, seed: int = 11) -> pd.DataFrame:
    """A week (by default) of per-minute usage for the sample workloads' pods: daily cycles,
    quieter weekends, noise, spikes and memory growth; pod names as the controllers make
    them, so kube-state-metrics' owner series lead to exactly these workloads."""
    rng = np.random.default_rng(seed)
    profiles = tuple(
        ContainerProfile(namespace, f"{w.kind}/{w.name}", w.replicas, c.name, c.cpu,
                         c.cpu_swing, c.memory, c.memory_growth, float(_cores(c.requests[0]) or 0),
                         _cores(c.limits[0]), float(parse_quantity(c.requests[1])),
                         _cores(c.limits[1]), spike_probability=c.spikes)
        for w in WORKLOADS for c in w.containers
    )  # fmt: skip
    frame = profile_frame(profiles, start_s=end_s - days * DAY_S, days=days, step_s=STEP_S)
    weekday = pd.to_datetime(frame["timestamp"], unit="s", utc=True).dt.day_of_week
    frame["cpu"] = (frame["cpu"] * np.where(weekday >= 5, 0.6, 1.0)).round(4)
    names: dict[str, str] = {}
    for w in WORKLOADS:
        for i in range(w.replicas):
            suffix = "".join(rng.choice(list(SAFE), 5))
            if w.kind == "Deployment":
                real = f"{replicaset_name(namespace, w.name)}-{suffix}"
            elif w.kind == "StatefulSet":
                real = f"{w.name}-{i}"
            else:
                real = f"{w.name}-{suffix}"
            names[f"{w.name}-{i}"] = real
    frame["pod"] = frame["pod"].map(names)
    return frame


def policy_manifest(namespace: str, prometheus_url: str, days: float) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RightSizePolicy",
        "metadata": {"name": POLICY, "namespace": namespace},
        "spec": {
            "targets": {
                "kinds": ["Deployment", "StatefulSet", "DaemonSet"],
                # A sidecar sized by whoever injects it (in this sandbox, kwok would also
                # report the app's live usage for it: one value per pod).
                "excludeContainers": ["proxy"],
            },
            "source": {
                "prometheus": {"url": prometheus_url, "history": f"{days:g}d", "step": "1m"},
                "metricsServer": {"enabled": True},
            },
            # The default strategy and profile (headroom, Balanced), as a newcomer gets them.
            "strategy": {"name": "headroom", "profile": "Balanced"},
            "update": {"mode": "Recommend"},
            "reconcileInterval": "1m",
        },
    }


# ------------------------------------------------------------------ small helpers
class DemoError(RuntimeError):
    """A step failed; the message says what and where to look."""


def say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def step(title: str, timings: dict[str, float]) -> Iterator[None]:
    say(f"==> {title}")
    t0 = time.monotonic()
    yield
    timings[title] = time.monotonic() - t0


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    capture: bool = False,
    capture_stdout: bool = False,
    timeout: float = 900,
) -> str:
    """Run a command; ``capture`` hides its output (shown if it fails), ``capture_stdout``
    only its standard output. Returns the standard output when captured."""
    proc = subprocess.run(
        argv,
        input=input_text,
        text=True,
        env=env,
        stdout=subprocess.PIPE if capture or capture_stdout else None,
        stderr=subprocess.PIPE if capture else None,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        detail = f"\n{proc.stdout or ''}\n{proc.stderr or ''}" if capture else ""
        raise DemoError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}{detail}")
    return proc.stdout or ""


def port_or_free(preferred: int) -> int:
    """``preferred`` if it can be listened on (as the operator's servers do: SO_REUSEADDR),
    else a free port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ------------------------------------------------------------------ the demo
@dataclass
class Demo:
    namespace: str
    days: float
    timeout_s: float
    cfg: Config = field(default_factory=Config)
    existing_cluster: bool = False
    kubeconfig: str = ""
    kubectl: str = "kubectl"
    prometheus_url: str = ""
    local_prometheus: bool = True
    operator_pid: int = 0
    operator: OperatorProcess | None = None
    metrics_port: int = 0
    health_port: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.cfg.state / "demo"

    @property
    def operator_log(self) -> Path:
        return self.state / "operator.log"

    def k(self, *args: str, input_text: str | None = None, capture: bool = False) -> str:
        return run([self.kubectl, f"--kubeconfig={self.kubeconfig}", *args],
                   input_text=input_text, capture=capture)  # fmt: skip

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.k("apply", "-f", "-", input_text=yaml.safe_dump_all(objects, sort_keys=False))

    # -------------------------------------------------------------- 1. a cluster
    def cluster(self) -> None:
        build = ["bash", str(ROOT / "scripts" / "build-components.sh")]
        sandbox = [str(ROOT / "scripts" / "sandbox"), "up"]
        env = {**os.environ, "PYTHON": sys.executable}
        kubeconfig = os.environ.get("KUBECONFIG", "")
        prometheus_url = os.environ.get("PROMETHEUS_URL", "")
        if kubeconfig:
            self.existing_cluster = True
            self.kubeconfig = kubeconfig
            say(f"    KUBECONFIG is set: using that cluster ({kubeconfig}), no sandbox")
            if prometheus_url:
                self.prometheus_url = prometheus_url
                self.local_prometheus = False
                say(f"    PROMETHEUS_URL is set: {prometheus_url} (no history is loaded into it)")
            else:
                run([*build, "prometheus"], env=env)
                run([*sandbox, "-c", "prometheus"], env=env, capture_stdout=True)
                self.prometheus_url = self.cfg.prometheus_url
        else:
            run(build, env=env)
            run(sandbox, env=env, capture_stdout=True)
            self.kubeconfig = str(self.cfg.kubeconfig)
            self.prometheus_url = self.cfg.prometheus_url
        self.kubectl = self._find_kubectl(build, env)

    def _find_kubectl(self, build: list[str], env: dict[str, str]) -> str:
        try:
            return str(self.cfg.binary("kubectl"))
        except MissingBinaryError:  # not built: kubectl from PATH, else build it
            found = shutil.which("kubectl")
            if found:
                return found
        run([*build, "k8s"], env=env)
        return str(self.cfg.binary("kubectl"))

    # -------------------------------------------------------------- 2. CRD and operator
    def install_crd(self) -> None:
        self.k("apply", "-f", str(ROOT / "crds"))
        self.k("wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD}",
               f"crd/{RECOMMENDATION_CRD}", capture=True)  # fmt: skip

    def start_operator(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self._stop_previous_operator()
        self.metrics_port = port_or_free(int(os.environ.get("RIGHTSIZER_DEMO_METRICS_PORT",
                                                            "28080")))  # fmt: skip
        self.health_port = port_or_free(int(os.environ.get("RIGHTSIZER_DEMO_HEALTH_PORT",
                                                           "28081")))  # fmt: skip
        with self.operator_log.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} demo starts the operator\n"
                      .encode())  # fmt: skip
        self.operator = OperatorProcess(
            # Only the demo's namespace: never another operator's policies (a real cluster's,
            # or those of a test run sharing the sandbox); the one Prometheus its policy names.
            self.kubeconfig, self.operator_log, self.prometheus_url,
            metrics_port=self.metrics_port, health_port=self.health_port, tick_s=2,
            namespaces=[self.namespace], log_format="full", wait=False,
        )  # fmt: skip
        self.operator_pid = self.operator.pid
        (self.state / "operator.pid").write_text(f"{self.operator_pid}\n")

    def _stop_previous_operator(self) -> None:
        pid_file = self.state / "operator.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if "rightsizer.handlers.main" not in cmdline(pid):
            pid_file.unlink(missing_ok=True)
            return
        say(f"    stopping the operator of the previous demo run (PID {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while cmdline(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if cmdline(pid):
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)

    def wait_operator_started(self) -> None:
        assert self.operator is not None
        try:
            self.operator.wait_started(60)
        except (OperatorExitedError, TimeoutError) as exc:
            raise DemoError(f"the operator did not start ({self.operator_log}): {exc}") from None

    # -------------------------------------------------------------- 3. workloads + history
    def replace_namespace(self) -> None:
        ns = self.namespace
        found = self.k("get", "namespace", ns, "--ignore-not-found", "-o", "json", capture=True)
        if found.strip():
            labels = json.loads(found)["metadata"].get("labels") or {}
            if labels.get(DEMO_LABEL) != DEMO_LABEL_VALUE:
                raise DemoError(
                    f"namespace {ns} exists and was not made by the demo "
                    f"(no label {DEMO_LABEL}={DEMO_LABEL_VALUE}); choose another with --namespace"
                )
            say(f"    replacing namespace {ns} from an earlier run")
            # The running operator releases its finalizers; if it cannot, drop them.
            try:
                self.k("delete", "rsp", "--all", "-n", ns, "--timeout=30s", capture=True)
            except DemoError:
                for name in self.k("get", "rsp", "-n", ns, "-o", "name", capture=True).split():
                    self.k("patch", name, "-n", ns, "--type=merge",
                           "-p", '{"metadata":{"finalizers":null}}', capture=True)  # fmt: skip
            self.k("delete", "namespace", ns, "--timeout=120s", capture=True)
        self.apply([{
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {DEMO_LABEL: DEMO_LABEL_VALUE}},
        }])  # fmt: skip

    def workloads(self) -> None:
        self.replace_namespace()
        self.create_workloads()

    def create_workloads(self) -> None:
        self.apply([workload_manifest(w, self.namespace) for w in WORKLOADS])

    def load_history(self) -> None:
        if not self.local_prometheus:
            say("    (skipped: PROMETHEUS_URL is not the demo's own Prometheus)")
            return
        work = self.state / "history"
        shutil.rmtree(work, ignore_errors=True)
        (work / "openmetrics").mkdir(parents=True)
        end_s = math.floor(time.time() / STEP_S) * STEP_S
        frame = history_frame(self.namespace, self.days, end_s)
        samples = work / "samples.csv"
        frame.to_csv(samples, index=False)
        rightsizer = str(Path(sys.executable).parent / "rightsizer")
        run([rightsizer, "dev", "openmetrics", "--samples", str(samples), "--end", str(end_s),
             "--output", str(work / "openmetrics")], capture=True)  # fmt: skip
        self._delete_old_series()
        files = sorted((work / "openmetrics").glob("*.om"))
        Prometheus(Sandbox(self.cfg)).load_openmetrics(files)
        pods = frame.groupby(["workload", "pod"]).ngroups
        ends = time.strftime("%H:%M", time.gmtime(end_s))
        say(f"    {len(frame):,} samples: {pods} pods, {frame['container'].nunique()} containers, "
            f"{self.days:g} days at 1-minute steps, ending {ends} UTC")  # fmt: skip
        shutil.rmtree(work / "openmetrics", ignore_errors=True)

    def _delete_old_series(self) -> None:
        """A re-run's history replaces the last one (the admin API is enabled in the sandbox)."""
        base = self.prometheus_url
        match = urllib.parse.urlencode({"match[]": f'{{namespace="{self.namespace}"}}'})
        for path in (
            f"/api/v1/admin/tsdb/delete_series?{match}",
            "/api/v1/admin/tsdb/clean_tombstones",
        ):
            req = urllib.request.Request(base + path, method="POST")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(req, timeout=60).close()

    # -------------------------------------------------------------- 4. policy and result
    def create_policy(self) -> None:
        self.apply([policy_manifest(self.namespace, self.prometheus_url, self.days)])

    def get_policy(self) -> dict[str, Any]:
        out = self.k("get", "rsp", POLICY, "-n", self.namespace, "-o", "json", capture=True)
        policy: dict[str, Any] = json.loads(out)
        return policy

    def recommendations(self) -> list[dict[str, Any]]:
        """The policy's RightSizeRecommendation objects' statuses, by workload."""
        out = self.k("get", "rsr", "-n", self.namespace, "-l", f"rightsizer.dev/policy={POLICY}",
                     "-o", "json", capture=True)  # fmt: skip
        items = json.loads(out).get("items", [])
        statuses = [o.get("status") or {} for o in items]
        return sorted((s for s in statuses if s.get("workload")), key=lambda s: s["workload"])

    def wait_ready(self) -> dict[str, Any]:
        tty = sys.stdout.isatty()
        t0 = time.monotonic()
        last_line = ""
        while True:
            policy = self.get_policy()
            status = policy.get("status") or {}
            conds = {c["type"]: c for c in status.get("conditions", [])}
            ready = conds.get("Ready", {})
            elapsed = time.monotonic() - t0
            shown = (
                ", ".join(f"{t}={c['status']}" for t, c in sorted(conds.items())) or "no status yet"
            )
            line = f"    waiting for Ready: {elapsed:4.0f}s  ({shown})"
            if tty:
                sys.stdout.write("\r\033[K" + line[: shutil.get_terminal_size().columns - 1])
                sys.stdout.flush()
            elif shown != last_line:
                say(line)
                last_line = shown
            if (
                ready.get("status") == "True"
                and (status.get("summary") or {}).get("workloads")
                and status.get("observedGeneration") == policy["metadata"].get("generation")
            ):
                if tty:
                    sys.stdout.write("\r\033[K")
                say(f"    Ready after {elapsed:.0f}s: {ready.get('message', '')}")
                return policy
            if not cmdline(self.operator_pid):
                raise DemoError(f"the operator exited; last lines of {self.operator_log}:\n"
                                + tail(self.operator_log))  # fmt: skip
            if elapsed > self.timeout_s:
                if tty:
                    sys.stdout.write("\n")
                raise DemoError(
                    f"policy {self.namespace}/{POLICY} not Ready after {self.timeout_s:.0f}s "
                    f"({shown}); last lines of {self.operator_log}:\n" + tail(self.operator_log)
                )
            time.sleep(1.0)

    def show(self, policy: dict[str, Any]) -> None:
        say("\n$ kubectl get rsp -A")
        say(self.k("get", "rsp", "-A", capture=True).rstrip())
        say(f"\n$ kubectl get rsr -n {self.namespace}   # one recommendation per workload")
        say(self.k("get", "rsr", "-n", self.namespace, capture=True).rstrip())
        say("\nPer container (from each RightSizeRecommendation's .status.containers):")
        say(recommendations_table(self.recommendations(), policy.get("status") or {}))

    # -------------------------------------------------------------- 5. auto-apply
    def pods(self) -> list[dict[str, Any]]:
        out = self.k("get", "pods", "-n", self.namespace, "-o", "json", capture=True)
        pods: list[dict[str, Any]] = json.loads(out)["items"]
        return sorted(pods, key=lambda p: p["metadata"]["name"])

    def show_pods(self, title: str) -> list[dict[str, Any]]:
        """The pods with their UIDs, the requests asked (spec) and in force (the kubelet's
        report), and restarts — what an in-place resize changes and what it leaves."""
        ns = self.namespace
        say(
            f"$ kubectl get pods -n {ns} -o custom-columns=POD:…,UID:…,REQUESTS:…,IN-FORCE:…"
            f"   # {title}"
        )
        pods = self.pods()
        say(pods_table(pods))
        return pods

    def auto_apply(self) -> None:
        """Opt the namespace in, switch the policy to Apply with in-place resize, wait until
        the pods run the new values, and show that they are the same pods."""
        ns = self.namespace
        before = self.show_pods("before")
        replica_sets = self.k("get", "replicasets", "-n", ns, "-o", "name", capture=True).split()
        say(f"\n$ kubectl label namespace {ns} rightsizer.dev/auto-apply=enabled")
        self.k("label", "namespace", ns, "rightsizer.dev/auto-apply=enabled", "--overwrite",
               capture=True)  # fmt: skip
        patch = '{"spec":{"update":{"mode":"Apply","method":"InPlace"}}}'
        say(f"$ kubectl patch rsp {POLICY} -n {ns} --type merge -p '{patch}'")
        self.k("patch", "rsp", POLICY, "-n", ns, "--type", "merge", "-p", patch, capture=True)
        t0 = time.monotonic()
        while True:
            entries = self.recommendations()
            applied = [w for w in entries if (w.get("lastAction") or {}).get("type") == "Applied"]
            decided = [w for w in entries if w.get("autoApply")]
            waiting = [w for w in decided if (w.get("autoApply") or {}).get("reason")
                       in ("RolloutLimit", "RolloutInProgress", "Resizing")]  # fmt: skip
            if applied and decided and not waiting:
                break
            if time.monotonic() - t0 > self.timeout_s:
                raise DemoError(f"no write after {self.timeout_s:.0f}s; last lines of "
                                f"{self.operator_log}:\n" + tail(self.operator_log))  # fmt: skip
            time.sleep(1.0)
        say(f"    every pod resized after {time.monotonic() - t0:.0f}s\n")
        say(f"$ kubectl get rsr -n {ns}")
        say(self.k("get", "rsr", "-n", ns, capture=True).rstrip() + "\n")
        say(applied_table(entries) + "\n")
        after = self.show_pods("after")
        same = {p["metadata"]["uid"] for p in before} & {p["metadata"]["uid"] for p in after}
        restarts = sum(
            c.get("restartCount", 0)
            for p in after
            for c in p["status"].get("containerStatuses") or []
        )
        now_sets = self.k("get", "replicasets", "-n", ns, "-o", "name", capture=True).split()
        say(f"    resized in place: {len(same)} of {len(before)} pods kept their UID, "
            f"{restarts} container restarts, ReplicaSets {len(replica_sets)} → {len(now_sets)} "
            "(no rollout; the templates are unchanged)")  # fmt: skip
        say(f"\n$ kubectl get events -n {ns} --field-selector reason=PodsResized")
        events = self.k("get", "events", "-n", ns, "--field-selector", "reason=PodsResized",
                        "-o", "custom-columns=OBJECT:.involvedObject.name,MESSAGE:.message",
                        capture=True)  # fmt: skip
        say(events.rstrip())

    def goodbye(self, total_s: float) -> None:
        steps = ", ".join(f"{k} {v:.0f}s" for k, v in self.timings.items())
        say(f"\nDemo ready in {total_s:.0f}s ({steps}).")
        ns = self.namespace
        commands = [
            (f"export KUBECONFIG={self.kubeconfig} PATH={Path(self.kubectl).parent}:$PATH", ""),
            (f"kubectl get rsr -n {ns}", "one recommendation per workload"),
            (f"kubectl get rsr -n {ns} -o yaml", "per-container status and evidence"),
            (f"kubectl get rsp -n {ns} {POLICY} -o yaml", "totals, top changes"),
            (f"kubectl describe rsp -n {ns} {POLICY}", "conditions, events"),
            (f"kubectl top pods -n {ns}", "live usage (metrics-server)"),
            (f"tail -f {self.operator_log}", "the operator's log"),
            (f"curl -s http://127.0.0.1:{self.metrics_port}/metrics | grep ^rightsizer_", ""),
            (f"curl -s http://127.0.0.1:{self.health_port}/healthz", ""),
        ]
        if self.local_prometheus:
            commands.append((f"# Prometheus: {self.prometheus_url} (history of {ns})", ""))
        stop = [(f"kill {self.operator_pid}", "the operator")]
        if self.existing_cluster:
            stop.append((f"kubectl delete namespace {ns}", "the sample workloads"))
            if self.local_prometheus:
                stop.append(("scripts/sandbox down -c prometheus", "the local Prometheus"))
        else:
            stop.append(("scripts/sandbox down", "the sandbox (all components)"))
        width = max(len(c) for c, note in commands + stop if note)

        def block(rows: list[tuple[str, str]]) -> list[str]:
            return [f"  {c.ljust(width)}  # {n}" if n else f"  {c}" for c, n in rows]

        say("\n".join(["Everything keeps running. To look around:", *block(commands),
                       "To stop:", *block(stop)]))  # fmt: skip


def _fmt_cpu(q: str | None) -> str:
    if not q:
        return "-"
    m = float(parse_quantity(q)) * 1000
    return f"{m / 1000:.2f}" if m >= 10_000 else f"{m:.0f}m"


def _fmt_mem(q: str | None) -> str:
    if not q:
        return "-"
    mi = float(parse_quantity(q)) / MI
    return f"{mi / 1024:.2f}Gi" if mi >= 10_240 else f"{mi:.0f}Mi"


def recommendations_table(objects: list[dict[str, Any]], status: dict[str, Any]) -> str:
    """Per container: current request → target (lower–upper bound), as each workload's
    RightSizeRecommendation has it; the policy's totals (``status``) below."""
    header = ("WORKLOAD", "CONTAINER", "PODS", "CPU REQUEST", "CPU TARGET", "(BOUNDS)",
              "MEMORY REQUEST", "MEMORY TARGET", "(BOUNDS)", "SEVERITY")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    for w in objects:
        for c in w.get("containers", []):
            req, tgt = c.get("requests", {}), c.get("target", {})
            lo, hi = c.get("lowerBound", {}), c.get("upperBound", {})
            if c.get("insufficientData"):
                rows.append((w["workload"], c["name"], str(w.get("pods", "")),
                             _fmt_cpu(req.get("cpu")), "-", "", _fmt_mem(req.get("memory")), "-",
                             "", f"insufficient data: {c['insufficientData']}"))  # fmt: skip
                continue
            rows.append((
                w["workload"], c["name"], str(w.get("pods", "")),
                _fmt_cpu(req.get("cpu")), _fmt_cpu(tgt.get("cpu")),
                f"({_fmt_cpu(lo.get('cpu'))}–{_fmt_cpu(hi.get('cpu'))})",
                _fmt_mem(req.get("memory")), _fmt_mem(tgt.get("memory")),
                f"({_fmt_mem(lo.get('memory'))}–{_fmt_mem(hi.get('memory'))})",
                str(c.get("severity", "")),
            ))  # fmt: skip
    if not rows:
        return "  (no recommendation objects yet)"
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    out = ["  ".join(h.ljust(wd) for h, wd in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(wd) for v, wd in zip(r, widths, strict=True)).rstrip() for r in rows]
    summary = status.get("summary") or {}
    if summary:
        out.append(
            f"\nIf applied: {summary.get('change', '?')} across {summary.get('workloads', 0)} "
            f"workloads ({summary.get('containers', 0)} containers with a recommendation, "
            f"{summary.get('insufficientData', 0)} with too little data)."
        )
        listing = (status.get("recommendations") or {}).get("command")
        if listing:
            out.append(f"All of them: {listing}")
    return "\n".join(out)


def pods_table(pods: list[dict[str, Any]]) -> str:
    """POD, UID (its start), requests asked and in force (cpu/memory per container)."""

    def pairs(containers: list[dict[str, Any]]) -> str:
        return " ".join(
            f"{_fmt_cpu(r.get('cpu'))}/{_fmt_mem(r.get('memory'))}"
            for r in ((c.get("resources") or {}).get("requests") or {} for c in containers)
        )

    header = ("POD", "UID", "REQUESTS (SPEC)", "IN FORCE (KUBELET)", "RESTARTS")
    rows = [
        (
            p["metadata"]["name"], p["metadata"]["uid"][:8],
            pairs(p["spec"]["containers"]),
            pairs(p["status"].get("containerStatuses") or []) or "-",
            str(sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or [])),
        )
        for p in pods
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    out = ["  ".join(h.ljust(wd) for h, wd in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(wd) for v, wd in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def applied_table(objects: list[dict[str, Any]]) -> str:
    """Per workload: what auto-apply did (previous → applied requests) or why it held,
    from the RightSizeRecommendations' statuses."""
    header = ("WORKLOAD", "AUTO-APPLY", "CONTAINER", "CPU REQUEST", "MEMORY REQUEST", "WHY")
    rows: list[tuple[str, ...]] = []
    for w in objects:
        state = w.get("autoApply") or {}
        action = w.get("lastAction") or {}
        if action.get("type") == "Applied":
            for name, before in sorted((action.get("previous") or {}).items()):
                after = (action.get("applied") or {}).get(name, {})
                b, a = before.get("requests", {}), after.get("requests", {})
                rows.append((w["workload"], "Applied", name,
                             f"{_fmt_cpu(b.get('cpu'))} → {_fmt_cpu(a.get('cpu'))}",
                             f"{_fmt_mem(b.get('memory'))} → {_fmt_mem(a.get('memory'))}",
                             state.get("message", "")[:60]))  # fmt: skip
        else:
            rows.append((w["workload"], str(state.get("reason", "-")), "", "", "",
                         str(state.get("message", ""))[:60]))  # fmt: skip
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    out = ["  ".join(h.ljust(wd) for h, wd in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(wd) for v, wd in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--namespace", default="rightsizer-demo", help="(default: %(default)s)")
    parser.add_argument("--days", type=float, default=7.0, help="days of history (default: 7)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for Ready (default: 300)"
    )
    parser.add_argument(
        "--no-apply",
        action="store_true",
        help="stop after the recommendations (no opt-in, no writes)",
    )
    args = parser.parse_args(argv)
    demo = Demo(namespace=args.namespace, days=args.days, timeout_s=args.timeout)
    t0 = time.monotonic()
    steps: list[tuple[str, Callable[[], None]]] = [
        ("cluster", demo.cluster),
        ("CRD", demo.install_crd),
        ("operator", demo.start_operator),
        ("workloads", demo.workloads),
        ("history", demo.load_history),
        ("operator ready", demo.wait_operator_started),
        ("policy", demo.create_policy),
    ]
    try:
        for title, action in steps:
            with step(title, demo.timings):
                action()
        with step("recommendations", demo.timings):
            policy = demo.wait_ready()
        demo.show(policy)
        if not args.no_apply:
            say("")
            with step("auto-apply (opt the namespace in)", demo.timings):
                demo.auto_apply()
    except DemoError as err:
        print(f"\ndemo: {err}", file=sys.stderr)
        if demo.operator_pid:
            print(f"demo: the operator (PID {demo.operator_pid}) was left running; "
                  f"log: {demo.operator_log}", file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; what was started keeps running", file=sys.stderr)
        return 130
    demo.goodbye(time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
