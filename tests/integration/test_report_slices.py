"""A namespace read in slices of workloads (an exact pod set per query) gives the same
recommendations as one read of the whole namespace, against the real store: every sample
of every container reaches its one state, none twice (issue 17: flat client memory)."""

from __future__ import annotations

import pytest

from rightsizer.engine.strategies import build_strategy
from rightsizer.report.collect import Collected, Scope, collect_from_prometheus
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from rightsizer.sources.prometheus_history import (
    HistoryWindow,
    PrometheusHistory,
    plan_bootstrap,
    plan_chunks,
)
from tests.integration.test_bootstrap_tiers import MINUTE_NAMESPACES, minute_history
from tests.sandbox import HistoryStore

__all__ = ["minute_history"]  # the fixture, shared with the tiers test

pytestmark = pytest.mark.prometheus

STEPS_PER_QUERY = 360
"""Both tiers' queries span 360 steps (6 h at 1m, 30 h at 5m): a budget of two series
(one workload: one container, a pod replaced midway) per query keeps each query range."""


def _windows(end: float) -> list[HistoryWindow]:
    return plan_bootstrap(end - 3 * 86400, end, 60.0, 300.0, 86400.0)  # the report's default


def _collect(
    store: HistoryStore, end: float, strategy: str, points: int
) -> tuple[Collected, list[str]]:
    windows = _windows(end)
    client = PrometheusClient(PrometheusConfig(url=store.url))
    messages: list[str] = []
    try:
        collected = collect_from_prometheus(
            PrometheusHistory(client),
            build_strategy(strategy, {}),
            windows,
            Scope(namespaces=(MINUTE_NAMESPACES,)),
            progress=messages.append,
            points_per_answer=points,
        )
    finally:
        client.close()
    return collected, messages


@pytest.mark.parametrize("strategy", ["headroom", "vpa"])
def test_slices_of_workloads_give_the_recommendations_of_one_read(
    history_store: HistoryStore, minute_history: float, strategy: str
) -> None:
    whole, whole_progress = _collect(history_store, minute_history, strategy, 10**9)
    sliced, sliced_progress = _collect(history_store, minute_history, strategy, 2 * STEPS_PER_QUERY)
    # the small budget did slice: three workloads per namespace, one slice each, each with
    # the query ranges of one read (CPU, memory and OOM per range)
    ranges = sum(len(plan_chunks(w)) for w in _windows(minute_history))
    assert not any("slice" in m for m in whole_progress)
    assert any(m.endswith(f" slice 3/3: chunk {ranges}/{ranges}") for m in sliced_progress)
    assert sliced.queries_sent == whole.queries_sent + 2 * 2 * 3 * ranges
    assert len(whole.recommendations) == 6

    def by_key(c: Collected) -> dict[tuple[str, str, str], str]:
        # repr: NaN fields compare equal; every float bit for bit
        return {(r.namespace, r.workload, r.container): repr(r) for r in c.recommendations}

    assert by_key(sliced) == by_key(whole)
    assert sliced.replicas == whole.replicas
    assert sliced.resolved_by_name == whole.resolved_by_name
