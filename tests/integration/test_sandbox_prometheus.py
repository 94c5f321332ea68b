"""The sandbox Prometheus is real: it answers PromQL and serves history loaded with promtool."""

from __future__ import annotations

import math
import time
import uuid

import pytest
import requests

from tests.sandbox import Prometheus
from tests.sandbox.prometheus import check_openmetrics

pytestmark = pytest.mark.prometheus


def quantile(phi: float, values: list[float]) -> float:
    """PromQL's quantile_over_time: linear interpolation between closest ranks."""
    ordered = sorted(values)
    rank = phi * (len(ordered) - 1)
    lower = math.floor(rank)
    upper = min(lower + 1, len(ordered) - 1)
    weight = rank - lower
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def test_empty_prometheus_answers(prometheus: Prometheus) -> None:
    resp = requests.get(
        f"{prometheus.url}/api/v1/query", params={"query": "vector(42)"}, timeout=10
    )
    resp.raise_for_status()
    body = resp.json()
    assert body["status"] == "success"
    assert float(body["data"]["result"][0]["value"][1]) == 42.0
    # Nothing is scraped: no targets, no `up` series.
    targets = requests.get(f"{prometheus.url}/api/v1/targets", timeout=10).json()["data"]
    assert targets["activeTargets"] == []
    assert prometheus.query("up") == []
    flags = requests.get(f"{prometheus.url}/api/v1/status/flags", timeout=10).json()["data"]
    assert flags["storage.tsdb.retention.time"] == "400d"
    assert flags["web.listen-address"].startswith("127.0.0.1:")


def test_openmetrics_history_is_queryable(prometheus: Prometheus) -> None:
    run = uuid.uuid4().hex[:8]
    now = int(time.time())
    step = 60
    n = 180  # three hours of history ending now
    start = now - (n - 1) * step
    # A gauge with a known shape and a counter with a known rate.
    gauge = [100.0 + 50.0 * math.sin(i / 10.0) + (i % 7) for i in range(n)]
    rate_per_s = 0.25
    lines = [
        "# HELP sandbox_test_gauge_bytes A test gauge.",
        "# TYPE sandbox_test_gauge_bytes gauge",
    ]
    for i, v in enumerate(gauge):
        lines.append(f'sandbox_test_gauge_bytes{{run="{run}",pod="p-0"}} {v} {start + i * step}')
    lines += [
        "# HELP sandbox_test_cpu_seconds A test counter.",
        "# TYPE sandbox_test_cpu_seconds counter",
    ]
    counter = f'sandbox_test_cpu_seconds_total{{run="{run}",pod="p-0"}}'
    for i in range(n):
        lines.append(f"{counter} {rate_per_s * i * step} {start + i * step}")
    lines.append("# EOF")

    blocks = prometheus.load_openmetrics("\n".join(lines) + "\n", max_block_duration="24h")
    assert blocks, "promtool created no block"

    sel = f'{{run="{run}",pod="p-0"}}'
    window = f"[{n * step}s]"
    # Instant queries see the last 5 minutes: the history ends now.
    assert prometheus.value(f"sandbox_test_gauge_bytes{sel}") == pytest.approx(gauge[-1])
    assert prometheus.value(f"count_over_time(sandbox_test_gauge_bytes{sel}{window})") == n
    assert prometheus.value(
        f"max_over_time(sandbox_test_gauge_bytes{sel}{window})"
    ) == pytest.approx(max(gauge))
    assert prometheus.value(
        f"min_over_time(sandbox_test_gauge_bytes{sel}{window})"
    ) == pytest.approx(min(gauge))
    assert prometheus.value(
        f"quantile_over_time(0.9, sandbox_test_gauge_bytes{sel}{window})"
    ) == pytest.approx(quantile(0.9, gauge))
    assert prometheus.value(f"rate(sandbox_test_cpu_seconds_total{sel}[10m])") == pytest.approx(
        rate_per_s
    )
    # A subquery over the CPU rate, as the recommender will run it.
    assert prometheus.value(
        f"max_over_time(rate(sandbox_test_cpu_seconds_total{sel}[5m])[2h:1m])"
    ) == pytest.approx(rate_per_s)

    # A range query in the middle of the history returns the loaded values.
    t = start + 60 * step
    series = prometheus.query_range(f"sandbox_test_gauge_bytes{sel}", t, t + 10 * step, step)
    assert [float(v) for _, v in series[0]["values"]] == pytest.approx(gauge[60:71])


def test_openmetrics_without_eof_is_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.om"
    path.write_text("# TYPE x gauge\nx 1 1700000000\n")
    with pytest.raises(ValueError, match="# EOF"):
        check_openmetrics(path)
