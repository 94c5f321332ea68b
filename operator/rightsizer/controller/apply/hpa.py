"""Moving HPA targets with a write, and back (``hpaResources: Compensate``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace

from rightsizer.actuation.hpa import HpaChangedError
from rightsizer.actuation.resources import WriteRejectedError
from rightsizer.controller.apply.state import PassState
from rightsizer.controller.reconcile import Event
from rightsizer.guardrails.apply import (
    ApplyContext,
    Decision,
    Hold,
    HpaPlan,
    decide,
)
from rightsizer.guardrails.record import (
    AppliedRecord,
)
from rightsizer.model.hpa import TargetChange, revert_changes
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.names import (
    EventReason,
    HoldReason,
)


class HpaSteps(PassState):
    """The HPA targets a write goes with: moved first, put back when it does not land or
    is reverted."""

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
