"""Samples → OpenMetrics → promtool → a real Prometheus: PromQL answers match the file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rightsizer.sources.samples_file import read_samples
from tests.integration.conftest import EXAMPLE
from tests.sandbox import HistoryStore

pytestmark = pytest.mark.prometheus


def promql_quantile(phi: float, values: np.ndarray) -> float:
    """PromQL's quantile_over_time: linear interpolation between closest ranks."""
    ordered = np.sort(values)
    rank = phi * (len(ordered) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] * (1 - (rank - lo)) + ordered[hi] * (rank - lo))


@pytest.fixture
def loaded(store_history: float) -> float:
    return store_history


def selector(pod: str, container: str) -> str:
    return f'{{namespace="shop",pod="{pod}",container="{container}"}}'


@pytest.mark.parametrize(("pod", "container"), [("web-0", "app"), ("db-0", "postgres")])
def test_memory_max_and_quantile_match_the_file(
    history_store: HistoryStore, loaded: float, pod: str, container: str
) -> None:
    frame = read_samples(EXAMPLE)
    mine = frame[(frame["pod"] == pod) & (frame["container"] == container)]
    memory = mine["memory"].to_numpy()
    sel = selector(pod, container)
    got_max = history_store.value(
        f"max_over_time(container_memory_working_set_bytes{sel}[3d])", loaded
    )
    assert got_max == memory.max()
    got_q = history_store.value(
        f"quantile_over_time(0.9, container_memory_working_set_bytes{sel}[3d])", loaded
    )
    assert got_q == pytest.approx(promql_quantile(0.9, memory), rel=1e-9)


@pytest.mark.parametrize(("pod", "container"), [("web-1", "istio-proxy"), ("worker-0", "worker")])
def test_cpu_rate_quantile_matches_the_file(
    history_store: HistoryStore, loaded: float, pod: str, container: str
) -> None:
    """The counter integrates the sampled rates from 0 one interval before the first
    sample: irate over it gives every sample back."""
    frame = read_samples(EXAMPLE)
    mine = frame[(frame["pod"] == pod) & (frame["container"] == container)]
    cpu = mine.sort_values("timestamp")["cpu"].to_numpy()
    sel = selector(pod, container).replace('"shop"', f'"{mine["namespace"].iloc[0]}"')
    rate = f"irate(container_cpu_usage_seconds_total{sel}[6m])"
    got_max = history_store.value(f"max_over_time({rate}[2d:5m])", loaded)
    assert got_max == pytest.approx(cpu.max(), rel=1e-6)
    got_q = history_store.value(f"quantile_over_time(0.95, {rate}[2d:5m])", loaded)
    assert got_q == pytest.approx(promql_quantile(0.95, cpu), rel=1e-6)


def test_kube_state_metrics_series(history_store: HistoryStore, loaded: float) -> None:
    sel = selector("web-0", "app")[:-1] + ',resource="cpu"}'
    assert history_store.value(f"kube_pod_container_resource_requests{sel}", loaded) == 0.5
    assert history_store.value(f"kube_pod_container_resource_limits{sel}", loaded) == 1.0
    owners = history_store.query('kube_pod_owner{namespace="shop",pod="web-0"}', loaded)
    assert owners[0]["metric"]["owner_kind"] == "ReplicaSet"
    rs = owners[0]["metric"]["owner_name"]
    deploy = history_store.query(
        f'kube_replicaset_owner{{namespace="shop",replicaset="{rs}"}}', loaded
    )
    assert deploy[0]["metric"]["owner_name"] == "web"
    sts = history_store.query('kube_pod_owner{namespace="shop",pod="db-0"}', loaded)
    assert sts[0]["metric"]["owner_kind"] == "StatefulSet"
