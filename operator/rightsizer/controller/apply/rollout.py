"""Writes through the pod template (the ``Rollout`` method): decide, write with a
resourceVersion precondition (decide again after a 409), watch the rollout, revert it."""

from __future__ import annotations

from typing import Any

from rightsizer.actuation.resources import ResourcesWrite, WriteRejectedError
from rightsizer.controller.apply.in_place import InPlaceSteps
from rightsizer.controller.apply.records import last_action
from rightsizer.controller.apply.state import applied_text, with_hpa_notes
from rightsizer.controller.reconcile import Event
from rightsizer.guardrails.apply import (
    ApplyContext,
    Decision,
    Hold,
    applied_record,
    decide,
)
from rightsizer.guardrails.events import (
    applied_message,
    failed_message,
)
from rightsizer.guardrails.record import (
    AppliedRecord,
    HpaTarget,
    parse_record,
    record_json,
    revert_record,
)
from rightsizer.guardrails.rollout import (
    pod_failure,
    rollout_state,
)
from rightsizer.model.inplace import (
    UpdateMethod,
)
from rightsizer.model.workloads import WorkloadInfo, workload_info
from rightsizer.names import (
    EventReason,
    HoldReason,
)


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


class ApplyRun(InPlaceSteps):
    """A whole pass: rollouts here, in place and HPA targets from the steps below."""

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
        message = applied_message(decision.changes, with_hpa_notes(decision), self.inp.policy)
        self.emit(Event(w.body(), "Normal", EventReason.RESOURCES_APPLIED, message))
        self.state(w.ref, "Applied", None, applied_text(decision))
