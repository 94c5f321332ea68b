"""The sandbox: which components exist, how each starts and when it is ready."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shlex
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import pki
from .config import DEFAULT_PORTS, NODE_NAME, Config, MissingBinaryError
from .http import KubeRest, admin_context, http_ok, insecure_context, wait_until
from .procs import Processes, tail

COMPONENTS: tuple[str, ...] = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "metrics-server",
    "prometheus",
    # The live scrape set: the real kube-state-metrics and a Prometheus that scrapes it
    # and kwok's kubelet endpoints (separate from "prometheus", whose data only comes
    # from loaded blocks, so that no scraped sample ever mixes into a loaded history).
    "kube-state-metrics",
    "prometheus-scrape",
    "prometheus3",
    "victoriametrics",
)

#: The history stores: each runs on its own, without the Kubernetes components.
HISTORY_STORES: tuple[str, ...] = ("prometheus", "prometheus3", "victoriametrics")

DEPENDS: dict[str, tuple[str, ...]] = {
    "kube-apiserver": ("etcd",),
    "kube-controller-manager": ("kube-apiserver",),
    "kube-scheduler": ("kube-apiserver",),
    "kwok": ("kube-apiserver",),
    "metrics-server": ("kube-apiserver", "kwok"),
    "kube-state-metrics": ("kube-apiserver",),
    "prometheus-scrape": ("kube-apiserver", "kwok", "kube-state-metrics"),
}

GROUPS: dict[str, tuple[str, ...]] = {
    # What the demo and the benchmarks run; the other history stores only on request.
    "all": tuple(c for c in COMPONENTS if c not in ("prometheus3", "victoriametrics")),
    "stores": HISTORY_STORES,
    # A cluster where Deployments get Running pods on a fake node.
    "kube": ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"),
    "k8s": ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"),
    "apiserver": ("etcd", "kube-apiserver"),
    "scrape": ("kube-state-metrics", "prometheus-scrape"),
}

# Binaries each component needs (kubectl is only for people).
BINARIES: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd",),
    "kube-apiserver": ("kube-apiserver",),
    "kube-controller-manager": ("kube-controller-manager",),
    "kube-scheduler": ("kube-scheduler",),
    "kwok": ("kwok",),
    "metrics-server": ("metrics-server",),
    "prometheus": ("prometheus", "promtool"),
    "kube-state-metrics": ("kube-state-metrics",),
    "prometheus-scrape": ("prometheus",),
    "prometheus3": ("prometheus3", "promtool3"),
    "victoriametrics": ("victoria-metrics",),
}

# Ports a component listens on besides its own.
EXTRA_PORTS: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd-peer",),
    "kube-state-metrics": ("kube-state-metrics-telemetry",),
}

#: Stages of this project, in the repository (read their headers for what they emulate).
KWOK_STAGES = Path(__file__).parent / "kwok"

KWOK_CONFIG_FILES = (
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
    "metrics-resource.yaml",
    "usage-from-annotation.yaml",
)

PROMETHEUS_CONFIG = """\
# Written by tests/sandbox: nothing is scraped; data only comes from
# blocks created with `promtool tsdb create-blocks-from openmetrics`.
global:
  scrape_interval: 1m
  evaluation_interval: 1m
scrape_configs: []
"""


# How often the live Prometheus scrapes: short, so that a few minutes give enough samples.
SCRAPE_INTERVAL_S = 5


def scrape_config(cfg: Config) -> str:
    """The live Prometheus's configuration: the jobs kube-prometheus-stack sets up, in the
    shape its users have them (``job="kubelet"`` with a ``metrics_path`` label per
    endpoint, ``job="kube-state-metrics"``, ``honor_labels``, ``node``/``endpoint``/
    ``service`` target labels). Where the sandbox differs from a cluster it says so."""
    home = cfg.data_dir("prometheus-scrape")
    interval = f"{SCRAPE_INTERVAL_S}s"
    return f"""\
# Written by tests/sandbox for the live scrape set (docs/sandbox.md).
global:
  scrape_interval: {interval}
  scrape_timeout: {SCRAPE_INTERVAL_S - 1}s
  evaluation_interval: {interval}
scrape_configs:
# kube-prometheus-stack's kubelet ServiceMonitor, endpoint /metrics/resource. kwok v0.8.0
# emulates that endpoint at /metrics/nodes/<node>/metrics/resource (the path of its
# metrics-resource.yaml; it serves no /metrics/cadvisor) and lists one target per node
# and endpoint at /discovery/prometheus (Debian's Prometheus has no kubernetes_sd). The
# relabelling gives the labels a kubelet target has: node, and the kubelet's own path
# in metrics_path.
- job_name: kubelet-resource
  honor_labels: true
  honor_timestamps: true
  tls_config:
    insecure_skip_verify: true
  authorization:
    credentials_file: {home / "token"}
  http_sd_configs:
  - url: {cfg.url("kwok")}/discovery/prometheus
    refresh_interval: {interval}
    tls_config:
      insecure_skip_verify: true
  relabel_configs:
  - source_labels: [metrics_name]
    regex: metrics-resource
    action: keep
  - source_labels: [__metrics_path__]
    regex: /metrics/nodes/([^/]+)/metrics/(.+)
    target_label: node
    replacement: $1
  - source_labels: [__metrics_path__]
    regex: /metrics/nodes/([^/]+)/metrics/(.+)
    target_label: metrics_path
    replacement: /metrics/$2
  - regex: metrics_name
    action: labeldrop
  - target_label: job
    replacement: kubelet
  - target_label: endpoint
    replacement: https-metrics
  - target_label: service
    replacement: kube-prometheus-stack-kubelet
  - target_label: namespace
    replacement: kube-system
# kube-prometheus-stack's kube-state-metrics ServiceMonitor (honorLabels: true). A
# Service's Endpoints may not hold a loopback address, so the target is static; its
# labels are the ones the ServiceMonitor's target gets (namespace/pod/container of the
# exporter's own pod show on series that have no such label of their own).
- job_name: kube-state-metrics
  honor_labels: true
  static_configs:
  - targets: ["{cfg.host}:{cfg.port("kube-state-metrics")}"]
    labels:
      endpoint: http
      service: kube-prometheus-stack-kube-state-metrics
      namespace: monitoring
      pod: kube-prometheus-stack-kube-state-metrics-0
      container: kube-state-metrics
"""


def expand(names: Iterable[str]) -> list[str]:
    """Expand group names; reject unknown names."""
    out: list[str] = []
    for name in names:
        members = GROUPS.get(name, (name,))
        for m in members:
            if m not in COMPONENTS:
                known = ", ".join(COMPONENTS + tuple(GROUPS))
                raise ValueError(f"unknown component {name!r}; choose from {known}")
            if m not in out:
                out.append(m)
    return out


def resolve(names: Iterable[str]) -> list[str]:
    """Expand groups and add dependencies; return components in start order."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in DEPENDS.get(name, ()):
                add(dep)

    for n in expand(names):
        add(n)
    return [c for c in COMPONENTS if c in wanted]


@dataclass(frozen=True)
class KubeAccess:
    """How a test reaches the sandbox's kube-apiserver."""

    kubeconfig: Path
    server: str
    ca_file: Path
    client_cert: Path
    client_key: Path
    token: str
    node_name: str = NODE_NAME


@dataclass
class StartReport:
    """What ``up`` did for one component."""

    component: str
    action: str  # "started" or "running"
    seconds: float
    pid: int | None = None


@dataclass
class Sandbox:
    """Start, stop and inspect the sandbox's processes.

    Components already running (from an earlier ``up`` or another test run)
    are reused; ``started`` lists what this object started itself.
    """

    cfg: Config = field(default_factory=Config)

    def __post_init__(self) -> None:
        self.procs = Processes(self.cfg)
        self.started: list[str] = []
        # Everything ``up`` was asked for (started or reused), in start order.
        self.used: list[str] = []
        self._attached = False

    # ------------------------------------------------------------ queries
    def missing_binaries(self, components: Iterable[str]) -> list[str]:
        missing = []
        for comp in components:
            for binary in BINARIES[comp]:
                try:
                    self.cfg.binary(binary)
                except MissingBinaryError as err:
                    missing.append(str(err))
        return missing

    def check_binaries(self, components: Iterable[str]) -> None:
        missing = self.missing_binaries(components)
        if missing:
            raise MissingBinaryError("sandbox binaries missing:\n  " + "\n  ".join(missing))

    def pid(self, component: str) -> int | None:
        return self.procs.pid(component)

    def status(self) -> dict[str, int | None]:
        return {c: self.pid(c) for c in COMPONENTS}

    def env_lines(self) -> list[str]:
        q = shlex.quote
        return [
            f"export KUBECONFIG={q(str(self.cfg.kubeconfig))}",
            f"export PROMETHEUS_URL={q(self.cfg.prometheus_url)}",
            f"export PROMETHEUS_SCRAPE_URL={q(self.cfg.url('prometheus-scrape'))}",
            f"export RIGHTSIZER_SANDBOX_DIR={q(str(self.cfg.state))}",
            f'export PATH={q(str(self.cfg.k8s_bin))}:"$PATH"',
        ]

    def kube_access(self) -> KubeAccess:
        p = self.cfg.pki
        return KubeAccess(
            kubeconfig=self.cfg.kubeconfig,
            server=self.cfg.apiserver_url,
            ca_file=p / "ca.crt",
            client_cert=p / "admin.crt",
            client_key=p / "admin.key",
            token=pki.token(self.cfg),
        )

    def log_tails(self, components: Iterable[str] | None = None, lines: int = 40) -> str:
        out = []
        for comp in components or COMPONENTS:
            path = self.cfg.log_file(comp)
            if path.exists():
                out.append(f"----- {path} (last {lines} lines) -----\n{tail(path, lines)}")
        return "\n".join(out)

    # ------------------------------------------------------------ up / down
    def up(
        self,
        names: Iterable[str] = ("all",),
        *,
        keep_data: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> list[StartReport]:
        """Start what is not running yet (dependencies first) and wait until it is ready.

        A component that is started (not reused) gets a fresh data directory
        unless ``keep_data``.
        """
        order = resolve(names)
        self.check_binaries(order)
        self.cfg.state.mkdir(parents=True, exist_ok=True)
        if any(c not in HISTORY_STORES for c in order):
            pki.ensure_pki(self.cfg)
            pki.write_kubeconfig(self.cfg)
        reports = []
        for comp in order:
            if comp not in self.used:
                self.used.append(comp)
            t0 = time.monotonic()
            pid = self.pid(comp)
            if pid is not None:
                action = "running"
                self._ready(comp)
            else:
                self._start(comp, keep_data=keep_data)
                action = "started"
                self.started.append(comp)
                if self._attached:
                    self._record_started(comp)
                pid = self.pid(comp)
            self._post_start(comp)
            report = StartReport(comp, action, time.monotonic() - t0, pid)
            reports.append(report)
            if log:
                log(f"{comp:<24} {action:<8} pid {pid}  {report.seconds:5.1f}s")
        return reports

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop components (all by default) in reverse start order; return those stopped."""
        order = list(COMPONENTS)
        if names:
            # The named components (groups expanded, dependencies not added),
            # plus whatever depends on them.
            wanted = set(expand(names))
            changed = True
            while changed:
                changed = False
                for comp, deps in DEPENDS.items():
                    if comp not in wanted and wanted.intersection(deps):
                        wanted.add(comp)
                        changed = True
            order = [c for c in COMPONENTS if c in wanted]
        stopped = []
        for comp in reversed(order):
            if self.procs.stop(comp):
                stopped.append(comp)
            if comp in self.started:
                self.started.remove(comp)
        return stopped

    def stop_started(self) -> list[str]:
        """Stop only what this object started."""
        stopped = []
        for comp in reversed([c for c in COMPONENTS if c in self.started]):
            if self.procs.stop(comp):
                stopped.append(comp)
        self.started.clear()
        return stopped

    # ------------------------------------------------------------ test sessions
    # Several pytest runs may share one sandbox (same state dir). Each run
    # attaches; what any run started is recorded in ``sessions/started``, and
    # the last run to detach stops it. Components started with the CLI are
    # never recorded there, so test runs leave them running.
    @contextlib.contextmanager
    def _sessions_lock(self) -> Iterator[Path]:
        sessions = self.cfg.state / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        with (sessions / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield sessions
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def attach(self) -> None:
        """Join the test sessions using this sandbox; components started from now on are
        stopped by the last session that detaches."""
        with self._sessions_lock() as sessions:
            (sessions / f"pid-{os.getpid()}").write_text("")
        self._attached = True

    def detach(self, *, stop: bool = True) -> list[str]:
        """Leave; if no other live session remains (and ``stop``), stop what sessions started."""
        self._attached = False
        with self._sessions_lock() as sessions:
            (sessions / f"pid-{os.getpid()}").unlink(missing_ok=True)
            others = []
            for f in sessions.glob("pid-*"):
                pid = int(f.name.removeprefix("pid-"))
                if Path(f"/proc/{pid}").exists():
                    others.append(pid)
                else:
                    f.unlink(missing_ok=True)  # a session that died without detaching
            record = sessions / "started"
            if others or not stop:
                return []
            names = set(record.read_text().split()) if record.exists() else set()
            names.update(self.started)
            stopped = [c for c in reversed(COMPONENTS) if c in names and self.procs.stop(c)]
            record.unlink(missing_ok=True)
            self.started.clear()
            return stopped

    def _record_started(self, comp: str) -> None:
        with self._sessions_lock() as sessions, (sessions / "started").open("a") as fh:
            fh.write(comp + "\n")

    # ------------------------------------------------------------ internals
    def _fresh_dir(self, path: Path, keep: bool) -> Path:
        if path.exists() and not keep:
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_one(self, comp: str, *, keep_data: bool) -> None:
        """Start one (stopped) component and wait until it is ready; no bookkeeping."""
        self._start(comp, keep_data=keep_data)

    def _start(self, comp: str, *, keep_data: bool) -> None:
        self._check_port_free(comp)
        argv = self._argv(comp, keep_data)
        self.procs.start(comp, argv)
        self._ready(comp)

    def _check_port_free(self, comp: str) -> None:
        port_names = [comp, *EXTRA_PORTS.get(comp, ())]
        for pn in port_names:
            port = self.cfg.port(pn)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.cfg.host, port))
                except OSError as err:
                    raise RuntimeError(
                        f"{comp}: port {self.cfg.host}:{port} is already in use by a process "
                        f"the sandbox did not start ({err}); stop it or set {DEFAULT_PORTS[pn][0]}"
                    ) from err

    def _argv(self, comp: str, keep_data: bool) -> list[str]:
        cfg = self.cfg
        p = cfg.pki
        host = cfg.host
        kubeconfig = str(cfg.kubeconfig)
        if comp == "etcd":
            data = self._fresh_dir(cfg.data_dir("etcd"), keep_data)
            client = f"http://{host}:{cfg.port('etcd')}"
            peer = f"http://{host}:{cfg.port('etcd-peer')}"
            return [
                str(cfg.binary("etcd")),
                "--name=sandbox",
                f"--data-dir={data}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=sandbox={peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",
                "--snapshot-count=10000",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ]
        if comp == "kube-apiserver":
            return [
                str(cfg.binary("kube-apiserver")),
                f"--etcd-servers=http://{host}:{cfg.port('etcd')}",
                "--etcd-prefix=/registry",
                f"--bind-address={host}",
                f"--advertise-address={host}",
                f"--secure-port={cfg.port('kube-apiserver')}",
                # No kubernetes.default Endpoints pointing at a loopback address.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={cfg.data_dir('kube-apiserver')}",
                f"--tls-cert-file={p / 'server.crt'}",
                f"--tls-private-key-file={p / 'server.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--token-auth-file={p / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                # API aggregation (metrics-server behind v1beta1.metrics.k8s.io).
                f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User",
                f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
                # The aggregator reaches metrics-server through an ExternalName
                # Service (127.0.0.1): that needs cluster routing, i.e.
                # --enable-aggregator-routing=false (endpoint routing would
                # reject ExternalName services).
                "--enable-aggregator-routing=false",
                "--profiling=false",
                "--event-ttl=1h",
                # PodTemplates (used by no test but the watch cache's) bypass the API
                # server's watch cache, so that etcd's compaction answers an old
                # resourceVersion with a real 410 Gone (tests/integration/test_watch_cache.py).
                "--watch-cache-sizes=podtemplates#0",
            ]
        if comp == "kube-controller-manager":
            return [
                str(cfg.binary("kube-controller-manager")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={host}",
                f"--secure-port={cfg.port('kube-controller-manager')}",
                f"--cert-dir={cfg.data_dir('kube-controller-manager')}",
                "--leader-elect=false",
                "--cluster-name=rightsizer-sandbox",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--profiling=false",
            ]
        if comp == "kube-scheduler":
            return [
                str(cfg.binary("kube-scheduler")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={host}",
                f"--secure-port={cfg.port('kube-scheduler')}",
                f"--cert-dir={cfg.data_dir('kube-scheduler')}",
                "--leader-elect=false",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--profiling=false",
            ]
        if comp == "kwok":
            conf = self._write_kwok_config()
            port = cfg.port("kwok")
            return [
                str(cfg.binary("kwok")),
                f"--kubeconfig={kubeconfig}",
                f"--config={conf}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                # Nodes get InternalIP 127.0.0.1 and kubelet port = kwok's own
                # server, which emulates the kubelet's /metrics/resource.
                f"--node-ip={host}",
                f"--node-port={port}",
                f"--server-address={host}:{port}",
                f"--tls-cert-file={p / 'server.crt'}",
                f"--tls-private-key-file={p / 'server.key'}",
                "--cidr=10.244.0.1/16",
                "--node-lease-duration-seconds=40",
            ]
        if comp == "metrics-server":
            return [
                str(cfg.binary("metrics-server")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={host}",
                f"--secure-port={cfg.port('metrics-server')}",
                f"--cert-dir={cfg.data_dir('metrics-server')}",
                f"--tls-cert-file={p / 'server.crt'}",
                f"--tls-private-key-file={p / 'server.key'}",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                "--kubelet-insecure-tls",
                "--metric-resolution=10s",
                "--kubelet-request-timeout=5s",
                "--profiling=false",
            ]
        if comp in ("prometheus", "prometheus3"):
            # Prometheus 3 gets the same flags as 2: everything else at its own defaults.
            return self._prometheus_command(comp, comp, PROMETHEUS_CONFIG, keep_data, history=True)
        if comp == "kube-state-metrics":
            return [
                str(cfg.binary("kube-state-metrics")),
                f"--kubeconfig={kubeconfig}",
                f"--host={host}",
                f"--port={cfg.port('kube-state-metrics')}",
                f"--telemetry-host={host}",
                f"--telemetry-port={cfg.port('kube-state-metrics-telemetry')}",
                "--resources=pods,replicasets,deployments,statefulsets,daemonsets,jobs,"
                "cronjobs,nodes,namespaces",
            ]
        if comp == "prometheus-scrape":
            token = cfg.data_dir(comp) / "token"
            token.parent.mkdir(parents=True, exist_ok=True)
            token.write_text(pki.token(cfg))
            token.chmod(0o600)
            return self._prometheus_command(
                comp, "prometheus", scrape_config(cfg), keep_data, history=False
            )
        if comp == "victoriametrics":
            data = self._fresh_dir(cfg.data_dir("victoriametrics"), keep_data)
            return [
                str(cfg.binary("victoria-metrics")),
                f"-storageDataPath={data}",
                "-retentionPeriod=400d",
                f"-httpListenAddr={host}:{cfg.port('victoriametrics')}",
                # Loaded history is queried at once: no 30 s hold-back of recent points
                # (docs/backends.md); identical samples (a history loaded twice) kept once.
                "-search.latencyOffset=0s",
                "-dedup.minScrapeInterval=1ms",
                *cfg.victoriametrics_flags,
            ]
        raise ValueError(comp)

    def _prometheus_command(
        self, comp: str, binary: str, config: str, keep_data: bool, history: bool
    ) -> list[str]:
        """A Prometheus (2 or 3) with its own TSDB and configuration; ``history``: one
        that gets loaded blocks (long retention, the admin API to delete series)."""
        cfg = self.cfg
        home = cfg.data_dir(comp)
        home.mkdir(parents=True, exist_ok=True)
        tsdb = self._fresh_dir(home / "tsdb", keep_data)
        conf = home / "prometheus.yml"
        conf.write_text(config)
        history_flags = ["--storage.tsdb.retention.time=400d", "--web.enable-admin-api"]
        return [
            str(cfg.binary(binary)),
            f"--config.file={conf}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address={cfg.host}:{cfg.port(comp)}",
            "--web.enable-lifecycle",
            *(history_flags if history else []),
        ]

    def _write_kwok_config(self) -> Path:
        share = self.cfg.kwok_share
        parts = []
        for name in KWOK_CONFIG_FILES:
            path = share / name
            if not path.is_file():
                raise MissingBinaryError(
                    f"kwok configuration {path} is missing: run `bash scripts/build-components.sh`"
                )
            parts.append(f"# from {path}\n" + path.read_text().strip() + "\n")
        # The project's own stages (the kubelet's side of in-place resize).
        for path in sorted(KWOK_STAGES.glob("*.yaml")):
            parts.append(f"# from {path}\n" + path.read_text().strip() + "\n")
        conf = self.cfg.data_dir("kwok") / "kwok.yaml"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("---\n".join(parts))
        return conf

    def _ready(self, comp: str) -> None:
        cfg = self.cfg
        died = self.procs.died(comp)
        if comp == "etcd":
            wait_until(
                "etcd /health",
                lambda: http_ok(cfg.url("etcd") + "/health", expect=b'"health":"true"'),
                30,
                alive=died,
            )
        elif comp == "kube-apiserver":
            ctx = admin_context(cfg)
            wait_until(
                "kube-apiserver /readyz",
                lambda: http_ok(cfg.apiserver_url + "/readyz", ctx),
                120,
                alive=died,
            )
        elif comp in ("kube-controller-manager", "kube-scheduler", "kwok"):
            url = cfg.url(comp) + "/healthz"
            ctx = insecure_context()
            wait_until(f"{comp} /healthz", lambda: http_ok(url, ctx), 60, alive=died)
        elif comp == "metrics-server":
            url = cfg.url(comp) + "/livez"
            ctx = insecure_context()
            wait_until("metrics-server /livez", lambda: http_ok(url, ctx), 60, alive=died)
        elif comp in ("prometheus", "prometheus-scrape", "prometheus3"):
            url = cfg.url(comp) + "/-/ready"
            wait_until(f"{comp} /-/ready", lambda: http_ok(url), 60, alive=died)
        elif comp == "kube-state-metrics":
            url = cfg.url(comp) + "/healthz"
            wait_until("kube-state-metrics /healthz", lambda: http_ok(url), 60, alive=died)
        elif comp == "victoriametrics":
            url = cfg.url(comp) + "/health"
            wait_until("victoriametrics /health", lambda: http_ok(url), 60, alive=died)
        else:
            raise ValueError(comp)

    def _post_start(self, comp: str) -> None:
        """Objects a component needs in the API, and waits on what depends on them."""
        if comp == "kube-controller-manager":
            kube = KubeRest(self.cfg)
            # Pods can only be admitted once the default ServiceAccount exists.
            wait_until(
                "ServiceAccount default/default",
                lambda: kube.exists("/api/v1/namespaces/default/serviceaccounts/default"),
                60,
                alive=self.procs.died(comp),
            )
        elif comp == "kwok":
            self._ensure_node()
        elif comp == "metrics-server":
            self._ensure_apiservice()

    def _ensure_node(self) -> None:
        kube = KubeRest(self.cfg)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {
                    "kwok.x-k8s.io/node": "fake",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "metrics.k8s.io/resource-metrics-path": (
                        f"/metrics/nodes/{NODE_NAME}/metrics/resource"
                    ),
                },
                "labels": {
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/role": "agent",
                    "node-role.kubernetes.io/agent": "",
                    "type": "kwok",
                },
            },
            "spec": {},
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
            },
        }
        if not kube.exists(f"/api/v1/nodes/{NODE_NAME}"):
            kube.apply("/api/v1/nodes", node)

        def node_ready() -> bool:
            conds = kube.get(f"/api/v1/nodes/{NODE_NAME}").get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        wait_until(f"node {NODE_NAME} Ready", node_ready, 60, alive=self.procs.died("kwok"))

    def _ensure_apiservice(self) -> None:
        cfg = self.cfg
        kube = KubeRest(cfg)
        port = cfg.port("metrics-server")
        kube.apply(
            "/api/v1/namespaces/kube-system/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "metrics-server",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "metrics-server"},
                },
                # No kube-proxy here: the aggregator resolves an ExternalName
                # Service to externalName:port, i.e. the local metrics-server.
                "spec": {
                    "type": "ExternalName",
                    "externalName": cfg.host,
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                },
            },
        )
        ca = base64.b64encode((cfg.pki / "ca.crt").read_bytes()).decode()
        kube.apply(
            "/apis/apiregistration.k8s.io/v1/apiservices",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {
                    "name": "v1beta1.metrics.k8s.io",
                    "labels": {"k8s-app": "metrics-server"},
                },
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"namespace": "kube-system", "name": "metrics-server", "port": port},
                    "caBundle": ca,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        )

        def available() -> bool:
            svc = kube.get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
            conds = svc.get("status", {}).get("conditions", [])
            return any(c["type"] == "Available" and c["status"] == "True" for c in conds)

        wait_until(
            "APIService v1beta1.metrics.k8s.io Available",
            available,
            90,
            alive=self.procs.died("metrics-server"),
        )
