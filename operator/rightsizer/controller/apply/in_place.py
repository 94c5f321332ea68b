"""The in-place methods: the annotation and record on the workload, then ``pods/resize``
a few pods at a time; OOM kills put the previous values back; Infeasible may roll out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rightsizer.actuation.kubernetes import AnnotateConflictError
from rightsizer.actuation.pods import ResizeConflictError
from rightsizer.actuation.resources import ResourcesWrite, WriteRejectedError
from rightsizer.controller.apply.hpa import HpaSteps
from rightsizer.controller.apply.records import IN_PLACE, last_action
from rightsizer.controller.apply.state import with_hpa_notes
from rightsizer.controller.reconcile import Event
from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.apply import (
    ContainerChange,
    Hold,
    applied_record,
    decide,
    quota_shortfall,
)
from rightsizer.guardrails.events import (
    applied_message,
)
from rightsizer.guardrails.record import (
    AppliedRecord,
    record_json,
    revert_record,
)
from rightsizer.guardrails.rollout import (
    rollout_state,
)
from rightsizer.model.assessment import Assessment
from rightsizer.model.inplace import (
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
from rightsizer.model.workloads import ContainerResources, WorkloadInfo
from rightsizer.names import (
    AUTO_APPLY_LABEL,
    POD_RESOURCES_ANNOTATION,
    RECORD_ANNOTATION,
    ConditionType,
    EventReason,
    HoldReason,
)
from rightsizer.status.build import Condition


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


class InPlaceSteps(HpaSteps):
    """A workload sized through its pods, not its template."""

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
        message = applied_message(decision.changes, with_hpa_notes(decision), inp.policy)
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
