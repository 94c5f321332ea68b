"""One reconcile of a RightSizePolicy (orchestration; the maths lives in the engine).

Reads usage through the ports it is given (Prometheus history, metrics-server polls,
checkpoints), feeds the policy's strategy state, and returns what should be written —
status, annotations, a checkpoint, Events — without writing anything itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rightsizer.actuation.annotations import (
    annotation_bands,
    annotation_update,
    wanted_annotations,
)
from rightsizer.controller.runtime import PolicyRuntime
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.retention import LastSeen, Present, RetentionSettings, collect_garbage
from rightsizer.engine.strategies import SizingContext, Strategy
from rightsizer.engine.strategies.base import UsageState
from rightsizer.engine.usage import ContainerKey
from rightsizer.history import checkpoints
from rightsizer.model.assessment import Assessment, Totals, assess, totals
from rightsizer.model.workloads import PolicyInfo, WorkloadInfo
from rightsizer.names import ConditionType, EventReason
from rightsizer.policy.spec import (
    PolicyError,
    PolicySpec,
    PrometheusSource,
    UpdateMode,
    parse_policy_spec,
)
from rightsizer.samples.encode import encode as encode_samples
from rightsizer.sources.errors import SourceError, SourceRefusedError
from rightsizer.sources.prometheus import QueryBudgetExhaustedError
from rightsizer.sources.prometheus_history import (
    HistoryWindow,
    PrometheusHistory,
    chunk_for,
    plan_bootstrap,
    plan_chunks,
)
from rightsizer.status.build import Condition, iso, merge_conditions
from rightsizer.status.policy import conflict_message

CHECKPOINT_INTERVAL_S = 600.0
#: Forget gone pods and containers at most this often (usage time; upstream: hourly).
GC_INTERVAL_S = 3600.0
METRICS_POLL_INTERVAL_S = 60.0
MIN_HISTORY_S = 3600.0
MIN_SAMPLES = 30


@dataclass
class Ports:
    """The reconcile step's only ways to the outside world (all reads)."""

    prometheus: Callable[[PrometheusSource, str], PrometheusHistory]
    metrics_poll: Callable[[str], pd.DataFrame] | None = None
    load_checkpoint: Callable[[str, str], bytes | None] | None = None
    live_pods: Callable[[str], Collection[str] | None] | None = None
    """Names of the namespace's pods now (None: unknown); asked once per garbage collection."""


@dataclass
class Event:
    target: Mapping[str, Any] | None
    """An object reference; None means the policy itself."""
    type: str
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    annotations: list[tuple[WorkloadInfo, dict[str, str]]] = field(default_factory=list)
    checkpoint: bytes | None = None
    events: list[Event] = field(default_factory=list)
    invalid: str | None = None
    """Set when the spec cannot be used (a permanent error)."""
    window_read_s: float = 0.0
    """Seconds of history read this time."""
    rows: list[Assessment] = field(default_factory=list)
    source_error: str | None = None
    """A fixed message (``SourceProblem``): status, Events and logs never carry more."""
    source_refused: bool = False
    """The operator refused the source as configured (nothing was sent)."""
    last_actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → the action taken now (Annotate mode), for its recommendation object."""


def checkpoint_name(policy: str) -> str:
    return f"rightsizer-checkpoint-{policy}"[:253]


def owned_workloads(
    policy: PolicyInfo, spec: PolicySpec, workloads: Sequence[WorkloadInfo],
    others: Sequence[PolicyInfo],
) -> tuple[list[WorkloadInfo], dict[str, str]]:  # fmt: skip
    """Workloads this policy selects and owns; and those an older policy owns instead."""
    seniors = []
    for other in others:
        if other.uid == policy.uid or other.seniority >= policy.seniority:
            continue
        try:
            seniors.append((other, parse_policy_spec(other.spec)))
        except PolicyError:
            continue
    mine, conflicts = [], {}
    for w in workloads:
        if not spec.targets.selects(w.kind, w.name, w.labels):
            continue
        owner = next(
            (o for o, s in sorted(seniors, key=lambda p: p[0].seniority)
             if s.targets.selects(w.kind, w.name, w.labels)),
            None,
        )  # fmt: skip
        if owner is None:
            mine.append(w)
        else:
            conflicts[w.ref] = owner.name
    return mine, conflicts


def _signature(spec: PolicySpec) -> str:
    return json.dumps([spec.strategy_name, sorted(spec.strategy_overrides.items())])


def _placeholder(w: WorkloadInfo, container: str) -> ContainerRecommendation:
    req = next((c.requests for c in w.containers if c.name == container), Resources())
    lim = next((c.limits for c in w.containers if c.name == container), Resources())
    zero = Resources(0, 0)
    return ContainerRecommendation(
        w.namespace, w.ref, container, zero, zero, zero, zero, Resources(), 0, 0, 0.0,
        req, lim, 0.0, 0, 0.0,
    )  # fmt: skip


def _condition_status(previous: Sequence[Mapping[str, Any]], type_: str) -> str | None:
    return next((str(c.get("status")) for c in previous if c.get("type") == type_), None)


def _collect_garbage(
    runtime: PolicyRuntime, state: Any, strategy: Any, workloads: Sequence[WorkloadInfo],
    ports: Ports, ns: str,
) -> None:  # fmt: skip
    """Forget gone pods and containers (``engine/retention.py``), hourly in usage time."""
    horizon = runtime.read_until_s
    if horizon is None or (
        runtime.last_gc_s is not None and horizon - runtime.last_gc_s < GC_INTERVAL_S
    ):
        return
    runtime.last_gc_s = horizon
    pods = ports.live_pods(ns) if ports.live_pods is not None else None
    live = None if pods is None else {(ns, pod) for pod in pods}
    templates = {(ns, w.ref, c.name) for w in workloads for c in w.containers}
    runtime.registry, _ = collect_garbage(
        runtime.registry, state, runtime.seen, horizon, Present(templates, live),
        RetentionSettings.of(strategy),
    )  # fmt: skip


@dataclass(frozen=True)
class ReconcileInput:
    """What one reconcile of one policy is given, besides its memory and its ports."""

    policy: PolicyInfo
    generation: int
    previous_status: Mapping[str, Any]
    workloads: Sequence[WorkloadInfo]
    """Every workload of the namespace (the policy's selection is made here)."""
    limit_ranges: Sequence[LimitRangeItem]
    others: Sequence[PolicyInfo]
    """The namespace's policies, to tell which one owns a workload two select."""
    now_s: float

    @property
    def namespace(self) -> str:
        return self.policy.namespace

    @property
    def previous_conditions(self) -> Sequence[Mapping[str, Any]]:
        conditions: Sequence[Mapping[str, Any]] = self.previous_status.get("conditions") or []
        return conditions


@dataclass
class UsageRead:
    """How this reconcile's reads went. Only an error's fixed ``problem`` is kept: its
    detail may quote a response body or a header, and all of this ends up where the
    policy's author can read it."""

    source_error: str | None = None
    refused: bool = False
    window_read_s: float = 0.0

    def failed(self, exc: SourceError) -> None:
        problem = exc.problem.value
        self.source_error = f"{self.source_error}; {problem}" if self.source_error else problem
        self.refused = self.refused or isinstance(exc, SourceRefusedError)


def reconcile(
    given: ReconcileInput, runtime: PolicyRuntime | None, ports: Ports
) -> tuple[Outcome, PolicyRuntime | None]:
    """Read → recommend → annotate → status: what to write, and the policy's memory."""
    try:
        spec = parse_policy_spec(given.policy.spec)
        strategy, sizing = spec.strategy()
    except PolicyError as exc:
        return _invalid(given, str(exc)), runtime
    runtime = _runtime(given, spec, strategy, runtime, ports)
    mine, conflicts = owned_workloads(given.policy, spec, given.workloads, given.others)
    requests, limits = _current_resources(given)
    read = _read_usage(given, spec, runtime, ports, requests)
    _collect_garbage(runtime, runtime.state, strategy, given.workloads, ports, given.namespace)
    context = SizingContext(
        policy=sizing, current_requests=requests, current_limits=limits,
        limit_ranges={given.namespace: list(given.limit_ranges)},
    )  # fmt: skip
    rows = _assess(
        given, spec, strategy.recommend(_state(runtime), runtime.registry, context), mine
    )
    outcome = Outcome(
        status={}, window_read_s=read.window_read_s, rows=list(rows),
        source_error=read.source_error, source_refused=read.refused,
    )  # fmt: skip
    outcome.last_actions = _annotate(given, spec, rows, mine, outcome)
    t = totals(rows)
    merged = _conditions(given, t, len(mine), conflicts, read, outcome)
    # The totals and top changes come from the recommendation objects once written
    # (``status/policy.py``), so they change only when an object does.
    outcome.status = {
        "observedGeneration": given.generation,
        "lastReconcileTime": iso(given.now_s),
        "conditions": merged,
        "history": _history(given, runtime, outcome),
    }
    runtime.last_reconcile_s = given.now_s
    runtime.rows = list(rows)
    runtime.owned = [w.ref for w in mine]
    runtime.observed_generation = given.generation
    runtime.source_ok = read.source_error is None
    runtime.source_problem = read.source_error
    return outcome, runtime


def _invalid(given: ReconcileInput, problem: str) -> Outcome:
    """``Ready=False InvalidSpec``, with an Event when Ready was not already False."""
    status = {
        "observedGeneration": given.generation,
        "conditions": merge_conditions(
            given.previous_conditions,
            [Condition(ConditionType.READY, False, EventReason.INVALID_SPEC, problem)],
            given.now_s, given.generation,
        ),
    }  # fmt: skip
    events = []
    if _condition_status(given.previous_conditions, ConditionType.READY) != "False":
        events.append(Event(None, "Warning", EventReason.INVALID_SPEC, problem))
    return Outcome(status, events=events, invalid=problem)


def _runtime(
    given: ReconcileInput, spec: PolicySpec, strategy: Strategy, runtime: PolicyRuntime | None,
    ports: Ports,
) -> PolicyRuntime:  # fmt: skip
    """The policy's memory: kept while the strategy's settings stay; else restored from
    its checkpoint when that was written with the same settings; else new."""
    signature = _signature(spec)
    if runtime is None or runtime.signature != signature:
        runtime = PolicyRuntime(signature=signature)
    if runtime.state is None and ports.load_checkpoint is not None:
        blob = ports.load_checkpoint(given.namespace, checkpoint_name(given.policy.name))
        if blob is not None:
            try:
                restored = checkpoints.decode(blob, strategy)
            except checkpoints.CheckpointError:
                restored = None
            if restored is not None and restored.signature == signature:
                runtime.registry = restored.registry
                runtime.state = restored.state
                runtime.read_until_s = restored.read_until_s
                runtime.seen = LastSeen.assumed(restored.registry, restored.read_until_s)
                runtime.bootstrapped = True
                runtime.restored_from_checkpoint = True
                runtime.last_checkpoint_s = given.now_s
    if runtime.state is None:
        runtime.state = strategy.new_state()
    return runtime


def _state(runtime: PolicyRuntime) -> UsageState:
    """The usage state ``_runtime`` has made sure of."""
    if runtime.state is None:
        raise RuntimeError("the policy's usage state is missing")
    return runtime.state


def _current_resources(
    given: ReconcileInput,
) -> tuple[dict[ContainerKey, Resources], dict[ContainerKey, Resources]]:
    """Every container's requests and limits in the namespace's workloads now."""
    ns = given.namespace
    requests: dict[ContainerKey, Resources] = {}
    limits: dict[ContainerKey, Resources] = {}
    for w in given.workloads:
        for c in w.containers:
            requests[(ns, w.ref, c.name)] = c.requests
            limits[(ns, w.ref, c.name)] = c.limits
    return requests, limits


def _read_usage(
    given: ReconcileInput, spec: PolicySpec, runtime: PolicyRuntime, ports: Ports,
    requests: Mapping[ContainerKey, Resources],
) -> UsageRead:  # fmt: skip
    """Prometheus's history since the last read; metrics-server's samples where there is
    no Prometheus or it failed."""
    read = UsageRead()
    if spec.prometheus is not None:
        _read_prometheus(given, spec.prometheus, runtime, ports, requests, read)
    if (
        spec.metrics_server
        and ports.metrics_poll is not None
        and (spec.prometheus is None or read.source_error is not None)
        and given.now_s - runtime.last_metrics_poll_s >= METRICS_POLL_INTERVAL_S
    ):
        runtime.last_metrics_poll_s = given.now_s  # at most one poll a minute, failed or not
        try:
            frame = ports.metrics_poll(given.namespace)
            if len(frame):
                polled = encode_samples(frame, runtime.registry, cpu_whole_millicores=True)
                _state(runtime).add(polled)
                runtime.seen.note(polled)
                runtime.read_until_s = max(
                    runtime.read_until_s or 0.0, float(frame["timestamp"].max())
                )
        except SourceError as exc:
            read.failed(exc)
    return read


def _read_prometheus(
    given: ReconcileInput, src: PrometheusSource, runtime: PolicyRuntime, ports: Ports,
    requests: Mapping[ContainerKey, Resources], read: UsageRead,
) -> None:  # fmt: skip
    ns, now_s = given.namespace, given.now_s
    start = runtime.read_until_s if runtime.read_until_s is not None else now_s - src.history_s
    if now_s - start < src.step_s:
        try:  # nothing new to read yet; still tell whether Prometheus answers
            probe = ports.prometheus(src, ns)
            try:
                probe.client.check()
            finally:
                probe.client.close()
        except SourceError as exc:
            read.failed(exc)
        return
    runtime.catching_up = False
    try:
        prom = ports.prometheus(src, ns)
        try:
            # Every pod's containers are series of the namespace's queries.
            series = sum(max(w.replicas, 1) * len(w.containers) for w in given.workloads)
            chunk_s = chunk_for(src.step_s, series)
            if runtime.read_until_s is None:  # first contact: older history coarser
                windows = plan_bootstrap(
                    start + src.step_s / 2, now_s, src.step_s, src.older_step_s,
                    src.full_resolution_s, chunk_s,
                )  # fmt: skip
            else:
                windows = [HistoryWindow(start + src.step_s / 2, now_s, src.step_s,
                                         chunk_s=chunk_s)]  # fmt: skip
            resolver = prom.resolver(ns, now_s, now_s - start + src.step_s)

            def oom_memory(key: ContainerKey) -> float:
                value = requests.get(key, Resources()).memory_bytes
                return math.nan if value is None else float(value)

            # Progress is kept per complete chunk: if Prometheus fails midway, the next
            # read resumes after the last chunk added — nothing counted twice, nothing
            # skipped.
            for window in windows:
                chunks = prom.chunks(ns, window, runtime.registry, resolver, oom_memory)
                for (_, chunk_end), chunk in zip(plan_chunks(window), chunks, strict=True):
                    _state(runtime).add(chunk)
                    runtime.seen.note(chunk)
                    runtime.read_until_s = chunk_end
                    read.window_read_s = chunk_end - start
            runtime.bootstrapped = True
        finally:
            prom.client.close()
    except QueryBudgetExhaustedError:
        # Not a failure: what was read is kept, the rest comes next time, soon.
        runtime.catching_up = True
    except SourceError as exc:
        read.failed(exc)


def _assess(
    given: ReconcileInput, spec: PolicySpec, recs: Sequence[ContainerRecommendation],
    mine: Sequence[WorkloadInfo],
) -> list[Assessment]:  # fmt: skip
    """One row per selected container: its recommendation, or a placeholder without data."""
    ns = given.namespace
    by_key = {r.key: r for r in recs}
    selected: list[ContainerRecommendation] = []
    for w in mine:
        for c in w.containers:
            if c.name in spec.targets.exclude_containers:
                continue
            selected.append(by_key.get((ns, w.ref, c.name)) or _placeholder(w, c.name))
    return list(
        assess(
            selected, {(ns, w.ref): w.replicas for w in mine}, min_history_s=MIN_HISTORY_S,
            min_samples=MIN_SAMPLES,
        )
    )  # fmt: skip


def _annotate(
    given: ReconcileInput, spec: PolicySpec, rows: Sequence[Assessment],
    mine: Sequence[WorkloadInfo], outcome: Outcome,
) -> dict[str, Any]:  # fmt: skip
    """Annotate and Apply modes: the annotations that changed enough, with an Event each,
    into ``outcome``; returns the last action of each workload annotated now."""
    last_actions: dict[str, Any] = {}
    if spec.update.mode not in (UpdateMode.ANNOTATE, UpdateMode.APPLY):
        return last_actions
    current = {w.ref: w for w in mine}
    by_workload: dict[str, list[Assessment]] = {}
    for row in rows:
        by_workload.setdefault(row.recommendation.workload, []).append(row)
    for ref, group in by_workload.items():
        info = current[ref]
        wanted = wanted_annotations(group, f"{given.namespace}/{given.policy.name}")
        if wanted is None:
            continue
        update = annotation_update(
            info.annotations, wanted, spec.update.settings.min_change_percent,
            annotation_bands(group),
        )  # fmt: skip
        if update is None:
            continue
        outcome.annotations.append((info, update))
        last_actions[ref] = {
            "type": "Annotated",
            "reason": "RecommendationChanged",
            "time": iso(given.now_s),
            "previous": {k: info.annotations[k] for k in update if k in info.annotations},
        }
        outcome.events.append(
            Event(
                info.body(), "Normal", EventReason.RECOMMENDATION_ANNOTATED,
                wanted["rightsizer.dev/summary"],
            )
        )  # fmt: skip
    return last_actions


def _conditions(
    given: ReconcileInput, t: Totals, workloads: int, conflicts: Mapping[str, str],
    read: UsageRead, outcome: Outcome,
) -> list[dict[str, Any]]:  # fmt: skip
    """The policy's conditions, merged with the previous ones; an Event for each change a
    person should hear of (source lost or back, a new conflict) into ``outcome``."""
    source_error, refused = read.source_error, read.refused
    has_data = t.containers > 0
    source_reason = EventReason.SOURCE_REFUSED if refused else "SourceError"
    conditions = [
        Condition(
            ConditionType.SOURCE_UNAVAILABLE, source_error is not None,
            source_reason if source_error else "SourcesReachable", source_error or "",
        ),
        Condition(
            ConditionType.RECOMMENDATIONS_AVAILABLE, has_data,
            "Computed" if has_data else "NoData",
            f"{t.containers} containers" if has_data else "no container has enough usage data yet",
        ),
        Condition(
            ConditionType.INSUFFICIENT_DATA, t.insufficient_data > 0,
            "TooLittleHistory" if t.insufficient_data else "EnoughData",
            f"{t.insufficient_data} containers have less than {MIN_HISTORY_S / 3600:g} h or "
            f"{MIN_SAMPLES} samples" if t.insufficient_data else "",
        ),
        Condition(
            ConditionType.CONFLICT, bool(conflicts),
            "SelectedByOlderPolicy" if conflicts else "NoConflict",
            conflict_message(given.policy.namespace, conflicts),
        ),
        Condition(
            ConditionType.READY, source_error is None,
            "Reconciled" if source_error is None
            else ("SourceRefused" if refused else "SourceUnavailable"),
            f"{workloads} workloads, {t.containers} containers with recommendations"
            if source_error is None else source_error,
        ),
    ]  # fmt: skip
    previous = given.previous_conditions
    merged = merge_conditions(previous, conditions, given.now_s, given.generation)
    for cond in merged:
        before = _condition_status(previous, cond["type"])
        if cond["type"] == ConditionType.SOURCE_UNAVAILABLE and cond["status"] != before:
            if cond["status"] == "True":
                reason = EventReason.SOURCE_REFUSED if refused else EventReason.SOURCE_UNAVAILABLE
                outcome.events.append(Event(None, "Warning", reason, cond["message"]))
            elif before == "True":
                outcome.events.append(
                    Event(None, "Normal", EventReason.SOURCE_RECOVERED, "sources reachable again")
                )
        if cond["type"] == ConditionType.CONFLICT and cond["status"] == "True" and before != "True":
            outcome.events.append(Event(None, "Warning", EventReason.CONFLICT, cond["message"]))
    return merged


def _history(given: ReconcileInput, runtime: PolicyRuntime, outcome: Outcome) -> dict[str, Any]:
    """The status's ``history``; the checkpoint to save, when one is due, into ``outcome``."""
    history: dict[str, Any] = {"bootstrapped": runtime.bootstrapped}
    if runtime.read_until_s is not None:
        history["readUntil"] = iso(runtime.read_until_s)
    state = _state(runtime)
    if checkpoints.supports(state) and runtime.read_until_s is not None:
        history["checkpoint"] = checkpoint_name(given.policy.name)
        if given.now_s - runtime.last_checkpoint_s >= CHECKPOINT_INTERVAL_S:
            outcome.checkpoint = checkpoints.encode(
                runtime.registry, state, runtime.read_until_s, runtime.signature
            )
            runtime.last_checkpoint_s = given.now_s
        history["lastCheckpointTime"] = iso(runtime.last_checkpoint_s)
    return history
