"""The operator's own Prometheus metrics, and where they are served.

The endpoint listens on RIGHTSIZER_METRICS_ADDRESS:RIGHTSIZER_METRICS_PORT; the address
defaults to loopback, so an operator started on a workstation exposes nothing. The
Deployment (manifests/deployment.yaml) sets 0.0.0.0 explicitly: in a pod that is the
pod's own network namespace (the pod IP and loopback), which Prometheus must reach.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from rightsizer.model.assessment import Assessment

ADDRESS_VARIABLE = "RIGHTSIZER_METRICS_ADDRESS"
PORT_VARIABLE = "RIGHTSIZER_METRICS_PORT"
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8080


class EndpointError(ValueError):
    """The metrics endpoint's settings are unusable."""


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where the metrics HTTP server listens."""

    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def metrics_endpoint(env: Mapping[str, str]) -> MetricsEndpoint | None:
    """The endpoint the environment asks for; None when the port is 0 (no endpoint)."""
    raw_port = env.get(PORT_VARIABLE, "").strip() or str(DEFAULT_PORT)
    try:
        port = int(raw_port)
    except ValueError:
        raise EndpointError(f"{PORT_VARIABLE}={raw_port!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise EndpointError(f"{PORT_VARIABLE}={port} is outside 0–65535")
    if port == 0:
        return None
    address = env.get(ADDRESS_VARIABLE, "").strip() or DEFAULT_ADDRESS
    return MetricsEndpoint(address, port)


RECOMMENDATION = Gauge(
    "rightsizer_recommendation",
    "Recommended value in base units (cores, bytes) per container, resource and bound.",
    ["namespace", "policy", "workload", "container", "resource", "bound"],
)
RECONCILE_SECONDS = Histogram(
    "rightsizer_reconcile_duration_seconds", "Time one policy reconcile took.", ["namespace"]
)
RECONCILES = Counter(
    "rightsizer_reconciles_total",
    "Reconciles of a policy (its status's lastReconcileTime is only a coarse heartbeat).",
    ["namespace", "policy"],
)
SOURCE_SECONDS = Histogram(
    "rightsizer_source_read_duration_seconds", "Time reading usage took.", ["source"]
)
SOURCE_ERRORS = Counter(
    "rightsizer_source_errors_total", "Failed reads of a usage source.", ["source"]
)
CURRENT_REQUEST = Gauge(
    "rightsizer_current_request",
    "The container's current request in base units (cores, bytes), beside its recommendation.",
    ["namespace", "policy", "workload", "container", "resource"],
)
REPLICAS = Gauge(
    "rightsizer_workload_replicas",
    "Replicas of a workload with recommendations (multiplies per-container changes).",
    ["namespace", "policy", "workload"],
)
CONTAINERS = Gauge(
    "rightsizer_containers",
    "Containers of a policy by state: the change's severity (ok, info, warning, critical) "
    "or insufficient_data.",
    ["namespace", "policy", "state"],
)
CONTAINER_STATES = ("ok", "info", "warning", "critical", "insufficient_data")
SKIPS = Counter("rightsizer_skips_total", "Containers or writes held back, by reason.", ["reason"])
WRITES = Counter("rightsizer_workload_writes_total", "Writes to workloads, by kind.", ["kind"])
RECOMMENDATION_WRITES = Counter(
    "rightsizer_recommendation_writes_total",
    "Writes to RightSizeRecommendation objects the API server accepted, by action.",
    ["action"],
)
RECOMMENDATION_REJECTIONS = Counter(
    "rightsizer_recommendation_write_rejections_total",
    "Writes to RightSizeRecommendation objects the API server answered 429 (slowed, retried).",
)

T = TypeVar("T")


class _Reader(Protocol):
    @property
    def client(self) -> Any: ...


R = TypeVar("R", bound=_Reader)


def timed(source: str, read: Callable[[], T]) -> T:
    """Run one read of ``source`` and observe how long it took (failed reads too)."""
    start = time.monotonic()
    try:
        return read()
    finally:
        SOURCE_SECONDS.labels(source).observe(time.monotonic() - start)


def timed_reader(source: str, reader: R) -> R:
    """Observe how long a history reader stays open, from here until its client is
    closed: the reconcile opens it, reads every chunk (or only checks), then closes it."""
    client = reader.client
    close = client.close
    start = time.monotonic()

    def closed() -> None:
        try:
            close()
        finally:
            SOURCE_SECONDS.labels(source).observe(time.monotonic() - start)

    setattr(client, "close", closed)  # noqa: B010 (an instance's method, replaced)
    return reader


_series: dict[tuple[str, str], set[tuple[str, ...]]] = {}
_current: dict[tuple[str, str], set[tuple[str, ...]]] = {}
_replicas: dict[tuple[str, str], set[tuple[str, ...]]] = {}


def _replace(
    gauge: Gauge, held: dict[tuple[str, str], set[tuple[str, ...]]], key: tuple[str, str],
    fresh: dict[tuple[str, ...], float],
) -> None:  # fmt: skip
    for labels, value in fresh.items():
        gauge.labels(*labels).set(value)
    for stale in held.get(key, set()) - set(fresh):
        gauge.remove(*stale)
    held[key] = set(fresh)


def publish(namespace: str, policy: str, rows: Sequence[Assessment]) -> None:
    """Replace the policy's recommendation series with the current ones."""
    fresh: set[tuple[str, ...]] = set()
    current: dict[tuple[str, ...], float] = {}
    replicas: dict[tuple[str, ...], float] = {}
    states = dict.fromkeys(CONTAINER_STATES, 0)
    for row in rows:
        r = row.recommendation
        if not row.enough_data:
            SKIPS.labels("insufficient_data").inc()
            states["insufficient_data"] += 1
            continue
        states[row.severity.value] += 1
        replicas[(namespace, policy, r.workload)] = float(row.replicas)
        now = r.current_requests
        for resource, value, scale in (("cpu", now.cpu_millicores, 1000.0),
                                       ("memory", now.memory_bytes, 1.0)):  # fmt: skip
            if value is not None:
                current[(namespace, policy, r.workload, r.container, resource)] = value / scale
        for bound, res in (("target", r.target), ("lower", r.lower_bound),
                           ("upper", r.upper_bound)):  # fmt: skip
            for resource, value, scale in (("cpu", res.cpu_millicores, 1000.0),
                                           ("memory", res.memory_bytes, 1.0)):  # fmt: skip
                if value is None:
                    continue
                labels = (namespace, policy, r.workload, r.container, resource, bound)
                RECOMMENDATION.labels(*labels).set(value / scale)
                fresh.add(labels)
    for stale in _series.get((namespace, policy), set()) - fresh:
        RECOMMENDATION.remove(*stale)
    _series[(namespace, policy)] = fresh
    _replace(CURRENT_REQUEST, _current, (namespace, policy), current)
    _replace(REPLICAS, _replicas, (namespace, policy), replicas)
    for state, count in states.items():
        CONTAINERS.labels(namespace, policy, state).set(count)


def forget(namespace: str, policy: str) -> None:
    for labels in _series.pop((namespace, policy), set()):
        RECOMMENDATION.remove(*labels)
    for gauge, held in ((CURRENT_REQUEST, _current), (REPLICAS, _replicas)):
        for labels in held.pop((namespace, policy), set()):
            gauge.remove(*labels)
    for state in CONTAINER_STATES:
        with contextlib.suppress(KeyError):
            CONTAINERS.remove(namespace, policy, state)
    with contextlib.suppress(KeyError):
        RECONCILES.remove(namespace, policy)
