"""Whether and what to write to a workload in Apply mode (pure: no I/O, no clock).

``decide`` turns a workload's recommendations into new requests/limits per container, or
into the reasons it holds back (``Hold``). Checks, in order (the first workload-level hold
ends the decision; every hold has a CamelCase reason for status and Events):

1. ``Excluded``: the workload carries ``rightsizer.dev/exclude: "true"``.
2. ``GitOpsManaged``: Argo CD, Flux or Helm markers, unless the policy allows writes.
3. ``HeldAfterFailedRollout``: our last write rolled out badly and was reverted; held
   until the policy's generation changes.
4. ``RolloutInProgress``: the workload is rolling out (ours or anyone's).
5. ``Cooldown``: our last write is more recent than the policy's cooldown.
6. per container: ``InsufficientData`` (too little history, or confidence below the
   minimum) keeps that container as it is; resources an HPA scales on are left alone
   (``hpaResources: Skip``), written (``Allow``), or written with the HPA's utilization
   target moved to keep its scale point (``Compensate``; a target that would leave
   ``hpaUtilizationBounds`` holds that resource: ``HpaTargetOutOfBounds``).
   New values: increases at once; decreases at most ``maxStepDownPercent`` per write and
   never below the observed memory peak plus margin; limits never below requests.
7. ``BelowMinimumChange``: no request moves by at least ``minChangePercent`` — and, where
   the strategy gives a hysteresis band (``ContainerRecommendation.keep``), none in
   force has left its band and no limit in force has left its own (``model/change.py``).
8. ``LimitRangeViolation``: a new value is outside the namespace's LimitRange.
9. ``QuotaExceeded``: the increase × pods (surge pods included) does not fit the
   ResourceQuota's remaining room.
10. ``RolloutLimit``: the namespace already has ``maxConcurrentRollouts`` of our rollouts
   in flight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import KeepBand, Resources
from rightsizer.guardrails.record import AppliedRecord, HpaTarget
from rightsizer.guardrails.rollout import RolloutState
from rightsizer.model.assessment import Assessment
from rightsizer.model.change import moved_enough, must_move
from rightsizer.model.hpa import HpaInfo, TargetChange, UtilizationBounds, compensate
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.names import EXCLUDE_ANNOTATION, HoldReason
from rightsizer.quantity import DAY_S, human_cpu, human_memory

#: Markers of GitOps tools: a write would be reverted (or fought over) by them.
GITOPS_ANNOTATIONS = (
    "argocd.argoproj.io/tracking-id",
    "argocd.argoproj.io/instance",
    "meta.helm.sh/release-name",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
)
GITOPS_LABELS = (
    "argocd.argoproj.io/instance",
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
)
GITOPS_MANAGERS = ("helm", "argocd", "flux")
"""Values of ``app.kubernetes.io/managed-by`` (lower-cased) that mark a GitOps tool."""

RESOURCES = ("cpu", "memory")
_ATTR = {"cpu": "cpu_millicores", "memory": "memory_bytes"}


@dataclass(frozen=True)
class ApplySettings:
    min_confidence: float = 1.0
    """VPA-style confidence (≈ days of history) below which nothing is written."""
    min_change_percent: float = 10.0
    cooldown_s: float = DAY_S
    max_step_down_percent: float = 50.0
    memory_peak_margin_percent: float = 10.0
    max_concurrent_rollouts: int = 2
    allow_gitops_managed: bool = False
    hpa_resources: str = "Skip"
    """``Skip``: resources an HPA scales on are never written; ``Allow``: they are;
    ``Compensate``: they are, and the HPA's utilization target moves with them."""
    hpa_bounds: UtilizationBounds = field(default_factory=UtilizationBounds)
    """``Compensate``: the targets it may set."""


@dataclass(frozen=True)
class Hold:
    reason: str
    message: str


@dataclass(frozen=True)
class ContainerChange:
    container: str
    before_requests: Resources
    before_limits: Resources
    requests: Resources
    limits: Resources

    def text(self) -> str:
        parts = []
        for res in RESOURCES:
            a, b = (getattr(self.before_requests, _ATTR[res]), getattr(self.requests, _ATTR[res]))
            if a != b:
                fmt = human_cpu if res == "cpu" else human_memory
                parts.append(f"{res} {fmt(a)}→{fmt(b)}")
        return f"{self.container}: " + (", ".join(parts) or "limits only")


@dataclass(frozen=True)
class ContainerOutcome:
    """What Apply mode would do with one container: its change (None: it stays), and
    why not, as data."""

    container: str
    change: ContainerChange | None = None
    insufficient_data: str | None = None
    """Why the container has too little data to be written (None: it has enough)."""
    left_alone: tuple[str, ...] = ()
    """Resources kept as they are, and why (e.g. an HPA scales on them)."""

    @property
    def note(self) -> str:
        """For status and Events: why something was not written ("" when all was)."""
        if self.insufficient_data is not None:
            return f"{self.container}: InsufficientData ({self.insufficient_data})"
        return f"{self.container}: " + "; ".join(self.left_alone) if self.left_alone else ""


@dataclass(frozen=True)
class HpaPlan:
    """The target changes of one HPA that go with a decision's request changes."""

    hpa: HpaInfo
    changes: tuple[TargetChange, ...]

    def targets(self) -> tuple[HpaTarget, ...]:
        return tuple(
            HpaTarget(self.hpa.name, c.metric.index, c.metric.resource, c.before_percent,
                      c.after_percent)
            for c in self.changes
        )  # fmt: skip


@dataclass(frozen=True)
class Decision:
    workload: str
    changes: tuple[ContainerChange, ...] = ()
    hold: Hold | None = None
    notes: tuple[str, ...] = ()
    """What was left alone and why (e.g. an HPA's resource), for status and Events."""
    hpa: tuple[HpaPlan, ...] = ()
    """``Compensate``: the HPA targets to move in the same step as the requests."""

    @property
    def writes(self) -> bool:
        return self.hold is None and bool(self.changes)

    def hpa_targets(self) -> tuple[HpaTarget, ...]:
        return tuple(t for p in self.hpa for t in p.targets())


@dataclass(frozen=True)
class QuotaRoom:
    """One ResourceQuota: hard limits and usage, by quota key (``requests.cpu`` …)."""

    name: str
    hard: Mapping[str, float]
    used: Mapping[str, float]


@dataclass(frozen=True)
class ApplyContext:
    settings: ApplySettings
    now_s: float
    policy: str
    """``namespace/name`` of the policy."""
    policy_generation: int
    hpa_resources: frozenset[str] = frozenset()
    """Resources an HPA targeting this workload scales on (``cpu``, ``memory``)."""
    hpas: tuple[HpaInfo, ...] = ()
    """The HPAs targeting this workload (``Compensate`` reads their metrics)."""
    quotas: Sequence[QuotaRoom] = ()
    limit_ranges: Sequence[LimitRangeItem] = ()
    rollouts_in_flight: int = 0
    """Our rollouts in progress in the namespace, this pass's writes included."""
    rollout: RolloutState = field(default_factory=RolloutState)
    record: AppliedRecord | None = None
    surge_pods: int = 0
    """Extra pods a rollout may create (a Deployment's maxSurge)."""


def gitops_marker(w: WorkloadInfo) -> str | None:
    for key in GITOPS_ANNOTATIONS:
        if key in w.annotations:
            return f"annotation {key}"
    for key in GITOPS_LABELS:
        if key in w.labels:
            return f"label {key}"
    manager = w.labels.get("app.kubernetes.io/managed-by", "")
    if manager.lower() in GITOPS_MANAGERS:
        return f"label app.kubernetes.io/managed-by={manager}"
    return None


def _workload_hold(w: WorkloadInfo, ctx: ApplyContext) -> Hold | None:
    s = ctx.settings
    if w.annotations.get(EXCLUDE_ANNOTATION, "").lower() == "true":
        return Hold(HoldReason.EXCLUDED, f'{EXCLUDE_ANNOTATION}: "true" on the workload')
    marker = gitops_marker(w)
    if marker and not s.allow_gitops_managed:
        return Hold(
            HoldReason.GITOPS_MANAGED,
            f"managed by a GitOps tool ({marker}): annotated only; set "
            "spec.update.allowGitOpsManaged to write anyway",
        )
    rec = ctx.record
    if (
        rec
        and rec.state == "Reverted"
        and rec.policy == ctx.policy
        and rec.generation == ctx.policy_generation
    ):
        return Hold(
            HoldReason.HELD_AFTER_FAILED_ROLLOUT,
            f"our last change was reverted ({rec.reason}); held until the policy changes",
        )
    if not ctx.rollout.complete:
        return Hold(
            HoldReason.ROLLOUT_IN_PROGRESS, ctx.rollout.failed or "the workload is rolling out"
        )
    if rec and rec.state == "Applied" and ctx.now_s - rec.time_s < s.cooldown_s:
        left = s.cooldown_s - (ctx.now_s - rec.time_s)
        return Hold(HoldReason.COOLDOWN, f"last applied {_human_s(ctx.now_s - rec.time_s)} ago; "
                                f"next write possible in {_human_s(left)}")  # fmt: skip
    return None


def _human_s(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"


def _lowered(new: int, current: int, floor: int, step_down_percent: float) -> int:
    """A decrease from ``current`` towards ``new``: bounded step, never below ``floor``."""
    stepped = math.ceil(current * (1 - step_down_percent / 100))
    return min(current, max(new, stepped, floor))


def _new_value(
    res: str, target: int | None, current: int | None, floor: int, s: ApplySettings
) -> int | None:
    if target is None or target <= 0:
        return current
    if current is None or target >= current:
        return target  # increases (and first requests) at once
    return _lowered(target, current, floor if res == "memory" else 0, s.max_step_down_percent)


def _must_write(
    band: KeepBand | None,
    attr: str,
    request: tuple[int | None, int | None],
    limit: tuple[int | None, int | None],
    s: ApplySettings,
) -> bool:
    """The shared rule (``model/change.py``): a request that moves by the minimum change;
    with the strategy's hysteresis band, only once the request in force has left its
    band — or the limit in force has left its own (a memory limit below the OOM line)."""
    if band is None:
        return moved_enough(request[0], request[1], s.min_change_percent)
    low, high = getattr(band.request_low, attr), getattr(band.request_high, attr)
    if must_move(request[0], request[1], s.min_change_percent, low, high):
        return True
    low, high = getattr(band.limit_low, attr), getattr(band.limit_high, attr)
    return low is not None and must_move(limit[0], limit[1], s.min_change_percent, low, high)


def container_change(
    row: Assessment, ctx: ApplyContext, current: tuple[Resources, Resources] | None = None,
    held: Mapping[str, str] | None = None,
) -> ContainerOutcome:  # fmt: skip
    """The new values for one container, or why it stays. ``current`` (requests, limits)
    as the workload has them now; default: as the recommendation saw them. ``held``:
    resources kept as they are, and why (an HPA target out of bounds)."""
    r = row.recommendation
    if current is not None:
        r = replace(r, current_requests=current[0], current_limits=current[1])
    s = ctx.settings
    if not row.enough_data or r.confidence < s.min_confidence:
        # Rounded down, so that 0.999 reads "0.99 below 1", not "1.00 below 1".
        shown = math.floor(r.confidence * 100) / 100
        why = row.reason or f"confidence {shown:.2f} below {s.min_confidence:g}"
        return ContainerOutcome(r.container, insufficient_data=why)
    floor = math.ceil(r.peak_memory_bytes * (1 + s.memory_peak_margin_percent / 100))
    requests, limits, left_alone = {}, {}, []
    moved = False
    for res in RESOURCES:
        attr = _ATTR[res]
        cur_req, cur_lim = getattr(r.current_requests, attr), getattr(r.current_limits, attr)
        if res in ctx.hpa_resources and s.hpa_resources == "Skip":
            requests[attr], limits[attr] = cur_req, cur_lim
            left_alone.append(f"{res} left alone: an HPA scales on it")
            continue
        if held and res in held:
            requests[attr], limits[attr] = cur_req, cur_lim
            left_alone.append(f"{res} held ({HoldReason.HPA_TARGET_OUT_OF_BOUNDS}): {held[res]}")
            continue
        new_req = _new_value(res, getattr(r.target, attr), cur_req, floor, s)
        rec_lim = getattr(r.limits, attr)
        new_lim = _new_value(res, rec_lim, cur_lim, floor, s) if rec_lim else cur_lim
        if new_lim is not None and new_req is not None and new_lim < new_req:
            new_lim = new_req  # a limit below the request is invalid
        requests[attr], limits[attr] = new_req, new_lim
        moved = moved or _must_write(r.keep, attr, (cur_req, new_req), (cur_lim, new_lim), s)
    outcome = ContainerOutcome(r.container, left_alone=tuple(left_alone))
    if not moved:
        return outcome
    change = ContainerChange(
        r.container, r.current_requests, r.current_limits,
        Resources(requests["cpu_millicores"], requests["memory_bytes"]),
        Resources(limits["cpu_millicores"], limits["memory_bytes"]),
    )  # fmt: skip
    return replace(outcome, change=change)


def limit_range_violation(
    changes: Sequence[ContainerChange], items: Sequence[LimitRangeItem]
) -> str | None:
    for item in items:
        if item.type != "Container":
            continue
        for c in changes:
            for res in RESOURCES:
                attr = _ATTR[res]
                lo, hi = getattr(item.min, attr), getattr(item.max, attr)
                for what, v in (("request", getattr(c.requests, attr)),
                                ("limit", getattr(c.limits, attr))):  # fmt: skip
                    if v is None:
                        continue
                    if lo is not None and v < lo:
                        return f"{c.container}: {res} {what} {v} below the LimitRange min {lo}"
                    if hi is not None and v > hi:
                        return f"{c.container}: {res} {what} {v} above the LimitRange max {hi}"
    return None


_QUOTA_KEYS = {
    ("requests", "cpu"): ("requests.cpu", "cpu"),
    ("requests", "memory"): ("requests.memory", "memory"),
    ("limits", "cpu"): ("limits.cpu",),
    ("limits", "memory"): ("limits.memory",),
}


def quota_shortfall(
    changes: Sequence[ContainerChange], replicas: int, surge_pods: int,
    quotas: Sequence[QuotaRoom],
) -> str | None:  # fmt: skip
    """Whether the increase fits every quota: at the end ``replicas × delta`` more, and
    during the rollout ``surge_pods`` new pods next to all the old ones."""
    for (kind, res), keys in _QUOTA_KEYS.items():
        attr = _ATTR[res]
        delta = new_total = 0.0
        for c in changes:
            before = getattr(getattr(c, f"before_{kind}"), attr) or 0
            after = getattr(getattr(c, kind), attr) or 0
            delta += after - before
            new_total += after
        if delta <= 0 and surge_pods == 0:
            continue
        unit = 1000.0 if res == "cpu" else 1.0  # quotas in cores, changes in millicores
        needed = max(replicas * delta, surge_pods * new_total) / unit
        if needed <= 0:
            continue
        for q in quotas:
            for key in keys:
                if key in q.hard:
                    room = q.hard[key] - q.used.get(key, 0.0)
                    if needed > room + 1e-9:
                        return (f"ResourceQuota {q.name}: {key} needs {needed:g} more, "
                                f"{max(room, 0):g} left")  # fmt: skip
    return None


def compensations(
    before: Mapping[str, Resources], changes: Sequence[ContainerChange], ctx: ApplyContext
) -> tuple[list[HpaPlan], dict[str, str], list[str]]:
    """``Compensate``: per HPA of the workload, the target changes that keep its scale
    point when the pod's requests (``before``: every container → its requests now) go as
    ``changes`` say; the resources to hold (resource → why); notes (targets that need
    nothing)."""
    after = dict(before) | {c.container: c.requests for c in changes}
    plans: list[HpaPlan] = []
    held: dict[str, str] = {}
    notes: list[str] = []
    for hpa in sorted(ctx.hpas, key=lambda h: h.name):
        comp = compensate(hpa, before, after, ctx.settings.hpa_bounds)
        if comp.changes:
            plans.append(HpaPlan(hpa, comp.changes))
        held.update(comp.held or {})
        notes.extend(f"HPA {hpa.name}: {u}" for u in comp.unaffected if "absolute" in u)
    return plans, held, notes


@dataclass(frozen=True)
class Outcomes:
    """What Apply mode would do with a workload's containers, and its HPAs."""

    containers: list[ContainerOutcome]
    hpa: list[HpaPlan]
    held: dict[str, str]
    """Resources held for an HPA target out of bounds, and why."""
    notes: list[str]
    """About HPA targets that need no change."""

    @property
    def changes(self) -> list[ContainerChange]:
        return [o.change for o in self.containers if o.change is not None]


def container_outcomes(
    items: Sequence[tuple[Assessment, tuple[Resources, Resources] | None]],
    before: Mapping[str, Resources], ctx: ApplyContext,
) -> Outcomes:  # fmt: skip
    """Each container's outcome (``items``: its recommendation and current values), with
    ``Compensate``'s HPA target changes; a resource whose target would leave the bounds
    is held and the containers decided again without it. ``before``: every container of
    the pod → its requests now (``Resource`` metrics are on their sum)."""
    held: dict[str, str] = {}
    plans: list[HpaPlan] = []
    notes: list[str] = []
    compensating = ctx.settings.hpa_resources == "Compensate" and bool(ctx.hpas)
    for _ in range(len(RESOURCES) + 1):  # each round holds at least one more resource
        outcomes = [container_change(row, ctx, current, held) for row, current in items]
        if not compensating:
            break
        changes = [o.change for o in outcomes if o.change is not None]
        plans, more, notes = compensations(before, changes, ctx)
        if not set(more) - set(held):
            break
        held.update(more)
    return Outcomes(outcomes, plans, held, notes)


def decide(w: WorkloadInfo, rows: Sequence[Assessment], ctx: ApplyContext) -> Decision:
    hold = _workload_hold(w, ctx)
    if hold is not None:
        return Decision(w.ref, hold=hold)
    now = {c.name: (c.requests, c.limits) for c in w.containers}
    found = container_outcomes(
        [
            (row, now[row.recommendation.container])
            for row in sorted(rows, key=lambda r: r.recommendation.container)
            if row.recommendation.container in now  # else gone from the template since
        ],
        {c.name: c.requests for c in w.containers},
        ctx,
    )
    outcomes, changes, plans, held = found.containers, found.changes, found.hpa, found.held
    notes = tuple(o.note for o in outcomes if o.note) + tuple(found.notes)
    base = Decision(w.ref, tuple(changes), None, notes, tuple(plans))
    if not changes:
        insufficient = [o.note for o in outcomes if o.insufficient_data is not None]
        if insufficient and len(insufficient) == len(rows):
            return replace(base, hold=Hold(HoldReason.INSUFFICIENT_DATA, "; ".join(insufficient)))
        if held:
            why = "; ".join(f"{res}: {msg}" for res, msg in sorted(held.items()))
            return replace(base, hold=Hold(HoldReason.HPA_TARGET_OUT_OF_BOUNDS, why))
        return replace(
            base,
            hold=Hold(
                HoldReason.BELOW_MINIMUM_CHANGE,
                f"no request would change by {ctx.settings.min_change_percent:g} % or more",
            ),
        )
    violation = limit_range_violation(changes, ctx.limit_ranges)
    if violation:
        return replace(base, hold=Hold(HoldReason.LIMIT_RANGE_VIOLATION, violation))
    shortfall = quota_shortfall(changes, w.replicas, ctx.surge_pods, ctx.quotas)
    if shortfall:
        return replace(base, hold=Hold(HoldReason.QUOTA_EXCEEDED, shortfall))
    if ctx.rollouts_in_flight >= ctx.settings.max_concurrent_rollouts:
        return replace(
            base,
            hold=Hold(
                HoldReason.ROLLOUT_LIMIT,
                f"{ctx.rollouts_in_flight} of our rollouts in flight in the namespace "
                f"(maxConcurrentRollouts {ctx.settings.max_concurrent_rollouts})",
            ),
        )
    return base


# -- the record of a decision ----------------------------------------------------------
def applied_record(decision: Decision, ctx: ApplyContext) -> AppliedRecord:
    """The record of writing ``decision``: what each container had, what it gets."""
    return AppliedRecord(
        policy=ctx.policy, generation=ctx.policy_generation, time_s=ctx.now_s, state="Applied",
        reason="RecommendationApplied",
        previous={c.container: (c.before_requests, c.before_limits) for c in decision.changes},
        applied={c.container: (c.requests, c.limits) for c in decision.changes},
        hpa=decision.hpa_targets(),
    )  # fmt: skip
