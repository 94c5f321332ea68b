"""Query chunks sized by the namespace's series (sources/prometheus_history.py
``chunk_for``): the operator reads a big namespace in shorter chunks to bound one
reconcile's memory; every strategy's state and recommendations are the same whatever
the chunking (bit for bit), as long as chunks come in time order."""

from __future__ import annotations

import numpy as np
import pytest

from rightsizer.engine.strategies import SizingContext, build_strategy
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.sources.prometheus_history import (
    HistoryWindow,
    chunk_for,
    plan_bootstrap,
    plan_chunks,
    plan_slices,
    slice_windows,
)

T0 = 1_800_000_000.0
STEP = 60.0


def test_chunks_shrink_with_the_series_of_a_namespace() -> None:
    assert chunk_for(STEP, 1) == 21_600.0  # the 6 h default for small namespaces
    assert chunk_for(STEP, 166) == 21_600.0
    assert chunk_for(STEP, 500) == 120 * STEP  # 60,000 points per answer
    assert chunk_for(STEP, 10_000) == 60 * STEP  # never below 60 steps
    assert chunk_for(300.0, 500) == 21_600.0  # 72 steps at 5m: within the budget
    windows = plan_bootstrap(T0 - 7 * 86_400, T0, STEP, 300.0, 86_400.0, chunk_for(STEP, 500))
    assert [w.chunk_s for w in windows] == [5 * 7_200.0, 7_200.0]  # older: 5× the range
    assert max(e - s for s, e in plan_chunks(windows[1])) == 119 * STEP


def chunks(splits: list[float], containers: int = 40) -> list[UsageChunk]:
    """A day of 1-minute CPU and memory rows per container (CPU rows, then memory rows,
    as the reader concatenates its answers), cut at ``splits``."""
    rng = np.random.default_rng(11)
    t = T0 + np.arange(1440) * STEP
    level = rng.lognormal(-2.0, 1.0, containers)
    out = []
    bounds = [T0, *splits, t[-1] + 1]
    for a, b in zip(bounds, bounds[1:], strict=False):
        ts = t[(t >= a) & (t < b)]
        cid = np.repeat(np.arange(containers), ts.shape[0])
        tt = np.tile(ts, containers)
        noise = np.abs(np.sin(tt * 12.9898 + cid * 78.233)) * 43758.5453 % 1.0
        cpu = level[cid] * np.exp(noise - 0.5)
        mem = 2e8 * level[cid] * (1 + noise / 10)
        n = cid.shape[0]
        out.append(UsageChunk(
            np.concatenate([cid, cid]), np.concatenate([cid, cid]), np.concatenate([tt, tt]),
            np.concatenate([cpu, np.full(n, np.nan)]), np.concatenate([np.full(n, np.nan), mem]),
            np.zeros(2 * n, dtype=bool),
        ))  # fmt: skip
    return out


@pytest.mark.parametrize("name", ["headroom", "vpa", "percentile"])
def test_recommendations_do_not_depend_on_the_chunk_size(name: str) -> None:
    registry = ContainerRegistry()
    for c in range(40):
        registry.instance_id(("ns", f"Deployment/w{c}", f"w{c}-abc-xyz", "app"))
    results = []
    for hours in (6, 2, 1, 0.5):
        strategy, sizing = build_strategy(name)
        state = strategy.new_state()
        splits = [T0 + k * hours * 3600 for k in range(1, int(24 / hours))]
        for chunk in chunks(splits):
            state.add(chunk)
        results.append(strategy.recommend(state, registry, SizingContext(policy=sizing)))
    assert all(r == results[0] for r in results[1:])
    assert len(results[0]) == 40


def test_the_default_window_keeps_its_six_hours() -> None:
    assert HistoryWindow(T0, T0 + 86_400).chunk_s == 21_600.0


def test_slices_hold_whole_workloads_within_the_budget() -> None:
    """``plan_slices`` (the report's slices of a large namespace): every pod in exactly
    one slice, a workload's pods together, each slice within the budget unless one
    workload alone exceeds it."""
    pods = [f"{w}-{i}" for w in ("a", "b", "c", "d") for i in range(3)] + ["e-0"]
    big = {"c": 40}
    slices = plan_slices(
        pods, lambda pod: pod.split("-")[0], lambda pod: big.get(pod.split("-")[0], 2), 10
    )
    members = [pod for slice_pods, _ in slices for pod in slice_pods]
    assert sorted(members) == sorted(pods)
    assert [sorted({p.split("-")[0] for p in s}) for s, _ in slices] == [
        ["a"],
        ["b"],
        ["c"],
        ["d", "e"],
    ]  # a + b (12) would exceed 10; c alone (120) exceeds it alone
    assert [series for _, series in slices] == [6, 6, 120, 8]
    assert plan_slices(pods, lambda pod: pod[0], lambda pod: 1, 13) == [(pods, 13)]
    assert plan_slices([], lambda pod: pod, lambda pod: 1, 10) == []


def test_slice_windows_cut_query_ranges_only_for_an_oversized_slice() -> None:
    windows = plan_bootstrap(T0 - 7 * 86_400, T0, STEP, 300.0, 86_400.0)
    assert slice_windows(windows, 166) == windows  # within 60,000 points: unchanged
    assert slice_windows(windows, 0) == windows  # size unknown: unchanged
    cut = slice_windows(windows, 500)
    assert [w.chunk_s for w in cut] == [120 * 300.0, 120 * STEP]  # 500 × 120 = 60,000
    assert [w.chunk_s for w in slice_windows(windows, 10**6)] == [60 * 300.0, 60 * STEP]
    assert [(w.start_s, w.end_s, w.step_s) for w in cut] == [
        (w.start_s, w.end_s, w.step_s) for w in windows
    ]
