"""One Apply-mode pass over a policy's workloads (orchestration; decisions are pure in
``guardrails``, writes go through the ports given).

Runs on every tick of a policy in Apply mode, with the recommendations of its last
reconcile and the workloads as the indexes see them now, so a namespace losing its
opt-in label, a rollout finishing or a cooldown ending take effect at the next tick.
For each workload it first watches our own last write (reverting it when the rollout
fails), then decides whether to write again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rightsizer.actuation.resources import ResourcesWrite, WriteRejectedError
from rightsizer.controller.reconcile import Event
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.apply import (
    ApplyContext,
    ApplySettings,
    Decision,
    Hold,
    QuotaRoom,
    applied_record,
    decide,
)
from rightsizer.guardrails.record import AppliedRecord, parse_record, record_json, revert_record
from rightsizer.guardrails.rollout import PodHealth, pod_failure, pod_health, rollout_state
from rightsizer.guardrails.rollout import watched as watched_rollout
from rightsizer.model.assessment import Assessment
from rightsizer.model.workloads import WorkloadInfo, workload_info
from rightsizer.names import (
    AUTO_APPLY_ENABLED,
    AUTO_APPLY_LABEL,
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
    """The status form of a write: what was there before and what was written."""
    return {
        "type": record.state,
        "reason": record.reason,
        "time": iso(record.time_s),
        "previous": _pairs_json(record.previous),
        "applied": _pairs_json(record.applied),
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


def apply_pass(
    *,
    policy: str,
    generation: int,
    settings: ApplySettings,
    rows: Sequence[Assessment],
    workloads: Sequence[WorkloadInfo],
    namespace_labels: Mapping[str, str],
    hpas: Sequence[tuple[str, tuple[str, ...]]],
    quotas: Sequence[Mapping[str, Any]],
    limit_ranges: Sequence[LimitRangeItem],
    previous_states: Mapping[str, Mapping[str, Any]],
    pod_checks: dict[str, float],
    now_s: float,
    ports: ApplyPorts,
    source_ok: bool = True,
) -> ApplyResult:
    """``pod_checks`` (namespace → last pod check) is the caller's memory between passes."""
    if namespace_labels.get(AUTO_APPLY_LABEL) != AUTO_APPLY_ENABLED:
        return ApplyResult(
            Condition(ConditionType.AUTO_APPLY_BLOCKED, True, "NamespaceNotOptedIn",
                      f"label the namespace {AUTO_APPLY_LABEL}=enabled to allow writes"),
        )  # fmt: skip
    result = ApplyResult(Condition(ConditionType.AUTO_APPLY_BLOCKED, False, "NamespaceOptedIn", ""))
    by_workload: dict[str, list[Assessment]] = {}
    for row in rows:
        by_workload.setdefault(row.recommendation.workload, []).append(row)
    hpa_resources: dict[str, set[str]] = {}
    for target, resources in hpas:
        hpa_resources.setdefault(target, set()).update(resources)
    rooms = quota_rooms(quotas)
    records = {w.ref: record_of(w) for w in workloads}
    in_flight = sum(
        1
        for w in workloads
        if (r := records[w.ref]) is not None
        and r.policy == policy
        and r.state == "Applied"
        and not rollout_state(w.rollout).complete
    )

    watched = {
        w.ref
        for w in workloads
        if (r := records[w.ref]) is not None
        and r.policy == policy
        and r.state == "Applied"
        and watched_rollout(w.rollout, now_s - r.time_s)
    }
    pods: list[PodHealth] | None = None
    if watched and workloads and now_s - pod_checks.get("", 0.0) >= POD_CHECK_INTERVAL_S:
        pod_checks[""] = now_s
        pods = [pod_health(p) for p in ports.pods(workloads[0].namespace)]
        result.api_requests += 1

    by_ref = {w.ref: w for w in workloads}

    def emit(event: Event) -> None:
        result.events.append(event)
        ports.event(event)

    def state(ref: str, kind: str, hold: Hold | None, message: str = "") -> None:
        entry = {"state": kind, "reason": hold.reason if hold else kind,
                 "message": hold.message if hold else message}  # fmt: skip
        result.states[ref] = entry
        before = previous_states.get(ref) or {}
        if hold is None or before.get("reason") == hold.reason:
            return
        record = records.get(ref)
        if (
            hold.reason in AFTER_OUR_WRITE
            and record is not None
            and record.policy == policy
            and record.state == "Applied"
        ):
            return  # the ResourcesApplied Event already told: no Event per consequence
        emit(Event(by_ref[ref].body(), "Normal", hold.reason, hold.message))

    for w in sorted(workloads, key=lambda w: w.ref):
        record = records[w.ref]
        if record is not None and record.policy == policy:
            result.last_actions[w.ref] = last_action(record)  # survives a lost status write
        # -- watch our last write ------------------------------------------------------------
        if record is not None and w.ref in watched:
            failure = rollout_state(w.rollout).failed
            if failure is None and pods is not None:
                mine = [p for p in pods if p.selected_by(w.selector)]
                failure = pod_failure(mine, record.time_s)
            if failure is not None:
                revert = revert_record(record, failure, now_s)
                try:
                    _, requests = ports.write(_write_of(w, revert), None)
                    result.api_requests += requests
                except WriteRejectedError as exc:
                    state(
                        w.ref,
                        "Held",
                        Hold(HoldReason.REVERT_FAILED, f"{failure}; revert refused: {exc}"),
                    )
                    continue
                result.writes += 1
                result.last_actions[w.ref] = last_action(revert)
                emit(
                    Event(w.body(), "Warning", EventReason.ROLLOUT_FAILED,
                          f"{failure}; reverted to the previous resources and held until the "
                          f"policy changes")
                )  # fmt: skip
                state(
                    w.ref,
                    "Held",
                    Hold(HoldReason.HELD_AFTER_FAILED_ROLLOUT, f"reverted: {failure}"),
                )
                continue
        # -- decide and write ----------------------------------------------------------------
        group = by_workload.get(w.ref)
        if not group:
            continue
        if not source_ok:  # recommendations only ever from complete reads: wait
            state(
                w.ref,
                "Held",
                Hold(HoldReason.SOURCE_UNAVAILABLE, "usage source failing; no writes"),
            )
            continue

        def context(info: WorkloadInfo, flight: int) -> ApplyContext:
            return ApplyContext(
                settings=settings, now_s=now_s, policy=policy, policy_generation=generation,
                hpa_resources=frozenset(hpa_resources.get(info.ref, set())), quotas=rooms,
                limit_ranges=limit_ranges, rollouts_in_flight=flight,
                rollout=rollout_state(info.rollout), record=record_of(info),
                surge_pods=info.rollout.surge_pods,
            )  # fmt: skip

        def redecide(
            fresh: dict[str, Any], kind: str = w.kind, flight: int = in_flight
        ) -> ResourcesWrite | None:
            info = workload_info(kind, fresh)
            ctx = context(info, flight)
            again = decide(info, by_workload.get(info.ref, []), ctx)
            return _plan(again, info, ctx) if again.writes else None

        ctx = context(w, in_flight)
        decision = decide(w, group, ctx)
        if not decision.writes:
            state(w.ref, "Held", decision.hold)
            continue
        try:
            written, requests = ports.write(_plan(decision, w, ctx), redecide)
            result.api_requests += requests
        except WriteRejectedError as exc:
            state(w.ref, "Held", Hold(HoldReason.APPLY_REJECTED, str(exc)))
            continue
        if written is None:
            continue
        rec_data = parse_record(written.record)
        assert rec_data is not None
        in_flight += 1
        result.writes += 1
        result.last_actions[w.ref] = last_action(rec_data)
        changes = "; ".join(c.text() for c in decision.changes)
        notes = "; ".join(n for n in decision.notes if n)
        emit(
            Event(w.body(), "Normal", EventReason.RESOURCES_APPLIED,
                  changes + (f" ({notes})" if notes else "") + f" by policy {policy}")
        )  # fmt: skip
        state(w.ref, "Applied", None, changes)
    return result
