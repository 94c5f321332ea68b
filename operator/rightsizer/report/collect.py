"""Gather a report's recommendations from Prometheus history (orchestration, no maths).

Namespaces are read one after another; each namespace's history streams chunk by chunk
into a strategy state of its own, recommended and dropped before the next namespace, so
memory is bounded by a chunk plus one namespace's histograms (and the report's rows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rightsizer.engine.policy import LimitRangeItem, SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.strategies import SizingContext, Strategy
from rightsizer.engine.usage import ContainerKey, ContainerRegistry
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.prometheus_history import HistoryWindow, PrometheusHistory, plan_chunks

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
) -> Collected:
    """Usage of every namespace in scope over ``windows`` (contiguous, in time order: see
    ``plan_bootstrap``), each namespace fed into a strategy state of its own."""
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
    chunks_per_ns = sum(len(plan_chunks(w)) for w in windows)
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

        # One state per namespace, recommended and let go before the next: the memory is
        # one namespace's state plus the rows, however many namespaces there are.
        registry = ContainerRegistry()
        state = strategy.new_state()
        chunks = (
            chunk
            for window in windows
            for chunk in history.chunks(ns, window, registry, resolver, oom_memory)
        )
        for j, chunk in enumerate(chunks, 1):
            state.add(chunk)
            if progress:
                progress(f"namespace {i}/{len(namespaces)} {ns}: chunk {j}/{chunks_per_ns}")
        by_name += resolver.by_name
        context = SizingContext(
            policy=policy, current_requests=requests, current_limits=limits, limit_ranges=ranges
        )
        recs.extend(r for r in strategy.recommend(state, registry, context) if scope.selects(r))
        del state, registry
    return Collected(
        recommendations=recs,
        replicas=replicas,
        namespaces=namespaces,
        queries_sent=history.client.queries_sent,
        resolved_by_name=by_name,
        limit_ranges=ranges,
    )


def workloads_of(recs: Iterable[ContainerRecommendation]) -> set[tuple[str, str]]:
    return {(r.namespace, r.workload) for r in recs}
