"""Usage history from Prometheus, streamed as engine chunks.

Per namespace: owners (for pod → workload), current requests/limits, then CPU, memory and
OOM range queries in time chunks that stay under Prometheus's points-per-series limit.
Each time chunk becomes one ``UsageChunk`` that goes straight into the strategy's state,
so memory stays bounded by one chunk, whatever the history length.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from rightsizer.engine.recommendation import Resources
from rightsizer.engine.usage import ContainerKey, ContainerRegistry, UsageChunk
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources import promql
from rightsizer.sources.errors import SourceError, SourceProblem
from rightsizer.sources.prometheus import MAX_POINTS_PER_SERIES, PrometheusClient, Result

#: What reading a successful answer of the wrong shape raises (a series without ``pod``,
#: ``values: "zzz"``, pairs that are not pairs …).
_SHAPE_ERRORS = (KeyError, ValueError, TypeError, IndexError, AttributeError)


@contextlib.contextmanager
def _well_formed(query: str) -> Iterator[None]:
    """Turn a wrongly shaped answer into ``SourceError`` (fixed problem: malformed)."""
    try:
        yield
    except _SHAPE_ERRORS:
        raise SourceError(
            f"Prometheus answered {query} with a result of the wrong shape",
            SourceProblem.MALFORMED_RESULT,
        ) from None


@dataclass(frozen=True)
class HistoryWindow:
    """What to read: ``[start_s, end_s]`` at ``step_s``; queries cover ``chunk_s`` each."""

    start_s: float
    end_s: float
    step_s: float = 60.0
    rate_window_s: float | None = None
    """CPU irate window; default 1.5 × step: on the step grid it holds the last two samples
    (under Prometheus 2's closed and 3's open window start alike), and one step after a
    series ends it holds only one, so a finished pod yields no phantom sample."""
    chunk_s: float = 21_600.0
    """Time range of one query: 6 h keeps one answer small (1,000 series × 360 points)."""
    sample_weight: float = 1.0
    """How many samples at the base resolution each sample here stands for (older history
    read at a coarser step: step / base step)."""

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.end_s <= self.start_s or self.chunk_s < self.step_s:
            raise ValueError("history needs start < end, a positive step and chunk ≥ step")
        if self.sample_weight <= 0:
            raise ValueError("sample_weight must be positive")

    @property
    def rate_window(self) -> float:
        return self.rate_window_s or 1.5 * self.step_s


#: Points (series × steps) one range answer of the operator's reader aims at: a chunk
#: spans fewer steps when a namespace has many series, so one reconcile's answers and
#: chunk stay about this size whatever the namespace (docs/design.md, "Memory per
#: container"). 60,000: 500 series × 120 steps (2 h at 1m); up to 166 series the chunk
#: stays 6 h.
POINTS_PER_ANSWER = 60_000
#: …but never fewer steps than this per query (the query count stays bounded).
MIN_CHUNK_STEPS = 60


def chunk_for(step_s: float, series: int) -> float:
    """Time range of one query for ``series`` series at ``step_s`` (pure): at most the
    6 h default, fewer steps for many series, at least ``MIN_CHUNK_STEPS`` steps."""
    steps = max(MIN_CHUNK_STEPS, POINTS_PER_ANSWER // max(series, 1))
    return min(HistoryWindow.chunk_s, steps * step_s)


def slice_windows(
    windows: Sequence[HistoryWindow], series: int, points: int = POINTS_PER_ANSWER
) -> list[HistoryWindow]:
    """``windows`` with each query's range cut (as ``chunk_for`` does) so that ``series``
    series stay about ``points`` points per answer, never under ``MIN_CHUNK_STEPS`` steps
    (pure); unchanged for a slice within its budget or of unknown size (0)."""
    if series <= 0:
        return list(windows)
    out = []
    for w in windows:
        steps = max(MIN_CHUNK_STEPS, points // series)
        out.append(replace(w, chunk_s=min(w.chunk_s, steps * w.step_s)))
    return out


def plan_slices(
    pods: Iterable[str], workload_of: Callable[[str], str],
    series_of: Callable[[str], int], budget: int,
) -> list[tuple[list[str], int]]:  # fmt: skip
    """Pods in slices of whole workloads, each slice up to ``budget`` series (pure); a
    workload larger than that is a slice of its own. Every pod is in exactly one slice,
    and every workload's pods in one (a container's samples feed one state). Slices are
    returned with their series counts, one slice when everything fits."""
    by_workload: dict[str, list[str]] = defaultdict(list)
    for pod in pods:
        by_workload[workload_of(pod)].append(pod)
    slices: list[tuple[list[str], int]] = []
    current: list[str] = []
    weight = 0
    for workload in sorted(by_workload):
        members = by_workload[workload]
        size = sum(series_of(pod) for pod in members)
        if current and weight + size > budget:
            slices.append((current, weight))
            current, weight = [], 0
        current += members
        weight += size
    if current:
        slices.append((current, weight))
    return slices


def plan_bootstrap(
    start_s: float, end_s: float, step_s: float, older_step_s: float, full_resolution_s: float,
    chunk_s: float = HistoryWindow.chunk_s,
) -> list[HistoryWindow]:  # fmt: skip
    """First contact: history older than ``full_resolution_s`` at ``older_step_s`` (each
    sample weighted as ``older_step_s / step_s`` samples), the rest at ``step_s`` (pure).

    CPU at the coarse step is still a point-in-time rate (the last base-step interval
    before each coarse point): a subsample of the same distribution, not an average that
    would flatten its tail. Memory is the peak of every raw sample within each coarse step,
    so no peak is lost. Contiguous: the fine part starts one step after the coarse part's
    last point. The coarse part's queries span ``older_step_s / step_s`` times as long, so
    every answer holds as many points per series as a full-resolution one (fewer requests,
    the same memory per answer).
    """
    if older_step_s <= step_s or end_s - start_s <= full_resolution_s + older_step_s:
        return [HistoryWindow(start_s, end_s, step_s, chunk_s=chunk_s)]
    boundary = math.floor((end_s - full_resolution_s) / older_step_s) * older_step_s
    weight = older_step_s / step_s
    older = HistoryWindow(
        start_s, boundary, older_step_s, rate_window_s=1.5 * step_s,
        chunk_s=chunk_s * weight, sample_weight=weight,
    )  # fmt: skip
    return [older, HistoryWindow(boundary + step_s / 2, end_s, step_s, chunk_s=chunk_s)]


def plan_chunks(window: HistoryWindow) -> list[tuple[float, float]]:
    """Step-aligned, non-overlapping query ranges covering the window (pure)."""
    step = window.step_s
    first = math.ceil(window.start_s / step) * step
    last = math.floor(window.end_s / step) * step
    per_chunk = max(1, min(int(window.chunk_s // step), MAX_POINTS_PER_SERIES))
    ranges = []
    start = first
    while start <= last:
        end = min(start + (per_chunk - 1) * step, last)
        ranges.append((start, end))
        start = end + step
    return ranges


@dataclass
class CurrentResources:
    requests: dict[ContainerKey, Resources]
    limits: dict[ContainerKey, Resources]
    replicas: dict[tuple[str, str], int]
    """(namespace, workload) → pods seen with requests at the end of the window."""


class PrometheusHistory:
    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        self.extra = promql.validate_matchers(client.config.label_matchers)

    def namespaces(self, end_s: float, window_s: float) -> list[str]:
        expr = promql.namespaces(window_s, self.extra)
        result = self.client.query(expr, end_s)
        with _well_formed(expr):
            return sorted({str(r["metric"].get("namespace", "")) for r in result} - {""})

    def pods(self, namespace: str, start_s: float, end_s: float) -> list[str] | None:
        """Every pod with usage series in ``[start_s, end_s]`` (perhaps a few more), from
        the index; None where the listing fails (a store without label values for
        matchers answers 404, 400 or 501): the namespace is then read whole, which is
        always correct; a real failure of the store fails the reads that follow."""
        match = promql.usage_series(namespace, self.extra)
        try:
            return sorted(self.client.label_values("pod", match, start_s, end_s))
        except SourceError:
            return None

    def resolver(
        self,
        namespace: str,
        end_s: float,
        window_s: float,
        base: WorkloadResolver | None = None,
    ) -> WorkloadResolver:
        """Owners from kube-state-metrics over the whole window, on top of ``base`` (e.g.
        owner references from the API); naming patterns as the last fallback."""
        resolver = base or WorkloadResolver()
        pods = self.client.query(promql.pod_owners(namespace, window_s, self.extra), end_s)
        sets = self.client.query(promql.replicaset_owners(namespace, window_s, self.extra), end_s)
        with _well_formed("the owner queries"):
            self._add_owners(resolver, pods, sets)
        return resolver

    @staticmethod
    def _add_owners(resolver: WorkloadResolver, pods: Result, sets: Result) -> None:
        resolver.add_pod_owners(
            {
                (m["namespace"], m["pod"]): (m["owner_kind"], m["owner_name"])
                for m in (r["metric"] for r in pods)
                if m.get("owner_kind") and m.get("owner_name") and m.get("owner_kind") != "<none>"
            }
        )
        resolver.add_replicaset_owners(
            {
                (m["namespace"], m["replicaset"]): (m["owner_kind"], m["owner_name"])
                for m in (r["metric"] for r in sets)
                if m.get("owner_kind") and m.get("owner_name") and m.get("owner_kind") != "<none>"
            }
        )

    def current_resources(
        self, namespace: str, at_s: float, resolver: WorkloadResolver
    ) -> CurrentResources:
        """Requests and limits at ``at_s`` (largest across a workload's pods)."""
        values: dict[str, dict[ContainerKey, dict[str, float]]] = {}
        pods: dict[tuple[str, str], set[str]] = defaultdict(set)
        for kind in ("requests", "limits"):
            per: dict[ContainerKey, dict[str, float]] = defaultdict(dict)
            expr = promql.resources(kind, namespace, self.extra)
            for r in self.client.query(expr, at_s):
                with _well_formed(expr):
                    m = r["metric"]
                    wl = resolver.workload(m["namespace"], m["pod"])
                    key = (m["namespace"], wl, m["container"])
                    value = float(r["value"][1])
                    per[key][m["resource"]] = max(per[key].get(m["resource"], 0.0), value)
                    if kind == "requests":
                        pods[(m["namespace"], wl)].add(m["pod"])
            values[kind] = per

        def to_resources(v: dict[str, float]) -> Resources:
            cpu, mem = v.get("cpu"), v.get("memory")
            return Resources(
                None if cpu is None else math.ceil(round(cpu * 1000, 6)),
                None if mem is None else math.ceil(mem),
            )

        return CurrentResources(
            requests={k: to_resources(v) for k, v in values["requests"].items()},
            limits={k: to_resources(v) for k, v in values["limits"].items()},
            replicas={k: len(v) for k, v in pods.items()},
        )

    def chunks(
        self,
        namespace: str,
        window: HistoryWindow,
        registry: ContainerRegistry,
        resolver: WorkloadResolver,
        memory_request: Callable[[ContainerKey], float] | None = None,
        pods: Sequence[str] | None = None,
    ) -> Iterator[UsageChunk]:
        """One chunk per query range: CPU, memory and OOM samples of the namespace (of
        ``pods`` only, if given).

        ``memory_request`` gives the memory reported for an OOM kill (upstream VPA uses the
        container's request for OOMs seen in container status).
        """
        extra = ",".join(filter(None, (self.extra, promql.pod_set(pods) if pods else "")))
        # On VictoriaMetrics only: its irate repeats a series' last rate one step after it
        # ends; the guard costs a second read of the counter, needless on Prometheus.
        two_samples = self.client.store == "victoriametrics"
        cpu = promql.cpu_usage(namespace, window.rate_window, extra, two_samples=two_samples)
        exprs = (
            ("cpu", cpu),
            ("memory", promql.memory_usage(namespace, window.step_s, extra)),
            ("oom", promql.oom_kills(namespace, window.step_s, extra)),
        )
        jobs = [(s, e, kind, expr) for s, e in plan_chunks(window) for kind, expr in exprs]

        def fetch(job: tuple[float, float, str, str]) -> Result:
            return self.client.query_range(job[3], job[0], job[1], window.step_s)

        # Up to ``in_flight`` queries run while the oldest answer is encoded (Prometheus
        # evaluates one query on one core); answers are taken in order and each becomes
        # arrays at once, so at most in_flight + 1 are alive. Chunks are yielded in time
        # order, whole: a failure ends the stream before a partial chunk is ever yielded.
        in_flight = self.client.config.in_flight
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="prometheus") as pool:
            pending = deque(pool.submit(fetch, job) for job in jobs[:in_flight])
            try:
                parts: list[_Part] = []
                for i, job in enumerate(jobs):
                    result = pending.popleft().result()
                    if i + in_flight < len(jobs):
                        pending.append(pool.submit(fetch, jobs[i + in_flight]))
                    with _well_formed(job[3]):
                        parts.extend(
                            _encode_part(
                                registry, resolver, result, job[2], memory_request,
                                window.sample_weight,
                            )
                        )  # fmt: skip
                    del result
                    if job[2] == exprs[-1][0]:
                        yield _concat(parts)
                        parts = []
            finally:
                for future in pending:  # not started yet: never sent
                    future.cancel()


_Part = tuple[np.ndarray, ...]


def _series(
    registry: ContainerRegistry, resolver: WorkloadResolver, result: Result
) -> Iterator[tuple[int, int, np.ndarray, ContainerKey]]:
    for series in result:
        m = series["metric"]
        ns, pod, container = m.get("namespace"), m.get("pod"), m.get("container")
        if not ns or not pod or not container:
            continue
        workload = resolver.workload(ns, pod)
        inst = registry.instance_id((ns, workload, pod, container))
        cid = registry.instance_container[inst]
        values = np.asarray(series["values"], dtype=np.float64).reshape(-1, 2)
        yield inst, cid, values, (ns, workload, container)


def _encode_part(
    registry: ContainerRegistry,
    resolver: WorkloadResolver,
    result: Result,
    kind: str,
    memory_request: Callable[[ContainerKey], float] | None,
    sample_weight: float = 1.0,
) -> list[_Part]:
    parts: list[_Part] = []
    for inst, cid, series_values, key in _series(registry, resolver, result):
        values = series_values
        n = values.shape[0]
        nan = np.full(n, np.nan)
        if kind == "cpu":
            cols = (values[:, 1], nan, np.zeros(n, dtype=bool))
        elif kind == "memory":
            cols = (nan, values[:, 1], np.zeros(n, dtype=bool))
        else:
            values = values[values[:, 1] > 0]
            n = values.shape[0]
            reported = memory_request(key) if memory_request else np.nan
            cols = (np.full(n, np.nan), np.full(n, reported), np.ones(n, dtype=bool))
        weight = np.full(n, 1.0 if kind == "oom" else sample_weight)
        parts.append(
            (np.full(n, cid, dtype=np.int64), np.full(n, inst, dtype=np.int64), values[:, 0],
             *cols, weight)
        )  # fmt: skip
    return parts


def _concat(parts: list[_Part]) -> UsageChunk:
    if not parts:
        empty = np.zeros(0)
        return UsageChunk(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty, empty,
            np.zeros(0, dtype=bool),
        )  # fmt: skip
    merged = [np.concatenate([p[i] for p in parts]) for i in range(7)]
    weight = merged[6] if bool(np.any(merged[6] != 1.0)) else None
    return UsageChunk(
        merged[0], merged[1], merged[2], merged[3], merged[4], merged[5].astype(bool), weight
    )
