"""The operator's own Prometheus metrics, and where they are served.

The endpoint listens on RIGHTSIZER_METRICS_ADDRESS:RIGHTSIZER_METRICS_PORT; the address
defaults to loopback, so an operator started on a workstation exposes nothing. The
Deployment (manifests/deployment.yaml) sets 0.0.0.0 explicitly: in a pod that is the
pod's own network namespace (the pod IP and loopback), which Prometheus must reach.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

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


class PolicySeries:
    """``rightsizer_recommendation``, ``rightsizer_current_request`` and
    ``rightsizer_workload_replicas``, built at each scrape from the rows each policy last
    published (held by reference: the policy's runtime keeps the same rows).

    A ``Gauge`` with labels keeps one child object per series — with its lock, label
    tuple and value, ≈ 0.8 KiB — and the operator publishes nine series per container:
    ≈ 7 KiB per container, 70 MiB at 10,000 (``bench/bench_operator_memory.py``). Built
    at scrape time the series cost nothing between scrapes; the exposition is the same.
    """

    FAMILIES: ClassVar[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
        ("rightsizer_recommendation",
         "Recommended value in base units (cores, bytes) per container, resource and bound.",
         ("namespace", "policy", "workload", "container", "resource", "bound")),
        ("rightsizer_current_request",
         "The container's current request in base units (cores, bytes), beside its "
         "recommendation.",
         ("namespace", "policy", "workload", "container", "resource")),
        ("rightsizer_workload_replicas",
         "Replicas of a workload with recommendations (multiplies per-container changes).",
         ("namespace", "policy", "workload")),
    )  # fmt: skip

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[Assessment, ...]] = {}
        self._lock = threading.Lock()

    def publish(self, namespace: str, policy: str, rows: Sequence[Assessment]) -> None:
        with self._lock:
            self._rows[(namespace, policy)] = tuple(rows)

    def forget(self, namespace: str, policy: str) -> None:
        with self._lock:
            self._rows.pop((namespace, policy), None)

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc, labels=labels) for name, doc, labels in
                self.FAMILIES]  # fmt: skip

    def collect(self) -> list[GaugeMetricFamily]:
        with self._lock:
            published = list(self._rows.items())
        families = self.describe()
        for (namespace, policy), rows in published:
            for family, series in zip(families, series_of(namespace, policy, rows), strict=True):
                for labels, value in series.items():
                    family.add_metric(labels, value)
        return families


def series_of(
    namespace: str, policy: str, rows: Sequence[Assessment]
) -> tuple[dict[tuple[str, ...], float], ...]:
    """The recommendation, current-request and replica series of a policy's rows (pure):
    containers with enough data only; a later row with the same labels wins."""
    recommendation: dict[tuple[str, ...], float] = {}
    current: dict[tuple[str, ...], float] = {}
    replicas: dict[tuple[str, ...], float] = {}
    for row in rows:
        if not row.enough_data:
            continue
        r = row.recommendation
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
                if value is not None:
                    labels = (namespace, policy, r.workload, r.container, resource, bound)
                    recommendation[labels] = value / scale
    return recommendation, current, replicas


SERIES = PolicySeries()
REGISTRY.register(SERIES)


def publish(namespace: str, policy: str, rows: Sequence[Assessment]) -> None:
    """Replace the policy's recommendation series with the current ones."""
    states = dict.fromkeys(CONTAINER_STATES, 0)
    for row in rows:
        if not row.enough_data:
            SKIPS.labels("insufficient_data").inc()
            states["insufficient_data"] += 1
        else:
            states[row.severity.value] += 1
    SERIES.publish(namespace, policy, rows)
    for state, count in states.items():
        CONTAINERS.labels(namespace, policy, state).set(count)


def forget(namespace: str, policy: str) -> None:
    SERIES.forget(namespace, policy)
    for state in CONTAINER_STATES:
        with contextlib.suppress(KeyError):
            CONTAINERS.remove(namespace, policy, state)
    with contextlib.suppress(KeyError):
        RECONCILES.remove(namespace, policy)
