"""Pure parts of the sources and the report: chunk plans, PromQL text, pod → workload,
PodMetrics conversion, severity and totals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.model.assessment import Severity, assess, change_severity, totals
from rightsizer.samples.workloads import WorkloadResolver, workload_from_pod_name
from rightsizer.sources import promql
from rightsizer.sources.metrics_server import pod_metrics_to_samples
from rightsizer.sources.prometheus import MAX_POINTS_PER_SERIES, store_of
from rightsizer.sources.prometheus_history import HistoryWindow, plan_bootstrap, plan_chunks


@given(
    st.floats(1.6e9, 1.7e9),
    st.floats(600, 30 * 86400),
    st.sampled_from([15.0, 30.0, 60.0, 300.0]),
    st.floats(60, 40 * 86400),
)
def test_chunks_cover_the_window_on_the_step_grid(
    start: float, length: float, step: float, chunk: float
) -> None:
    window = HistoryWindow(start, start + length, step, chunk_s=max(chunk, step))
    ranges = plan_chunks(window)
    assert ranges
    for a, b in ranges:
        assert a % step == 0
        assert b % step == 0
        assert (b - a) / step + 1 <= MAX_POINTS_PER_SERIES
        assert start <= a <= b <= start + length
    for (_, b), (a, _) in zip(ranges, ranges[1:], strict=False):
        assert a == b + step  # contiguous, no overlap
    assert ranges[0][0] - start < step
    assert start + length - ranges[-1][1] < step


def test_promql_escapes_and_excludes_pause_containers() -> None:
    q = promql.cpu_usage('we"ird', 120, 'cluster="eu"')
    assert 'namespace="we\\"ird"' in q
    assert 'container!="POD"' in q
    assert 'container!=""' in q
    assert 'cluster="eu"' in q
    assert "by (namespace, pod, container)" in q
    assert "[120000ms]" in q
    assert "[59999ms]" in promql.memory_usage("ns", 60)


def test_the_cpu_guard_keeps_only_windows_of_two_samples() -> None:
    """The form used on VictoriaMetrics (tested against the real stores in
    tests/integration/test_history_stores.py)."""
    plain = promql.cpu_usage("ns", 90)
    guarded = promql.cpu_usage("ns", 90, two_samples=True)
    assert "count_over_time" not in plain
    inner = plain.removeprefix("max by (namespace, pod, container) (").removesuffix(")")
    assert guarded == (
        f"max by (namespace, pod, container) ({inner} and "
        + inner.replace("irate(", "count_over_time(")
        + " > 1)"
    )


def test_the_store_is_told_by_its_answers() -> None:
    ok = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert store_of(ok) == "prometheus"
    assert store_of({**ok, "stats": {"seriesFetched": "0", "executionTimeMsec": 0}}) == (
        "victoriametrics"
    )
    assert store_of({**ok, "stats": {"timings": {}}}) == "prometheus"  # Prometheus' stats=all


@pytest.mark.parametrize(
    "matchers",
    ['cluster="a"', 'cluster="a",region=~"eu-.*"', 'env!="dev, test"', '"k8s.cluster.name"="eu"'],
)
def test_valid_label_matchers(matchers: str) -> None:
    assert promql.validate_matchers(matchers)


@pytest.mark.parametrize(
    "matchers", ["cluster=a", 'cluster="a"}) or vector(1', "{x}", '""="x"', '"a.b=x"']
)
def test_invalid_label_matchers(matchers: str) -> None:
    with pytest.raises(ValueError, match="not a label matcher"):
        promql.validate_matchers(matchers)


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("web-5d8f7c9b6-x2k4z", "Deployment/web"),
        ("my-api-v2-7c9d8b5f4d-bcdfg", "Deployment/my-api-v2"),
        ("postgres-0", "StatefulSet/postgres"),
        ("kafka-broker-12", "StatefulSet/kafka-broker"),
        ("node-exporter-x7k2p", "DaemonSet/node-exporter"),
        ("standalone", "Pod/standalone"),
    ],
)
def test_workload_from_pod_name(pod: str, workload: str) -> None:
    assert workload_from_pod_name(pod) == workload


def test_resolver_prefers_owner_data() -> None:
    r = WorkloadResolver(
        {("ns", "web-0"): ("ReplicaSet", "web-5d8f7c9b6"), ("ns", "db-x"): ("StatefulSet", "db")},
        {("ns", "web-5d8f7c9b6"): ("Deployment", "frontend")},
    )
    assert r.workload("ns", "web-0") == "Deployment/frontend"
    assert r.workload("ns", "db-x") == "StatefulSet/db"
    assert r.by_name == 0
    assert r.workload("ns", "cache-7") == "StatefulSet/cache"
    assert r.by_name == 1
    # a ReplicaSet whose Deployment is gone from the owner data: its name still says so
    r.pod_owners[("ns", "old-1")] = ("ReplicaSet", "old-7c9d8b5f4d")
    assert r.workload("ns", "old-1") == "Deployment/old"


def test_pod_metrics_to_samples() -> None:
    items = [
        {
            "metadata": {"namespace": "ns", "name": "web-5d8f7c9b6-x2k4z"},
            "timestamp": "2026-11-23T10:00:00Z",
            "window": "15s",
            "containers": [
                {"name": "app", "usage": {"cpu": "250000000n", "memory": "300Mi"}},
                {"name": "sidecar", "usage": {"cpu": "5m", "memory": "20Mi"}},
            ],
        }
    ]
    frame = pod_metrics_to_samples(items + items, WorkloadResolver())  # a duplicate poll
    assert len(frame) == 2
    app = frame[frame["container"] == "app"].iloc[0]
    assert app["cpu"] == pytest.approx(0.25)
    assert app["memory"] == 300 * 2**20
    assert app["workload"] == "Deployment/web"
    assert app["timestamp"] == 1795428000.0


@pytest.mark.parametrize(
    ("current", "target", "severity"),
    [
        (10, 600, Severity.CRITICAL),
        (1000, 200, Severity.CRITICAL),
        (1000, 1600, Severity.WARNING),
        (1000, 450, Severity.WARNING),
        (1000, 1150, Severity.INFO),
        (1000, 1050, Severity.OK),
        (None, 100, Severity.WARNING),
    ],
)
def test_severity_is_relative(current: int | None, target: int, severity: Severity) -> None:
    assert change_severity(current, target) == severity


def rec(cpu_now: int, cpu: int, mem_now: int, mem: int, span_s: float = 7 * 86400):
    r = Resources(cpu, mem)
    return ContainerRecommendation(
        "ns", "Deployment/w", "c", r, r, r, r, Resources(), 10_000, 10_000, 7.0,
        Resources(cpu_now, mem_now), Resources(), float(mem), 0, span_s,
    )  # fmt: skip


def test_totals_multiply_by_pods_and_skip_insufficient_data() -> None:
    recs = [rec(1000, 250, 2 * 2**30, 2**30), rec(100, 300, 2**30, 2**30, span_s=3600)]
    rows = assess(recs, {("ns", "Deployment/w"): 4}, min_history_s=86400, min_samples=60)
    assert [r.enough_data for r in rows] == [True, False]
    t = totals(rows)
    assert t.cpu_cores_freed == pytest.approx(3.0)
    assert t.cpu_cores_added == 0
    assert t.memory_gib_freed == pytest.approx(4.0)
    assert (t.containers, t.insufficient_data) == (1, 1)


@given(
    span_h=st.integers(min_value=1, max_value=24 * 30),
    full_h=st.integers(min_value=1, max_value=48),
    factor=st.integers(min_value=2, max_value=60),
    end_off=st.integers(min_value=0, max_value=3599),
)
def test_bootstrap_plan_is_contiguous_and_weighted(
    span_h: int, full_h: int, factor: int, end_off: int
) -> None:
    step = 60.0
    end = 1_800_000_000.0 + end_off
    start = end - span_h * 3600
    windows = plan_bootstrap(start, end, step, factor * step, full_h * 3600)
    points = [
        (t, w.sample_weight)
        for w in windows
        for a, b in plan_chunks(w)
        for t in np.arange(a, b + w.step_s / 2, w.step_s)
    ]
    times = np.array([t for t, _ in points])
    assert np.all(np.diff(times) > 0)  # in time order, no point read twice
    assert times[-1] > end - step and times[0] < start + factor * step
    # every point stands for the base steps since the previous point: no gap, no overlap
    gaps = np.diff(times)
    weights = np.array([w for _, w in points])[1:]
    assert np.allclose(gaps, weights * step)
    # as many points per query at either step: the coarse part needs fewer queries
    for w in windows:
        assert all(round((b - a) / w.step_s) + 1 <= 360 for a, b in plan_chunks(w))
    if len(windows) == 2:
        assert windows[1].start_s >= end - full_h * 3600 - factor * step
        assert windows[0].sample_weight == factor and windows[0].rate_window == 1.5 * step
        assert windows[0].chunk_s == factor * windows[1].chunk_s
    else:
        assert windows[0].step_s == step and span_h * 3600 <= (full_h + factor / 60) * 3600


def test_bootstrap_plan_without_a_coarser_step_reads_everything_at_step() -> None:
    (window,) = plan_bootstrap(0.0, 7 * 86400.0, 60.0, 60.0, 86400.0)
    assert window == HistoryWindow(0.0, 7 * 86400.0, 60.0)
