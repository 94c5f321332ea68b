"""A local sandbox of real components for integration tests (stdlib only).

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake
nodes, emulated kubelet resource metrics), metrics-server and Prometheus run
as plain processes on 127.0.0.1; so do, on request, the other history stores
(Prometheus 3, VictoriaMetrics). Binaries come from
``scripts/build-components.sh``; ``python3 -m tests.sandbox up`` starts them.
See docs/sandbox.md.
"""

from .cluster import (
    COMPONENTS,
    GROUPS,
    HISTORY_STORES,
    KubeAccess,
    Sandbox,
    StartReport,
    resolve,
)
from .config import Config, MissingBinaryError
from .http import NotReadyError, free_port
from .operator import OperatorExitedError, OperatorProcess
from .prometheus import HistoryStore, Prometheus, PrometheusError, VictoriaMetrics, store

__all__ = [
    "COMPONENTS",
    "GROUPS",
    "HISTORY_STORES",
    "Config",
    "HistoryStore",
    "KubeAccess",
    "MissingBinaryError",
    "NotReadyError",
    "OperatorExitedError",
    "OperatorProcess",
    "Prometheus",
    "PrometheusError",
    "Sandbox",
    "StartReport",
    "VictoriaMetrics",
    "free_port",
    "resolve",
    "store",
]
