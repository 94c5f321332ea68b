"""The state of one Apply-mode pass and how it tells what it does (states, Events)."""

from __future__ import annotations

from rightsizer.controller.apply.ports import ApplyInput, ApplyPorts, ApplyResult
from rightsizer.controller.apply.records import quota_rooms, record_of
from rightsizer.controller.reconcile import Event
from rightsizer.guardrails.apply import (
    ApplyContext,
    Decision,
    Hold,
)
from rightsizer.guardrails.events import (
    PostedEvent,
    lacks_event,
    posted_event,
    replay_due,
    write_event,
)
from rightsizer.guardrails.rollout import (
    PodHealth,
    pod_health,
    rollout_state,
)
from rightsizer.guardrails.rollout import watched as watched_rollout
from rightsizer.model.assessment import Assessment
from rightsizer.model.hpa import HpaInfo
from rightsizer.model.inplace import (
    UpdateMethod,
)
from rightsizer.model.pods import PodInfo
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.names import (
    ConditionType,
    HoldReason,
)
from rightsizer.status.build import Condition

#: How often the pods of watched rollouts are listed (how long a rollout is watched:
#: ``guardrails.rollout.watch_s``).
POD_CHECK_INTERVAL_S = 30.0
#: Holds that follow from our own write (its rollout, its cooldown): status only.
AFTER_OUR_WRITE = frozenset({HoldReason.ROLLOUT_IN_PROGRESS, HoldReason.COOLDOWN})


class PassState:
    """The state of one pass: what was read once for all workloads, and what it did; how
    it is told (status states, Events)."""

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


def with_hpa_notes(decision: Decision) -> tuple[str, ...]:
    """The decision's notes, the HPA targets it moves first."""
    moved = tuple(c.describe() for p in decision.hpa for c in p.changes)
    return moved + decision.notes


def applied_text(decision: Decision) -> str:
    """The state message of a write: the request changes, then the HPA targets moved."""
    text = "; ".join(c.text() for c in decision.changes)
    moved = "; ".join(t.text() for t in decision.hpa_targets())
    return text + (f"; {moved}" if moved else "")
