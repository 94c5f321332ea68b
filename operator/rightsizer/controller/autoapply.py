"""One Apply-mode pass over a policy's workloads (orchestration; decisions are pure in
``guardrails``, writes go through the ports given).

Runs on every tick of a policy in Apply mode, with the recommendations of its last
reconcile and the workloads as the indexes see them now, so a namespace losing its
opt-in label, a rollout finishing or a cooldown ending take effect at the next tick.
For each workload it first watches our own last write (reverting it when the rollout
fails), then decides whether to write again. A policy's first pass in a process also posts
the Events of its recent writes that a crash lost (``guardrails.events``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rightsizer.actuation.hpa import HpaChangedError
from rightsizer.actuation.kubernetes import AnnotateConflictError
from rightsizer.actuation.pods import ResizeConflictError
from rightsizer.actuation.resources import ResourcesWrite, WriteRejectedError
from rightsizer.controller.reconcile import Event
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.apply import (
    ApplyContext,
    ApplySettings,
    ContainerChange,
    Decision,
    Hold,
    HpaPlan,
    QuotaRoom,
    applied_record,
    decide,
    quota_shortfall,
)
from rightsizer.guardrails.events import (
    PostedEvent,
    applied_message,
    failed_message,
    lacks_event,
    posted_event,
    replay_due,
    write_event,
)
from rightsizer.guardrails.record import (
    AppliedRecord,
    HpaTarget,
    hpa_target_json,
    parse_record,
    record_json,
    revert_record,
)
from rightsizer.guardrails.rollout import (
    PodHealth,
    RolloutWatch,
    pod_failure,
    pod_health,
    rollout_state,
)
from rightsizer.guardrails.rollout import watched as watched_rollout
from rightsizer.model.assessment import Assessment
from rightsizer.model.hpa import HpaInfo, TargetChange, revert_changes
from rightsizer.model.inplace import (
    InPlaceLimits,
    InPlacePlan,
    InPlaceState,
    UpdateMethod,
    pairs_of,
    parse_pod_resources,
    plan_workload,
    pod_resources_text,
    pods_of,
    resizing_pods,
    sized_containers,
)
from rightsizer.model.pods import PodInfo, plan_resize, pod_info
from rightsizer.model.workloads import ContainerResources, WorkloadInfo, workload_info
from rightsizer.names import (
    AUTO_APPLY_ENABLED,
    AUTO_APPLY_LABEL,
    POD_RESOURCES_ANNOTATION,
    RECORD_ANNOTATION,
    ConditionType,
    EventReason,
    HoldReason,
)
from rightsizer.quantity import QuantityError, parse_quantity, quantities
from rightsizer.status.build import Condition, iso

#: How often the pods of watched rollouts are listed (how long a rollout is watched:
#: ``guardrails.rollout.watch_s``).
POD_CHECK_INTERVAL_S = 30.0
#: Holds that follow from our own write (its rollout, its cooldown): status only.
AFTER_OUR_WRITE = frozenset({HoldReason.ROLLOUT_IN_PROGRESS, HoldReason.COOLDOWN})


@dataclass
class ApplyPorts:
    write: Callable[
        [ResourcesWrite, Callable[[dict[str, Any]], ResourcesWrite | None] | None],
        tuple[ResourcesWrite | None, int],
    ]
    """Dry-run + server-side apply (``actuation.resources.write``); raises
    ``WriteRejectedError``."""
    pods: Callable[[str], Sequence[Mapping[str, Any]]]
    """All pods of a namespace (one list request, however many workloads are watched)."""
    event: Callable[[Event], None] = field(default=lambda event: None)
    """Posts an Event at once: each write's Event goes out right after the write, so a
    crash later in the pass loses none."""
    events: Callable[[str, str], Sequence[Mapping[str, Any]] | None] = field(
        default=lambda namespace, reason: []
    )
    """The Events of a namespace with a reason (None: they cannot be listed now), to find
    the writes whose Event a crash lost."""
    annotate: Callable[[WorkloadInfo, Mapping[str, str | None], str], None] = field(
        default=lambda workload, annotations, resource_version: None
    )
    """Merge-patch the workload's own annotations (None removes one), with a
    resourceVersion precondition when one is given (``AnnotateConflictError``); raises
    ``WriteRejectedError``. In-place methods only."""
    resize: Callable[[PodInfo, Sequence[ContainerResources]], object] = field(
        default=lambda pod, resize: None
    )
    """Resize a running pod through ``pods/resize``; raises ``WriteRejectedError``."""
    opted_in: Callable[[str], bool] | None = None
    """The namespace's opt-in label read from the API server now, right before an in-place
    write (None: the index's labels are taken as they are)."""
    hpa_read: Callable[[str, str], HpaInfo] | None = None
    """An HPA (namespace, name) as the API server has it now (``Compensate``)."""
    hpa_move: Callable[[HpaInfo, Sequence[TargetChange], bool], object] = field(
        default=lambda hpa, changes, dry_run: None
    )
    """Move an HPA's targets (``actuation.hpa.move_targets``; the bool: dry-run only);
    raises ``HpaChangedError`` (decide again) or ``WriteRejectedError``."""


@dataclass
class ApplyResult:
    condition: Condition
    last_actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → the action taken now (Applied, Reverted)."""
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → ``{state, reason, message}``: what auto-apply does with it now."""
    events: list[Event] = field(default_factory=list)
    writes: int = 0
    api_requests: int = 0
    replayed: bool = False
    """The lost Events of recent writes were looked for (and posted); not again in this
    process."""
    replayed_events: int = 0
    """How many of them were posted."""
    conditions: list[Condition] = field(default_factory=list)
    """More conditions of the policy (``InPlaceResize`` for the in-place methods)."""
    pods_resized: int = 0


def record_of(w: WorkloadInfo) -> AppliedRecord | None:
    text = w.annotations.get(RECORD_ANNOTATION)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return parse_record(data) if isinstance(data, dict) else None


def _pairs_json(m: Mapping[str, tuple[Resources, Resources]]) -> dict[str, Any]:
    return {
        c: {"requests": quantities(r.cpu_millicores, r.memory_bytes),
            "limits": quantities(lim.cpu_millicores, lim.memory_bytes)}
        for c, (r, lim) in sorted(m.items())
    }  # fmt: skip


def last_action(record: AppliedRecord) -> dict[str, Any]:
    """The status form of a write: what was there before and what was written (and the
    HPA targets moved with it: ``hpa``)."""
    return {
        "type": record.state,
        "method": record.method,
        "reason": record.reason,
        "time": iso(record.time_s),
        "previous": _pairs_json(record.previous),
        "applied": _pairs_json(record.applied),
        **({"hpa": [hpa_target_json(h) for h in record.hpa]} if record.hpa else {}),
    }


def _write_of(w: WorkloadInfo, record: AppliedRecord) -> ResourcesWrite:
    """Write ``record.applied`` to the containers it names; others keep what they have.
    No resourceVersion precondition: a revert must land even if the object moved on."""
    return ResourcesWrite(w.kind, w.namespace, w.name, dict(record.applied), record_json(record))


def _plan(decision: Decision, info: WorkloadInfo, ctx: ApplyContext) -> ResourcesWrite:
    record = applied_record(decision, ctx)
    return ResourcesWrite(
        info.kind, info.namespace, info.name,
        {c.container: (c.requests, c.limits) for c in decision.changes}, record_json(record),
        info.resource_version,
    )  # fmt: skip


def quota_rooms(quotas: Sequence[Mapping[str, Any]]) -> list[QuotaRoom]:
    rooms = []
    for q in quotas:
        try:
            hard = {str(k): float(parse_quantity(v)) for k, v in (q.get("hard") or {}).items()}
            used = {str(k): float(parse_quantity(v)) for k, v in (q.get("used") or {}).items()}
        except QuantityError:
            continue
        rooms.append(QuotaRoom(str(q.get("name", "")), hard, used))
    return rooms


@dataclass(frozen=True)
class ApplyInput:
    """Everything one Apply-mode pass decides from, as the caller read it."""

    policy: str
    """``namespace/name`` of the policy."""
    generation: int
    settings: ApplySettings
    rows: Sequence[Assessment]
    """The last reconcile's recommendations."""
    workloads: Sequence[WorkloadInfo]
    """The workloads the policy owns."""
    namespace_labels: Mapping[str, str]
    hpas: Sequence[HpaInfo]
    """The HPAs of the namespace."""
    quotas: Sequence[Mapping[str, Any]]
    limit_ranges: Sequence[LimitRangeItem]
    previous_states: Mapping[str, Mapping[str, Any]]
    """Workload → the state already told (no second Event for the same hold)."""
    now_s: float
    source_ok: bool = True
    """False while the usage source fails: no writes."""
    watch: RolloutWatch = field(default_factory=RolloutWatch)
    """How long our writes' rollouts are watched (install-time settings)."""
    replay_events: bool = False
    """The policy's first pass in this process: post the Events of its recent writes that
    a crash lost (see ``ApplyResult.replayed``)."""
    method: UpdateMethod = UpdateMethod.ROLLOUT
    in_place: InPlaceLimits = field(default_factory=InPlaceLimits)
    resize_served: bool = False
    """The cluster serves ``pods/resize``."""


def apply_pass(inp: ApplyInput, *, ports: ApplyPorts, pod_checks: dict[str, float]) -> ApplyResult:
    """One pass over the policy's workloads: watch our last writes (revert the failed
    ones), then decide and write. ``pod_checks`` is the caller's memory between passes
    (when the namespace's pods were last listed)."""
    run = _ApplyRun(inp, ports)
    if inp.replay_events:
        run.replay_lost_events()
    if inp.namespace_labels.get(AUTO_APPLY_LABEL) != AUTO_APPLY_ENABLED:
        return ApplyResult(
            Condition(ConditionType.AUTO_APPLY_BLOCKED, True, "NamespaceNotOptedIn",
                      f"label the namespace {AUTO_APPLY_LABEL}=enabled to allow writes"),
            events=run.result.events, api_requests=run.result.api_requests,
            replayed=run.result.replayed, replayed_events=run.result.replayed_events,
        )  # fmt: skip
    run.check_pods(pod_checks)
    condition = in_place_condition(inp.method, inp.resize_served)
    if condition is not None:
        run.result.conditions.append(condition)
    for w in sorted(inp.workloads, key=lambda w: w.ref):
        record = run.records[w.ref]
        if record is not None and record.policy == inp.policy:
            run.result.last_actions[w.ref] = last_action(record)  # survives a lost status
        if record is not None and record.policy == inp.policy and record.method == IN_PLACE:
            if inp.resize_served and run.in_place_progress(w, record):
                continue
        elif run.reverted(w):
            continue
        run.decide_and_write(w)
    return run.result


IN_PLACE = "InPlace"
"""``AppliedRecord.method`` of an in-place write."""


def in_place_condition(method: UpdateMethod, served: bool) -> Condition | None:
    """The policy's ``InPlaceResize`` condition (None for the Rollout method)."""
    if method == UpdateMethod.ROLLOUT:
        return None
    if served:
        return Condition(
            ConditionType.IN_PLACE_RESIZE,
            True,
            "Served",
            "the cluster serves pods/resize: running pods are resized in place",
        )
    if method == UpdateMethod.IN_PLACE_OR_ROLLOUT:
        return Condition(ConditionType.IN_PLACE_RESIZE, False, "FallingBackToRollout",
                         "the cluster does not serve pods/resize: changes roll out through "
                         "the pod template")  # fmt: skip
    return Condition(ConditionType.IN_PLACE_RESIZE, False, "NotServed",
                     "the cluster does not serve pods/resize: method InPlace writes nothing; "
                     "use InPlaceOrRollout or Rollout to write the pod template")  # fmt: skip


def pod_resources_after(
    w: WorkloadInfo, policy: str, now_s: float,
    values: Mapping[str, tuple[Resources, Resources]],
) -> str | None:  # fmt: skip
    """The workload's ``pod-resources`` annotation once ``values`` are written to it (the
    containers it named before keep theirs); None when every container it would name has
    the template's values (the annotation goes)."""
    before = parse_pod_resources(w.annotations.get(POD_RESOURCES_ANNOTATION))
    merged = dict(before.containers) if before is not None else {}
    merged.update(values)
    template = {c.name: (c.requests, c.limits) for c in w.containers}
    kept = {c: pair for c, pair in merged.items() if template.get(c) != pair}
    return pod_resources_text(policy, now_s, kept) if kept else None


class _ApplyRun:
    """The state of one pass: what was read once for all workloads, and what it did."""

    def __init__(self, inp: ApplyInput, ports: ApplyPorts) -> None:
        self.inp, self.ports = inp, ports
        self.result = ApplyResult(
            Condition(ConditionType.AUTO_APPLY_BLOCKED, False, "NamespaceOptedIn", "")
        )
        self.by_workload: dict[str, list[Assessment]] = {}
        for row in inp.rows:
            self.by_workload.setdefault(row.recommendation.workload, []).append(row)
        self.hpa_resources: dict[str, set[str]] = {}
        self.hpas: dict[str, list[HpaInfo]] = {}
        for hpa in inp.hpas:
            self.hpa_resources.setdefault(hpa.target_ref, set()).update(hpa.scaled_resources)
            self.hpas.setdefault(hpa.target_ref, []).append(hpa)
        self.rooms = quota_rooms(inp.quotas)
        self.records = {w.ref: record_of(w) for w in inp.workloads}
        self.by_ref = {w.ref: w for w in inp.workloads}
        ours = [
            (w, r)
            for w in inp.workloads
            if (r := self.records[w.ref]) and self._ours_applied(w.ref)
        ]
        self.in_flight = sum(1 for w, _ in ours if not rollout_state(w.rollout).complete)
        self.watched = {
            w.ref for w, r in ours if watched_rollout(w.rollout, inp.now_s - r.time_s, inp.watch)
        }
        self.pods: list[PodHealth] | None = None
        self.in_place = inp.method != UpdateMethod.ROLLOUT and inp.resize_served
        self._pod_infos: list[PodInfo] | None = None
        self._budget: int | None = None
        self._opted_in: bool | None = None

    def _ours_applied(self, ref: str) -> bool:
        record = self.records.get(ref)
        return record is not None and record.policy == self.inp.policy and record.state == "Applied"

    def check_pods(self, pod_checks: dict[str, float]) -> None:
        """List the namespace's pods (once per ``POD_CHECK_INTERVAL_S``) while a rollout
        of ours is watched."""
        now = self.inp.now_s
        if self.watched and now - pod_checks.get("", 0.0) >= POD_CHECK_INTERVAL_S:
            pod_checks[""] = now
            namespace = self.inp.workloads[0].namespace
            self.pods = [pod_health(p) for p in self.ports.pods(namespace)]
            self.result.api_requests += 1

    # -- telling ------------------------------------------------------------------------
    def replay_lost_events(self) -> None:
        """Post the Event of each of this policy's recent writes that has none (a crash
        between a write and its Event's post): one Events list per reason needed."""
        inp = self.inp
        due = [
            (w, record)
            for w in sorted(inp.workloads, key=lambda w: w.ref)
            if replay_due(record := self.records[w.ref], inp.policy, inp.now_s)
            and record is not None
        ]
        if not due:
            self.result.replayed = True
            return
        posted: list[PostedEvent] = []
        for reason in sorted({write_event(record).reason for _, record in due}):
            events = self.ports.events(due[0][0].namespace, reason)
            self.result.api_requests += 1
            if events is None:
                return  # the next pass looks again
            posted.extend(posted_event(e) for e in events)
        for w, record in due:
            if lacks_event(record, w.kind, w.name, posted):
                event = write_event(record)
                self.emit(Event(w.body(), event.type, event.reason, event.message))
                self.result.replayed_events += 1
        self.result.replayed = True

    def emit(self, event: Event) -> None:
        self.result.events.append(event)
        self.ports.event(event)

    def state(self, ref: str, kind: str, hold: Hold | None, message: str = "") -> None:
        """The workload's state now; an Event for a hold not told before (none for the
        holds that follow our own write: its ResourcesApplied Event told)."""
        entry = {"state": kind, "reason": hold.reason if hold else kind,
                 "message": hold.message if hold else message}  # fmt: skip
        told_now = self.result.states.get(ref) or {}
        self.result.states[ref] = entry
        before = self.inp.previous_states.get(ref) or {}
        if hold is None or hold.reason in (before.get("reason"), told_now.get("reason")):
            return
        if hold.reason in AFTER_OUR_WRITE and self._ours_applied(ref):
            return
        self.emit(Event(self.by_ref[ref].body(), "Normal", hold.reason, hold.message))

    # -- watch our last write -----------------------------------------------------------
    def reverted(self, w: WorkloadInfo) -> bool:
        """Revert our last write if its rollout failed; True when the workload is done
        with for this pass."""
        record = self.records[w.ref]
        if record is None or w.ref not in self.watched:
            return False
        failure = rollout_state(w.rollout).failed
        if failure is None and self.pods is not None:
            mine = [p for p in self.pods if p.selected_by(w.selector)]
            failure = pod_failure(mine, record.time_s)
        if failure is None:
            return False
        revert = revert_record(record, failure, self.inp.now_s)
        try:
            _, requests = self.ports.write(_write_of(w, revert), None)
            self.result.api_requests += requests
        except WriteRejectedError as exc:
            why = f"{failure}; revert refused: {exc}"
            self.state(w.ref, "Held", Hold(HoldReason.REVERT_FAILED, why))
            return True
        self.result.writes += 1
        self.result.last_actions[w.ref] = last_action(revert)
        self.emit(Event(w.body(), "Warning", EventReason.ROLLOUT_FAILED, failed_message(failure)))
        self.revert_hpas(w, revert)
        self.state(
            w.ref, "Held", Hold(HoldReason.HELD_AFTER_FAILED_ROLLOUT, f"reverted: {failure}")
        )
        return True

    # -- decide and write ---------------------------------------------------------------
    def context(self, info: WorkloadInfo, flight: int) -> ApplyContext:
        inp = self.inp
        return ApplyContext(
            settings=inp.settings, now_s=inp.now_s, policy=inp.policy,
            policy_generation=inp.generation,
            hpa_resources=frozenset(self.hpa_resources.get(info.ref, set())), quotas=self.rooms,
            hpas=tuple(self.hpas.get(info.ref, ())),
            limit_ranges=inp.limit_ranges, rollouts_in_flight=flight,
            rollout=rollout_state(info.rollout), record=record_of(info),
            surge_pods=info.rollout.surge_pods,
        )  # fmt: skip

    def redecide(
        self, kind: str, fresh: dict[str, Any], flight: int,
        hpa_moved: tuple[HpaTarget, ...] = (),
    ) -> ResourcesWrite | None:  # fmt: skip
        """After a 409: the decision again, on the workload as it is now. With HPA targets
        already moved for the first decision, a new decision that would move them
        differently writes nothing now (they are put back; the next pass decides again)."""
        info = workload_info(kind, fresh)
        ctx = self.context(info, flight)
        again = decide(info, self.by_workload.get(info.ref, []), ctx)
        if again.writes and again.hpa_targets() != hpa_moved:
            return None
        return _plan(again, info, ctx) if again.writes else None

    # -- HPA targets (``hpaResources: Compensate``) ----------------------------------------
    def move_hpas(
        self, w: WorkloadInfo, decision: Decision, ctx: ApplyContext
    ) -> tuple[Decision, ApplyContext] | None:
        """Move the HPA targets ``decision`` goes with: all dry-run first, then for real.
        A target moved meanwhile: the HPAs read again and the workload decided again (a
        few times). None when nothing is to be written now (the hold is told)."""
        for _ in range(3):
            done: list[HpaPlan] = []
            try:
                for dry_run in (True, False):
                    for plan in decision.hpa:
                        self.ports.hpa_move(plan.hpa, plan.changes, dry_run)
                        self.result.api_requests += 1
                        if not dry_run:
                            done.append(plan)
                            self.result.writes += 1
            except HpaChangedError:
                self.put_back(done)
                read = self.ports.hpa_read
                if read is None:
                    break
                fresh = tuple(read(h.namespace, h.name) for h in ctx.hpas)
                self.result.api_requests += len(fresh)
                self.hpas[w.ref] = list(fresh)
                ctx = replace(ctx, hpas=fresh)
                decision = decide(w, self.by_workload.get(w.ref, []), ctx)
                if not decision.writes:
                    self.state(w.ref, "Held", decision.hold)
                    return None
                if not decision.hpa:
                    return decision, ctx
                continue
            except WriteRejectedError as exc:
                self.put_back(done)
                self.state(w.ref, "Held", Hold(HoldReason.APPLY_REJECTED, f"HPA: {exc}"))
                return None
            for plan in decision.hpa:
                text = "; ".join(c.describe() for c in plan.changes)
                self.emit(Event(plan.hpa.body(), "Normal", EventReason.HPA_TARGET_MOVED,
                                f"{text}: moved with the requests of {w.ref} by policy "
                                f"{self.inp.policy} (hpaResources Compensate)"))  # fmt: skip
            return decision, ctx
        why = "the HPA's target kept moving while we wrote it"
        self.state(w.ref, "Held", Hold(HoldReason.HPA_CHANGED, why))
        return None

    def put_back(self, plans: Sequence[HpaPlan]) -> None:
        """Undo HPA target moves of this pass whose workload write did not happen."""
        for plan in plans:
            back = revert_changes(plan.changes)
            with contextlib.suppress(HpaChangedError, WriteRejectedError):  # someone set it
                self.ports.hpa_move(replace(plan.hpa, has_annotations=True), back, False)
            self.result.api_requests += 1

    def revert_hpas(self, w: WorkloadInfo, revert: AppliedRecord) -> None:
        """Put back the HPA targets moved with a write being reverted (``revert.hpa``: the
        moves that undo them), each only if it is still the one we set; an Event each."""
        read = self.ports.hpa_read
        if not revert.hpa or read is None:
            return
        for name in sorted({h.hpa for h in revert.hpa}):
            try:
                info = read(w.namespace, name)
                self.result.api_requests += 1
                changes = []
                for h in revert.hpa:
                    metric = info.metric(h.index) if h.hpa == name else None
                    if metric is not None:
                        changes.append(TargetChange(metric, h.before_percent, h.after_percent,
                                                    0, 0))  # fmt: skip
                self.ports.hpa_move(info, changes, False)
                self.result.api_requests += 1
            except Exception as exc:  # moved by someone since, refused, gone (404)
                why = str(exc) if isinstance(exc, HpaChangedError | WriteRejectedError) else (
                    type(exc).__name__)  # fmt: skip
                self.emit(Event(w.body(), "Warning", EventReason.HPA_TARGET_MOVED,
                                f"HPA {name}: target not put back ({why})"))  # fmt: skip
                continue
            self.result.writes += 1
            text = ", ".join(h.text() for h in revert.hpa if h.hpa == name)
            self.emit(
                Event(
                    info.body(),
                    "Normal",
                    EventReason.HPA_TARGET_MOVED,
                    f"put back with the requests of {w.ref}: {text} ({revert.reason})",
                )
            )

    def decide_and_write(self, w: WorkloadInfo) -> None:
        group = self.by_workload.get(w.ref)
        if not group:
            return
        if not self.inp.source_ok:  # recommendations only ever from complete reads: wait
            hold = Hold(HoldReason.SOURCE_UNAVAILABLE, "usage source failing; no writes")
            self.state(w.ref, "Held", hold)
            return
        if self.inp.method == UpdateMethod.IN_PLACE and not self.inp.resize_served:
            hold = Hold(HoldReason.IN_PLACE_UNAVAILABLE,
                        "method InPlace, and the cluster does not serve pods/resize")  # fmt: skip
            self.state(w.ref, "Held", hold)
            return
        if self.in_place:
            self.decide_in_place(w, group)
            return
        flight = self.in_flight
        ctx = self.context(w, flight)
        decision = decide(w, group, ctx)
        if not decision.writes:
            self.state(w.ref, "Held", decision.hold)
            return
        if decision.hpa:
            moved = self.move_hpas(w, decision, ctx)
            if moved is None:
                return
            decision, ctx = moved
        targets = decision.hpa_targets()
        try:
            written, requests = self.ports.write(
                _plan(decision, w, ctx),
                lambda fresh: self.redecide(w.kind, fresh, flight, targets),
            )
            self.result.api_requests += requests
        except WriteRejectedError as exc:
            self.put_back(decision.hpa)
            self.state(w.ref, "Held", Hold(HoldReason.APPLY_REJECTED, str(exc)))
            return
        if written is None:
            self.put_back(decision.hpa)
            return
        self._applied(w, decision, written)

    def _applied(self, w: WorkloadInfo, decision: Decision, written: ResourcesWrite) -> None:
        rec_data = parse_record(written.record)
        assert rec_data is not None
        self.in_flight += 1
        self.result.writes += 1
        self.result.last_actions[w.ref] = last_action(rec_data)
        message = applied_message(decision.changes, _with_hpa(decision), self.inp.policy)
        self.emit(Event(w.body(), "Normal", EventReason.RESOURCES_APPLIED, message))
        self.state(w.ref, "Applied", None, _applied_text(decision))

    # -- in place -----------------------------------------------------------------------
    def namespace_pods(self) -> list[PodInfo]:
        """The namespace's pods, listed once per pass."""
        if self._pod_infos is None:
            namespace = self.inp.workloads[0].namespace
            self._pod_infos = [pod_info(p) for p in self.ports.pods(namespace)]
            self.result.api_requests += 1
        return self._pod_infos

    def budget(self) -> int:
        """How many more pods of the namespace may be asked now."""
        if self._budget is None:
            flying = resizing_pods(self.namespace_pods())
            self._budget = max(0, self.inp.in_place.max_pods_per_namespace - flying)
        return self._budget

    def opted_in(self, ref: str) -> bool:
        """The opt-in label read right before the pass's first in-place write."""
        if self._opted_in is None:
            ask = self.ports.opted_in
            self._opted_in = True if ask is None else ask(self.by_ref[ref].namespace)
            self.result.api_requests += int(ask is not None)
        if not self._opted_in:
            hold = Hold(HoldReason.APPLY_REJECTED,
                        f"the namespace lost its {AUTO_APPLY_LABEL}=enabled label")  # fmt: skip
            self.state(ref, "Held", hold)
        return self._opted_in

    def decide_in_place(self, w: WorkloadInfo, group: Sequence[Assessment]) -> None:
        """Decide on the values the pods are sized to (the annotation's, else the
        template's); write them to the annotation with the record, then resize pods."""
        inp = self.inp
        sized = parse_pod_resources(w.annotations.get(POD_RESOURCES_ANNOTATION))
        effective = replace(w, containers=sized_containers(w.containers, sized))
        ctx = replace(self.context(effective, 0), surge_pods=0)
        decision = decide(effective, group, ctx)
        if not decision.writes:
            self.state(w.ref, "Held", decision.hold)
            return
        wanted = {c.container: ContainerResources(c.container, c.requests, c.limits)
                  for c in decision.changes}  # fmt: skip
        for pod in pods_of(self.namespace_pods(), w.selector):
            refused = plan_resize(pod, wanted).refused
            if refused and "QoS" in refused:
                self.state(w.ref, "Held", Hold(HoldReason.QOS_CLASS_WOULD_CHANGE,
                                               f"pod {pod.name}: {refused}"))  # fmt: skip
                return
        if not self.opted_in(w.ref):
            return
        if decision.hpa:
            moved = self.move_hpas(effective, decision, ctx)
            if moved is None:
                return
            decision, ctx = moved
        record = replace(applied_record(decision, ctx), method=IN_PLACE)
        values = {c.container: (c.requests, c.limits) for c in decision.changes}
        annotations = {
            RECORD_ANNOTATION: json.dumps(record_json(record), separators=(",", ":")),
            POD_RESOURCES_ANNOTATION: pod_resources_after(w, inp.policy, inp.now_s, values),
        }
        try:
            self.ports.annotate(w, annotations, w.resource_version)
            self.result.api_requests += 1
        except AnnotateConflictError:
            self.result.api_requests += 1
            self.put_back(decision.hpa)
            return  # the workload moved on: decided again at the next pass
        except WriteRejectedError as exc:
            self.put_back(decision.hpa)
            self.state(w.ref, "Held", Hold(HoldReason.APPLY_REJECTED, str(exc)))
            return
        self.result.writes += 1
        self.records[w.ref] = record
        self.result.last_actions[w.ref] = last_action(record)
        message = applied_message(decision.changes, _with_hpa(decision), inp.policy)
        self.emit(Event(w.body(), "Normal", EventReason.RESOURCES_APPLIED,
                        f"in place (pods resized, template unchanged): {message}"))  # fmt: skip
        self.in_place_progress(w, record)

    def in_place_progress(self, w: WorkloadInfo, record: AppliedRecord) -> bool:
        """Bring the workload's running pods to ``record.applied``, a few at a time, and
        act on what they say. True when the workload is done with for this pass (False:
        every pod has the values in force; decide again)."""
        inp = self.inp
        applied = record.state == "Applied"
        watch_oom = applied and inp.now_s - record.time_s < inp.watch.min_s
        plan = plan_workload(
            pods_of(self.namespace_pods(), w.selector), pairs_of(record.applied),
            since_s=record.time_s if watch_oom else float("inf"), now_s=inp.now_s,
            limits=inp.in_place, budget=self.budget(),
            restarts_allowed=self.in_flight < inp.settings.max_concurrent_rollouts,
        )  # fmt: skip
        if plan.restarting:
            self.in_flight += 1  # a resize that restarts containers counts as a rollout
        if plan.state == InPlaceState.DONE:
            return False
        if plan.state == InPlaceState.OOM_KILLED:
            self.revert_in_place(w, record, plan.message)
        elif plan.state == InPlaceState.ERROR:
            self.state(w.ref, "Held", Hold(HoldReason.RESIZE_ERROR, plan.message))
        elif plan.state == InPlaceState.INFEASIBLE:
            if not (
                applied and inp.method == UpdateMethod.IN_PLACE_OR_ROLLOUT
                and self.fallback_rollout(w, record, plan.message)
            ):  # fmt: skip
                self.state(w.ref, "Held", Hold(HoldReason.RESIZE_INFEASIBLE, plan.message))
        elif plan.state == InPlaceState.REFUSED:
            self.state(w.ref, "Held", Hold(HoldReason.QOS_CLASS_WOULD_CHANGE, plan.message))
        elif plan.state == InPlaceState.RESTARTS_HELD:
            self.state(w.ref, "Held", Hold(HoldReason.ROLLOUT_LIMIT, plan.message))
        else:
            self.resize_pods(w, record, plan)
        return True

    def resize_pods(self, w: WorkloadInfo, record: AppliedRecord, plan: InPlacePlan) -> None:
        resized: list[str] = []
        if plan.resize and not self.opted_in(w.ref):
            return
        for pod, decision in plan.resize:
            try:
                self.ports.resize(pod, decision.resize)
            except ResizeConflictError:
                continue  # the pod moved on: looked at again at the next pass
            except WriteRejectedError as exc:
                self.state(w.ref, "Held", Hold(HoldReason.APPLY_REJECTED, f"pod {pod.name}: {exc}"))
                return
            finally:
                self.result.api_requests += 1
            resized.append(pod.name)
            self._budget = self.budget() - 1
        self.result.writes += len(resized)
        self.result.pods_resized += len(resized)
        if resized:
            what = "put back" if record.state == "Reverted" else "resized in place"
            self.emit(Event(w.body(), "Normal", EventReason.PODS_RESIZED,
                            f"{what}: {', '.join(resized)} ({plan.in_force}/{plan.pods} pods "
                            "had the values in force before)"))  # fmt: skip
        progress = (
            f"{plan.in_force}/{plan.pods} pods in force, {plan.in_flight + len(resized)} resizing"
        )
        if record.state == "Reverted":
            hold = Hold(
                HoldReason.HELD_AFTER_FAILED_ROLLOUT, f"{record.reason}; putting back: {progress}"
            )
            self.state(w.ref, "Held", hold)
            return
        self.result.states[w.ref] = {"state": "Applied", "reason": HoldReason.RESIZING,
                                     "message": progress}  # fmt: skip

    def revert_in_place(self, w: WorkloadInfo, record: AppliedRecord, failure: str) -> None:
        """Put the previous values back (the annotation now, the pods from now on) and hold
        the workload, as after a failed rollout."""
        inp = self.inp
        revert = revert_record(record, failure, inp.now_s)
        annotations = {
            RECORD_ANNOTATION: json.dumps(record_json(revert), separators=(",", ":")),
            POD_RESOURCES_ANNOTATION: pod_resources_after(w, inp.policy, inp.now_s, revert.applied),
        }
        try:
            self.ports.annotate(w, annotations, "")  # a revert lands whatever moved since
            self.result.api_requests += 1
        except (WriteRejectedError, AnnotateConflictError) as exc:
            why = f"{failure}; revert refused: {exc}"
            self.state(w.ref, "Held", Hold(HoldReason.REVERT_FAILED, why))
            return
        self.result.writes += 1
        self.records[w.ref] = revert
        self.result.last_actions[w.ref] = last_action(revert)
        self.emit(Event(w.body(), "Warning", EventReason.RESIZE_FAILED,
                        f"{failure}: previous values put back (annotation and pods); held "
                        "until the policy changes"))  # fmt: skip
        self.revert_hpas(w, revert)
        self.state(
            w.ref, "Held", Hold(HoldReason.HELD_AFTER_FAILED_ROLLOUT, f"reverted: {failure}")
        )
        self.in_place_progress(w, revert)

    def fallback_rollout(self, w: WorkloadInfo, record: AppliedRecord, why: str) -> bool:
        """``InPlaceOrRollout``: write ``record.applied`` to the pod template instead, where
        the guardrails of a rollout allow it now (no rollout going, the rollout limit, the
        quota with surge pods); the annotation goes, the template carries the values."""
        inp = self.inp
        if not rollout_state(w.rollout).complete:
            return False
        if self.in_flight >= inp.settings.max_concurrent_rollouts:
            return False
        template = {c.name: (c.requests, c.limits) for c in w.containers}
        changes = [
            ContainerChange(c, *template.get(c, (Resources(), Resources())), req, lim)
            for c, (req, lim) in sorted(record.applied.items())
        ]
        if quota_shortfall(changes, w.replicas, w.rollout.surge_pods, self.rooms):
            return False
        if not self.opted_in(w.ref):
            return True
        rolled = AppliedRecord(
            policy=inp.policy, generation=inp.generation, time_s=inp.now_s, state="Applied",
            reason="InPlaceInfeasible", previous=record.previous, applied=record.applied,
            hpa=record.hpa,
        )  # fmt: skip
        plan = ResourcesWrite(w.kind, w.namespace, w.name, dict(record.applied),
                              record_json(rolled))  # fmt: skip
        try:
            _, requests = self.ports.write(plan, None)
            self.result.api_requests += requests
            self.ports.annotate(w, {POD_RESOURCES_ANNOTATION: None}, "")
            self.result.api_requests += 1
        except (WriteRejectedError, AnnotateConflictError) as exc:
            self.state(w.ref, "Held", Hold(HoldReason.APPLY_REJECTED, f"{why}; rollout: {exc}"))
            return True
        self.in_flight += 1
        self.result.writes += 1
        self.records[w.ref] = rolled
        self.result.last_actions[w.ref] = last_action(rolled)
        self.emit(Event(w.body(), "Normal", EventReason.RESOURCES_APPLIED,
                        f"rolled out through the pod template: the in-place resize is not "
                        f"possible ({why})"))  # fmt: skip
        self.state(w.ref, "Applied", None, f"rolled out instead: {why}")
        return True


def _with_hpa(decision: Decision) -> tuple[str, ...]:
    """The decision's notes, the HPA targets it moves first."""
    moved = tuple(c.describe() for p in decision.hpa for c in p.changes)
    return moved + decision.notes


def _applied_text(decision: Decision) -> str:
    """The state message of a write: the request changes, then the HPA targets moved."""
    text = "; ".join(c.text() for c in decision.changes)
    moved = "; ".join(t.text() for t in decision.hpa_targets())
    return text + (f"; {moved}" if moved else "")
