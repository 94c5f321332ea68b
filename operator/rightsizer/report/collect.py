"""Gather a report's recommendations from Prometheus history (orchestration, no maths).

Namespaces are read one after another, and a large namespace in slices of whole
workloads (an exact set of pods per query); each slice's history streams chunk by chunk
into a strategy state of its own, recommended and dropped before the next slice, so
memory is bounded by a slice's answers and histograms, whatever the size of a namespace
(plus one namespace's owners and current requests, and the report's rows).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rightsizer.engine.policy import LimitRangeItem, SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.strategies import SizingContext, Strategy
from rightsizer.engine.usage import ContainerKey, ContainerRegistry
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.prometheus_history import (
    POINTS_PER_ANSWER,
    HistoryWindow,
    PrometheusHistory,
    plan_chunks,
    plan_slices,
    slice_windows,
)

DEFAULT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class Scope:
    """Which containers a report covers."""

    namespaces: tuple[str, ...] = ()
    """Exact names or regular expressions (full match); empty = every namespace."""
    kinds: tuple[str, ...] = DEFAULT_KINDS
    workloads: frozenset[tuple[str, str]] | None = None
    """(namespace, Kind/name) allowed, e.g. from a label selector; None = all."""

    def namespace_matches(self, namespace: str) -> bool:
        if not self.namespaces:
            return True
        return any(
            namespace == pattern or re.fullmatch(pattern, namespace) for pattern in self.namespaces
        )

    def selects(self, rec: ContainerRecommendation) -> bool:
        kind = rec.workload.split("/", 1)[0]
        if kind not in self.kinds:
            return False
        return self.workloads is None or (rec.namespace, rec.workload) in self.workloads


@dataclass
class Collected:
    recommendations: list[ContainerRecommendation]
    replicas: dict[tuple[str, str], int]
    namespaces: list[str]
    queries_sent: int
    resolved_by_name: int = 0
    limit_ranges: dict[str, list[LimitRangeItem]] = field(default_factory=dict)


Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClusterReads:
    """What the Kubernetes API adds to Prometheus's view, per namespace (``--kube``)."""

    limit_ranges: Callable[[str], list[LimitRangeItem]]
    owners: Callable[[str], WorkloadResolver]
    """Pods' and ReplicaSets' owner references, where Prometheus's owner series lack them."""


def collect_from_prometheus(
    history: PrometheusHistory,
    sizing: tuple[Strategy, SizingPolicy],
    windows: Sequence[HistoryWindow],
    scope: Scope,
    *,
    cluster: ClusterReads | None = None,
    progress: Progress | None = None,
    points_per_answer: int = POINTS_PER_ANSWER,
) -> Collected:
    """Usage of every namespace in scope over ``windows`` (contiguous, in time order: see
    ``plan_bootstrap``), each slice of a namespace fed into a strategy state of its own.

    A slice holds up to ``points_per_answer`` / (steps per query) series, so that no
    answer holds more than about ``points_per_answer`` points."""
    strategy, policy = sizing
    end_s = windows[-1].end_s
    span = end_s - windows[0].start_s
    namespaces = [ns for ns in history.namespaces(end_s, span) if scope.namespace_matches(ns)]
    recs: list[ContainerRecommendation] = []
    requests: dict[ContainerKey, Resources] = {}
    limits: dict[ContainerKey, Resources] = {}
    replicas: dict[tuple[str, str], int] = {}
    ranges: dict[str, list[LimitRangeItem]] = {}
    by_name = 0
    budget = max(1, points_per_answer // max(_steps_per_query(w) for w in windows))
    for i, ns in enumerate(namespaces, 1):
        base = cluster.owners(ns) if cluster is not None else None
        resolver = history.resolver(ns, end_s, span, base)
        current = history.current_resources(ns, end_s, resolver)
        requests.update(current.requests)
        limits.update(current.limits)
        replicas.update(current.replicas)
        if cluster is not None:
            ranges[ns] = cluster.limit_ranges(ns)

        def oom_memory(key: ContainerKey, reqs: dict[ContainerKey, Resources] = requests) -> float:
            value = reqs.get(key, Resources()).memory_bytes
            return math.nan if value is None else float(value)

        context = SizingContext(
            policy=policy, current_requests=requests, current_limits=limits, limit_ranges=ranges
        )
        slices = _slices(history, ns, windows, resolver, current.requests, budget)
        for k, (pods, series) in enumerate(slices, 1):
            # One state per slice, recommended and let go before the next: the memory is
            # one slice's state and answers plus the rows, however large the namespace.
            sliced = slice_windows(windows, series, points_per_answer)
            total = sum(len(plan_chunks(w)) for w in sliced)
            registry = ContainerRegistry()
            state = strategy.new_state()
            chunks = (
                chunk
                for window in sliced
                for chunk in history.chunks(ns, window, registry, resolver, oom_memory, pods)
            )
            for j, chunk in enumerate(chunks, 1):
                state.add(chunk)
                if progress:
                    part = f" slice {k}/{len(slices)}" if len(slices) > 1 else ""
                    progress(f"namespace {i}/{len(namespaces)} {ns}{part}: chunk {j}/{total}")
            recs.extend(r for r in strategy.recommend(state, registry, context) if scope.selects(r))
            del state, registry
        by_name += resolver.by_name
    return Collected(
        recommendations=recs,
        replicas=replicas,
        namespaces=namespaces,
        queries_sent=history.client.queries_sent,
        resolved_by_name=by_name,
        limit_ranges=ranges,
    )


def _steps_per_query(window: HistoryWindow) -> int:
    start, end = plan_chunks(window)[0]
    return round((end - start) / window.step_s) + 1


def _slices(
    history: PrometheusHistory, namespace: str, windows: Sequence[HistoryWindow],
    resolver: WorkloadResolver, requests: dict[ContainerKey, Resources], budget: int,
) -> list[tuple[list[str] | None, int]]:  # fmt: skip
    """The namespace's pods in slices of whole workloads of up to ``budget`` series
    (containers per pod as its workload has now; the namespace's mean for others). One
    slice without a pod matcher (``None``) when all fit or the store lists no pods."""
    # as far back as the queries look: the rate window, an offset step, the 5 m lookback
    start = windows[0].start_s - 300.0 - max(w.rate_window + w.step_s for w in windows)
    pods = history.pods(namespace, start, windows[-1].end_s)
    if not pods:
        return [(None, 0)]
    containers: dict[str, int] = defaultdict(int)
    for ns, workload, _ in requests:
        if ns == namespace:
            containers[workload] += 1
    mean = max(1, round(sum(containers.values()) / len(containers))) if containers else 1
    counted = resolver.by_name  # grouping is no resolution: the count stays the queries'

    def workload_of(pod: str) -> str:
        return resolver.workload(namespace, pod)

    slices = plan_slices(pods, workload_of, lambda pod: containers.get(workload_of(pod), mean),
                         budget)  # fmt: skip
    resolver.by_name = counted
    if len(slices) == 1:
        return [(None, slices[0][1])]
    return [(list(members), series) for members, series in slices]


def workloads_of(recs: Iterable[ContainerRecommendation]) -> set[tuple[str, str]]:
    return {(r.namespace, r.workload) for r in recs}
