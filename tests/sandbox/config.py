"""Where the sandbox's binaries, state and ports are.

Every value has a default and an environment variable that overrides it.
The component versions must match the defaults of
``scripts/build-components.sh`` (a test checks that they do).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

K8S_VERSION = os.environ.get("RIGHTSIZER_K8S_VERSION", "v1.36.3")
ETCD_VERSION = os.environ.get("RIGHTSIZER_ETCD_VERSION", "v3.6.16")
KWOK_VERSION = os.environ.get("RIGHTSIZER_KWOK_VERSION", "v0.8.0")
METRICS_SERVER_VERSION = os.environ.get("RIGHTSIZER_METRICS_SERVER_VERSION", "v0.9.0")
HELM_VERSION = os.environ.get("RIGHTSIZER_HELM_VERSION", "v3.22.0")
KSM_VERSION = os.environ.get("RIGHTSIZER_KSM_VERSION", "v2.18.0")
PROMETHEUS3_VERSION = os.environ.get("RIGHTSIZER_PROMETHEUS3_VERSION", "v3.16.0")
VICTORIAMETRICS_VERSION = os.environ.get("RIGHTSIZER_VICTORIAMETRICS_VERSION", "v1.151.0")

BUILD_HINT = "bash scripts/build-components.sh"

# name -> (environment variable, default port). All listen on 127.0.0.1.
DEFAULT_PORTS: dict[str, tuple[str, int]] = {
    "etcd": ("RIGHTSIZER_SANDBOX_ETCD_PORT", 23790),
    "etcd-peer": ("RIGHTSIZER_SANDBOX_ETCD_PEER_PORT", 23800),
    "kube-apiserver": ("RIGHTSIZER_SANDBOX_APISERVER_PORT", 26443),
    "kube-controller-manager": ("RIGHTSIZER_SANDBOX_CONTROLLER_MANAGER_PORT", 20257),
    "kube-scheduler": ("RIGHTSIZER_SANDBOX_SCHEDULER_PORT", 20259),
    "kwok": ("RIGHTSIZER_SANDBOX_KWOK_PORT", 20250),
    "metrics-server": ("RIGHTSIZER_SANDBOX_METRICS_SERVER_PORT", 24443),
    "prometheus": ("RIGHTSIZER_SANDBOX_PROMETHEUS_PORT", 29090),
    # The live scrape set (group "scrape"): kube-state-metrics (its metrics and its own
    # telemetry port) and a second Prometheus that scrapes it and kwok's kubelet endpoints.
    "kube-state-metrics": ("RIGHTSIZER_SANDBOX_KSM_PORT", 28080),
    "kube-state-metrics-telemetry": ("RIGHTSIZER_SANDBOX_KSM_TELEMETRY_PORT", 28081),
    "prometheus-scrape": ("RIGHTSIZER_SANDBOX_PROMETHEUS_SCRAPE_PORT", 28092),
    # The other history stores the history tests run against (docs/backends.md).
    "prometheus3": ("RIGHTSIZER_SANDBOX_PROMETHEUS3_PORT", 28090),
    "victoriametrics": ("RIGHTSIZER_SANDBOX_VICTORIAMETRICS_PORT", 28428),
}

#: Components that serve plain HTTP (the rest serve HTTPS with the sandbox's CA).
PLAIN_HTTP = frozenset(
    {
        "etcd",
        "prometheus",
        "prometheus3",
        "victoriametrics",
        "prometheus-scrape",
        "kube-state-metrics",
    }
)

HOST = "127.0.0.1"
NODE_NAME = "kwok-node-0"


class MissingBinaryError(RuntimeError):
    """A component binary is not installed; the message says how to build it."""


def _cache_root() -> Path:
    env = os.environ.get("RIGHTSIZER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "rightsizer"


def _state_root() -> Path:
    return Path(os.environ.get("RIGHTSIZER_SANDBOX_DIR", "/tmp/rightsizer-sandbox"))


def _ports() -> dict[str, int]:
    ports: dict[str, int] = {}
    for name, (var, default) in DEFAULT_PORTS.items():
        raw = os.environ.get(var)
        ports[name] = int(raw) if raw else default
    return ports


@dataclass(frozen=True)
class Config:
    """Paths and ports of one sandbox."""

    cache: Path = field(default_factory=_cache_root)
    state: Path = field(default_factory=_state_root)
    ports: dict[str, int] = field(default_factory=_ports)
    host: str = HOST
    victoriametrics_flags: tuple[str, ...] = ()
    """Extra flags for VictoriaMetrics (e.g. a stricter ``-search.*`` limit in a test)."""

    # ---------------------------------------------------------------- binaries
    @property
    def k8s_bin(self) -> Path:
        return self.cache / f"k8s-{K8S_VERSION}" / "bin"

    @property
    def kwok_share(self) -> Path:
        return self.cache / f"kwok-{KWOK_VERSION}" / "share"

    def binary(self, name: str) -> Path:
        """Path of a component binary; raise MissingBinaryError if it is not there."""
        path: Path | None
        if name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
            path = self.k8s_bin / name
        elif name == "etcd":
            path = self.cache / f"etcd-{ETCD_VERSION}" / "bin" / "etcd"
        elif name == "kwok":
            path = self.cache / f"kwok-{KWOK_VERSION}" / "bin" / "kwok"
        elif name == "metrics-server":
            path = (
                self.cache / f"metrics-server-{METRICS_SERVER_VERSION}" / "bin" / "metrics-server"
            )
        elif name == "helm":
            path = self.cache / f"helm-{HELM_VERSION}" / "bin" / "helm"
        elif name == "kube-state-metrics":
            path = self.cache / f"kube-state-metrics-{KSM_VERSION}" / "bin" / "kube-state-metrics"
        elif name in ("prometheus3", "promtool3"):
            path = self.cache / f"prometheus-{PROMETHEUS3_VERSION}" / "bin" / name[:-1]
        elif name == "victoria-metrics":
            path = (
                self.cache
                / f"victoriametrics-{VICTORIAMETRICS_VERSION}"
                / "bin"
                / "victoria-metrics"
            )
        elif name in ("prometheus", "promtool"):
            override = os.environ.get(f"RIGHTSIZER_{name.upper()}")
            found = override or shutil.which(name)
            path = Path(found) if found else None
            if path is None or not os.access(path, os.X_OK):
                raise MissingBinaryError(
                    f"{name} is not installed (Debian package 'prometheus'): run `{BUILD_HINT}`"
                )
            return path
        else:
            raise KeyError(name)
        if not os.access(path, os.X_OK):
            raise MissingBinaryError(f"{name} not found at {path}: run `{BUILD_HINT}` first")
        return path

    # ---------------------------------------------------------------- state
    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def data_dir(self, component: str) -> Path:
        return self.state / "data" / component

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def port(self, name: str) -> int:
        return self.ports[name]

    def url(self, name: str) -> str:
        scheme = "http" if name in PLAIN_HTTP else "https"
        return f"{scheme}://{self.host}:{self.port(name)}"

    @property
    def apiserver_url(self) -> str:
        return self.url("kube-apiserver")

    @property
    def prometheus_url(self) -> str:
        return self.url("prometheus")
