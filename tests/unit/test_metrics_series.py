"""The per-policy series the dashboard draws (controller/observability.py): current
requests beside the recommendation, replicas, containers by state; replaced on every
publish and removed with the policy."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from rightsizer.controller import observability as obs
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.model.assessment import Assessment, Severity

NS, POLICY = "metrics-ns", "metrics-policy"


def row(container: str, cpu_m: int, mem: int, *, enough: bool = True) -> Assessment:
    target = Resources(cpu_m // 2, mem // 2)
    rec = ContainerRecommendation(
        namespace=NS, workload="Deployment/web", container=container, target=target,
        lower_bound=target, upper_bound=target, uncapped_target=target, limits=Resources(),
        cpu_samples=100, memory_samples=100, confidence=1.0,
        current_requests=Resources(cpu_m, mem), current_limits=Resources(),
        peak_memory_bytes=0.0, oom_kills=0,
    )  # fmt: skip
    severity = Severity.WARNING if enough else Severity.OK
    return Assessment(rec, 3, enough, "" if enough else "too little", severity, severity)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, "policy": POLICY, **labels})


def test_current_requests_replicas_and_states_follow_the_latest_publish() -> None:
    obs.publish(NS, POLICY, [row("app", 500, 512 * 2**20), row("side", 100, 2**20, enough=False)])
    labels = {"workload": "Deployment/web", "container": "app"}
    assert sample("rightsizer_current_request", **labels, resource="cpu") == 0.5
    assert sample("rightsizer_current_request", **labels, resource="memory") == 512 * 2**20
    assert sample("rightsizer_recommendation", **labels, resource="cpu", bound="target") == 0.25
    assert sample("rightsizer_workload_replicas", workload="Deployment/web") == 3
    assert sample("rightsizer_containers", state="warning") == 1
    assert sample("rightsizer_containers", state="insufficient_data") == 1
    assert sample("rightsizer_containers", state="ok") == 0
    # The container without enough data has no current-request series.
    side = {"workload": "Deployment/web", "container": "side"}
    assert sample("rightsizer_current_request", **side, resource="cpu") is None

    # A later publish without the container drops its series.
    obs.publish(NS, POLICY, [])
    assert sample("rightsizer_current_request", **labels, resource="cpu") is None
    assert sample("rightsizer_workload_replicas", workload="Deployment/web") is None
    assert sample("rightsizer_containers", state="warning") == 0

    obs.publish(NS, POLICY, [row("app", 500, 512 * 2**20)])
    obs.forget(NS, POLICY)
    assert sample("rightsizer_current_request", **labels, resource="cpu") is None
    assert sample("rightsizer_containers", state="warning") is None


class _Client:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Reader:
    def __init__(self) -> None:
        self.client = _Client()


def test_source_reads_are_observed_when_done_failed_or_not() -> None:
    def count(source: str) -> float:
        value = REGISTRY.get_sample_value(
            "rightsizer_source_read_duration_seconds_count", {"source": source}
        )
        return value or 0.0

    before = count("unit-reader")
    reader = obs.timed_reader("unit-reader", _Reader())
    assert count("unit-reader") == before  # nothing until the read is over
    reader.client.close()
    assert reader.client.closed and count("unit-reader") == before + 1

    assert obs.timed("unit-poll", lambda: 42) == 42

    def failing() -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        obs.timed("unit-poll", failing)
    assert count("unit-poll") == 2


def test_recommendation_series_are_exposed_as_gauges_built_at_scrape_time() -> None:
    """The series come from the rows held by reference (no child object per series), in
    the exposition format a labelled Gauge had: HELP, TYPE gauge, one line per series."""
    from prometheus_client import generate_latest

    obs.publish(NS, POLICY, [row("app", 500, 512 * 2**20)])
    try:
        text = generate_latest(REGISTRY).decode()
        assert "# TYPE rightsizer_recommendation gauge" in text
        assert "# HELP rightsizer_current_request " in text
        assert (
            'rightsizer_recommendation{bound="target",container="app",namespace="metrics-ns",'
            'policy="metrics-policy",resource="cpu",workload="Deployment/web"} 0.25'
        ) in text or (
            'rightsizer_recommendation{namespace="metrics-ns",policy="metrics-policy",'
            'workload="Deployment/web",container="app",resource="cpu",bound="target"} 0.25'
        ) in text
        assert (
            'rightsizer_workload_replicas{namespace="metrics-ns",policy="metrics-policy",'
            'workload="Deployment/web"} 3.0'
        ) in text
        # Six bounds×resources, two current requests: nothing else for this container.
        heads = ("rightsizer_recommendation{", "rightsizer_current_request{")
        mine = [line for line in text.splitlines()
                if 'policy="metrics-policy"' in line and line.startswith(heads)]  # fmt: skip
        assert len(mine) == 8
    finally:
        obs.forget(NS, POLICY)
    assert 'policy="metrics-policy",workload=' not in generate_latest(REGISTRY).decode()
