"""Forgetting gone pods and containers: state stays bounded, recommendations do not move."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rightsizer.dev.churn import DAY_S, MIB, Churn
from rightsizer.engine.aggregation import UsageAggregates
from rightsizer.engine.recommendation import ContainerRecommendation
from rightsizer.engine.retention import LastSeen, Present, RetentionSettings, collect_garbage
from rightsizer.engine.strategies import SizingContext, build_strategy
from rightsizer.engine.usage import ContainerRegistry, UsageChunk

START = 1_800_000_000.0
HOUR = 3600.0
CHURN = Churn(replicas=3, job_every_s=1800.0, step_s=300.0)
TEMPLATES = {(CHURN.namespace, CHURN.deployment_ref, "app")}


def _run(
    strategy_name: str, days: float, gc: bool, live: bool = True
) -> tuple[list[ContainerRecommendation], ContainerRegistry, object, list[int]]:
    """Feed ``days`` of churn hour by hour; with ``gc``, collect garbage after each hour."""
    strategy, policy = build_strategy(strategy_name)
    registry = ContainerRegistry()
    state = strategy.new_state()
    seen = LastSeen()
    held: list[int] = []
    hours = int(days * 24)
    for h in range(hours):
        a, b = START + h * HOUR, START + (h + 1) * HOUR
        chunk = CHURN.chunk(registry, a, b)
        state.add(chunk)
        seen.note(chunk)
        if gc:
            pods = CHURN.live_pods(b) if live else None
            registry, _ = collect_garbage(
                registry, state, seen, b, Present(TEMPLATES, pods), RetentionSettings()
            )
        held.append(len(registry.instances))
    recs = strategy.recommend(state, registry, SizingContext(policy=policy))
    return recs, registry, state, held


@pytest.mark.parametrize("name", ["vpa", "headroom", "percentile"])
@pytest.mark.parametrize("live", [True, False])
def test_recommendations_are_identical_with_and_without_forgetting(name: str, live: bool) -> None:
    with_gc, reg_gc, _, _ = _run(name, 12, gc=True, live=live)
    without, reg_all, _, _ = _run(name, 12, gc=False)
    assert [r.key for r in with_gc] == [r.key for r in without]
    for a, b in zip(with_gc, without, strict=True):
        assert (a.target, a.lower_bound, a.upper_bound) == (
            b.target,
            b.lower_bound,
            b.upper_bound,
        ), a.key
        assert (a.cpu_samples, a.memory_samples, a.peak_memory_bytes) == (
            b.cpu_samples,
            b.memory_samples,
            b.peak_memory_bytes,
        )
    # and forgetting did happen: 12 rollouts × 3 pods and 576 job pods were seen
    assert len(reg_all.instances) == 13 * 3 + 12 * 48
    assert len(reg_gc.instances) < 0.2 * len(reg_all.instances)


def test_vpa_memory_histogram_is_the_same_with_and_without_forgetting() -> None:
    _, _, with_gc, _ = _run("vpa", 5, gc=True)
    _, _, without, _ = _run("vpa", 5, gc=False)
    assert isinstance(with_gc, UsageAggregates) and isinstance(without, UsageAggregates)
    a, b = with_gc.memory_histogram(), without.memory_histogram()
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.total, b.total, rtol=1e-12)
    np.testing.assert_array_equal(a.reference_s, b.reference_s)


@pytest.mark.parametrize("live", [True, False])
def test_entries_held_stay_bounded_under_churn(live: bool) -> None:
    _, registry, state, held = _run("vpa", 20, gc=True, live=live)
    assert isinstance(state, UsageAggregates)
    # after the first days, the count no longer grows: a day's pods at most
    # (3 web pods × 2 generations + the job pods of the idle window)
    bound = 3 * 2 + 48 + 1 if not live else 3 * 2 + 2
    assert max(held[24 * 3 :]) <= bound
    assert max(held[24 * 10 :]) == max(held[24 * 3 : 24 * 10])
    assert state.window_end_s.shape[0] == len(registry.instances)
    assert len(registry.containers) == 2


def _one_pod(registry: ContainerRegistry, pod: str, t: float, memory: float) -> UsageChunk:
    iid = registry.instance_id(("shop", "Deployment/web", pod, "app"))
    cid = registry.instance_container[iid]
    return UsageChunk(
        np.asarray([cid]), np.asarray([iid]), np.asarray([t]), np.asarray([0.1]),
        np.asarray([memory]), np.zeros(1, dtype=bool),
    )  # fmt: skip


def test_a_gone_pods_open_window_peak_still_counts() -> None:
    registry = ContainerRegistry()
    state = UsageAggregates()
    seen = LastSeen()
    for chunk in (
        _one_pod(registry, "web-a", START, 200 * MIB),
        _one_pod(registry, "web-b", START, 300 * MIB),
        _one_pod(registry, "web-b", START + 60, 2000 * MIB),  # b's open window: 2000 MiB
    ):
        state.add(chunk)
        seen.note(chunk)
    before = state.memory_histogram().percentile(0.95)[0]
    assert before > 1900 * MIB
    # b is deleted; a lives on
    now = START + 3600
    registry, forgetting = collect_garbage(
        registry, state, seen, now, Present({("shop", "Deployment/web", "app")},
        {("shop", "web-a")}), RetentionSettings(),
    )  # fmt: skip
    assert forgetting.dropped_instances == 1
    assert [k[2] for k in registry.instances] == ["web-a"]
    assert state.memory_histogram().percentile(0.95)[0] == before
    # the peak is in the histogram itself now, so a checkpoint keeps it too
    assert state.memory.percentile(0.95)[0] == before


def test_a_pod_just_gone_is_kept_until_its_samples_are_surely_read() -> None:
    registry = ContainerRegistry()
    state = UsageAggregates()
    seen = LastSeen()
    chunk = _one_pod(registry, "web-b", START, 300 * MIB)
    state.add(chunk)
    seen.note(chunk)
    settings = RetentionSettings()
    for now, dropped in (
        (START + settings.gone_grace_s - 1, 0),
        (START + settings.gone_grace_s, 1),
    ):
        _, forgetting = collect_garbage(
            registry,
            state,
            seen,
            now,
            Present({("shop", "Deployment/web", "app")}, set()),
            settings,
        )
        assert forgetting.dropped_instances == dropped


def test_containers_expire_only_when_no_template_has_them() -> None:
    settings = RetentionSettings()
    expiry = settings.container_expiry_s
    assert expiry == 8 * DAY_S
    for templates, now, dropped in (
        (set(), START + expiry - 1, 0),
        (set(), START + expiry, 1),
        ({("shop", "Deployment/web", "app")}, START + 100 * DAY_S, 0),
    ):
        registry = ContainerRegistry()
        state = UsageAggregates()
        seen = LastSeen()
        chunk = _one_pod(registry, "web-a", START, 300 * MIB)
        state.add(chunk)
        seen.note(chunk)
        registry, forgetting = collect_garbage(
            registry, state, seen, now, Present(templates, None), settings
        )
        assert forgetting.dropped_containers == dropped
        assert len(registry.containers) == state.containers == 1 - dropped
        assert state.cpu.rows == state.memory.rows == 1 - dropped


def test_ids_are_renumbered_consistently() -> None:
    registry = ContainerRegistry()
    state = UsageAggregates()
    seen = LastSeen()
    for pod, t in (("old", START), ("new", START + 2 * DAY_S)):
        chunk = _one_pod(registry, pod, t, 300 * MIB)
        state.add(chunk)
        seen.note(chunk)
    registry, _ = collect_garbage(
        registry, state, seen, START + 2 * DAY_S, Present({("shop", "Deployment/web", "app")},
        None), RetentionSettings(),
    )  # fmt: skip
    assert registry.instances == [("shop", "Deployment/web", "new", "app")]
    assert registry.instance_id(("shop", "Deployment/web", "new", "app")) == 0
    assert math.isfinite(state.window_end_s[0])
    assert seen.instance_s.tolist() == [START + 2 * DAY_S]
