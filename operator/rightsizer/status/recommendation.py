"""RightSizeRecommendation objects: one per selected workload (pure).

``desired_objects`` builds what each object should say from the reconcile's assessment
rows; ``Seen`` is the little the operator keeps of what the API server has (its Kopf
index); ``plan_writes`` compares the two and returns the writes: create, patch (metadata
or status) or delete — none when nothing a person sees has changed. Quantities are in
the form people write them (``310Mi``, ``1.5Gi``, ``120m``); the exact integers are in
each container's ``exact``, for machines.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from rightsizer import names
from rightsizer.engine.recommendation import Resources
from rightsizer.model.assessment import Assessment
from rightsizer.model.change import moved_enough
from rightsizer.model.hpa import HpaInfo, TargetOutlook, UtilizationBounds, target_outlook
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.names import HoldReason, RecommendationConditionType, RecommendationState
from rightsizer.status.build import iso

#: Kubernetes limits: object names (DNS subdomains) and label values.
MAX_NAME = 253
MAX_LABEL_VALUE = 63
_HASH_CHARS = 10
#: Optional status fields: sent as null when absent, so a merge patch removes them.
_OPTIONAL_STATUS = ("autoApply", "lastAction")
#: In ``hpa`` entries, what counts as a change (the compensated target follows the
#: recommendation: it is rewritten when the target moves by ``minChangePercent``).
_HPA_SHOWN = ("name", "resource", "source", "container", "targetType", "targetPercent",
              "withinBounds")  # fmt: skip
_BOUNDS = ("target", "lowerBound", "upperBound", "uncappedTarget", "recommendedLimits")
#: Current requests and limits count at any change (a person edited them); the estimates
#: (target, bounds, limits recommended) when they move by at least ``minChangePercent``.
_CURRENT = ("requests", "limits")
DEFAULT_BOUNDS = UtilizationBounds()


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def _fit(text: str, limit: int, identity: str) -> str:
    """``text`` when it fits; else cut, with a hash of ``identity`` appended."""
    if len(text) <= limit:
        return text
    cut = text[: limit - _HASH_CHARS - 1].rstrip("-._")
    return f"{cut}-{_short_hash(identity)}"


def object_name(kind: str, name: str) -> str:
    """``deployment-web``: deterministic, a DNS subdomain; a name too long is cut and ends
    in a hash of the kind and the whole name, so two long names never meet."""
    return _fit(f"{kind.lower()}-{name}", MAX_NAME, f"{kind}/{name}")


def label_value(text: str) -> str:
    """A label value (at most 63 characters; longer ones cut and hashed)."""
    return _fit(text, MAX_LABEL_VALUE, text)


def readable_cpu(millicores: int | None) -> str:
    """``120m``, ``2`` (whole cores), ``1500m``; ``-`` when unset. Exact."""
    if millicores is None:
        return "-"
    if millicores and millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def readable_memory(num_bytes: int | float | None) -> str:
    """``310Mi``, ``1.5Gi`` (binary units, at most two decimals); ``-`` when unset."""
    if num_bytes is None or (isinstance(num_bytes, float) and math.isnan(num_bytes)):
        return "-"
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if abs(num_bytes) >= factor:
            text = f"{num_bytes / factor:.2f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{num_bytes:.0f}"


def readable(r: Resources) -> dict[str, str]:
    """``{"cpu": "120m", "memory": "310Mi"}``: the values that are set, as people write them."""
    out = {}
    if r.cpu_millicores is not None:
        out["cpu"] = readable_cpu(r.cpu_millicores)
    if r.memory_bytes is not None:
        out["memory"] = readable_memory(r.memory_bytes)
    return out


def _exact(r: Resources) -> dict[str, int]:
    out = {}
    if r.cpu_millicores is not None:
        out["cpuMillicores"] = int(r.cpu_millicores)
    if r.memory_bytes is not None:
        out["memoryBytes"] = int(r.memory_bytes)
    return out


@dataclass(frozen=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str


def _current(row: Assessment, workload: WorkloadInfo) -> tuple[Resources, Resources]:
    """The container's requests and limits now: the workload's as the operator last saw
    it (so a write shows at once), else what the reconcile saw."""
    r = row.recommendation
    for c in workload.containers:
        if c.name == r.container:
            return c.requests, c.limits
    return r.current_requests, r.current_limits


def _container(
    row: Assessment, workload: WorkloadInfo, drift: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    r = row.recommendation
    requests, limits = _current(row, workload)
    current = {"requests": requests, "limits": limits}
    bounds = {
        "target": r.target, "lowerBound": r.lower_bound, "upperBound": r.upper_bound,
        "uncappedTarget": r.uncapped_target, "recommendedLimits": r.limits,
    }  # fmt: skip
    shown = {**current, **(bounds if row.enough_data else {})}
    entry: dict[str, Any] = {"name": r.container}
    entry.update({key: readable(value) for key, value in shown.items()})
    entry.update(
        samples={"cpu": r.cpu_samples, "memory": r.memory_samples},
        confidence=round(r.confidence, 3),
        severity=row.severity.value,
    )
    evidence: dict[str, Any] = {
        "historyHours": round(r.history_span_s / 3600, 2),
        "oomKills": int(r.oom_kills),
    }
    if r.peak_memory_bytes and not math.isnan(r.peak_memory_bytes):
        evidence["peakMemory"] = readable_memory(r.peak_memory_bytes)
        evidence["peakMemoryBytes"] = int(r.peak_memory_bytes)
    entry["evidence"] = evidence
    if not row.enough_data:
        entry["insufficientData"] = row.reason
    entry["exact"] = {key: _exact(value) for key, value in shown.items()}
    if drift:
        entry["drift"] = dict(drift)
    return entry


def _sum(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _column(rows: Sequence[Assessment], workload: WorkloadInfo, cpu: bool) -> str:
    """``500m→120m``: the pod's requests now → recommended (containers with data)."""
    ready = [r for r in rows if r.enough_data]
    current = [_current(r, workload)[0] for r in ready]
    if cpu:
        now = _sum([c.cpu_millicores for c in current])
        then = _sum([r.recommendation.target.cpu_millicores for r in ready])
        if any(v is not None and v % 1000 for v in (now, then)):  # one unit for both sides
            return "→".join("-" if v is None else f"{v}m" for v in (now, then))
        return f"{readable_cpu(now)}→{readable_cpu(then)}"
    now = _sum([c.memory_bytes for c in current])
    then = _sum([r.recommendation.target.memory_bytes for r in ready])
    return f"{readable_memory(now)}→{readable_memory(then)}"


#: Holds that only follow our own write (its rollout, then its cooldown): the State column
#: says ``Applied`` meanwhile; ``autoApply`` keeps the hold and its reason.
_AFTER_OUR_WRITE = frozenset({HoldReason.ROLLOUT_IN_PROGRESS, HoldReason.COOLDOWN})


def _state(rows: Sequence[Assessment], entry: Mapping[str, Any]) -> str:
    auto = entry.get("autoApply") or {}
    action = str((entry.get("lastAction") or {}).get("type", ""))
    if auto.get("state") == RecommendationState.HELD:
        if auto.get("reason") in _AFTER_OUR_WRITE and action == RecommendationState.APPLIED:
            return RecommendationState.APPLIED
        return f"{RecommendationState.HELD} ({auto.get('reason')})"
    if not any(r.enough_data for r in rows):
        return RecommendationState.INSUFFICIENT_DATA
    if auto.get("state") == RecommendationState.APPLIED:
        return RecommendationState.APPLIED
    if action in (RecommendationState.APPLIED, RecommendationState.ANNOTATED):
        return action
    return RecommendationState.RECOMMENDED


def _hpa_entry(o: TargetOutlook) -> dict[str, Any]:
    m = o.metric
    entry: dict[str, Any] = {"name": o.hpa, "resource": m.resource, "source": m.source.value}
    if m.container:
        entry["container"] = m.container
    entry["targetType"] = m.target_type
    if o.target_percent is not None:
        entry["targetPercent"] = o.target_percent
    if o.compensated_percent is not None:
        entry["compensatedPercent"] = o.compensated_percent
    entry.update(withinBounds=o.within_bounds, message=o.short())
    return entry


def hpa_entries(
    rows: Sequence[Assessment], workload: WorkloadInfo, hpas: Sequence[HpaInfo],
    bounds: UtilizationBounds,
) -> list[dict[str, Any]]:  # fmt: skip
    """The ``hpa`` field: per cpu/memory metric of the HPAs that scale ``workload``, the
    target that keeps its scale point when the pod's requests (every container, as the
    operator last saw them) go to the recommended ones (containers with enough data;
    the others keep theirs). Before any write: what ``hpaResources: Compensate`` would
    do with the recommendation as it stands (Apply mode's step limits aside)."""
    mine = [h for h in hpas if h.namespace == workload.namespace and h.target_ref == workload.ref]
    if not mine:
        return []
    before = {c.name: c.requests for c in workload.containers}
    for r in rows:
        before.setdefault(r.recommendation.container, _current(r, workload)[0])
    after = dict(before)
    for r in rows:
        if r.enough_data:
            target = r.recommendation.target
            now = before[r.recommendation.container]
            after[r.recommendation.container] = Resources(
                target.cpu_millicores if target.cpu_millicores is not None else now.cpu_millicores,
                target.memory_bytes if target.memory_bytes is not None else now.memory_bytes,
            )
    return [_hpa_entry(o) for o in target_outlook(mine, before, after, bounds)]


def _condition(rows: Sequence[Assessment], now_s: float) -> dict[str, Any]:
    ready = [r for r in rows if r.enough_data]
    missing = sorted(f"{r.recommendation.container}: {r.reason}" for r in rows if not r.enough_data)
    return {
        "type": RecommendationConditionType.RECOMMENDATION_AVAILABLE.value,
        "status": "True" if ready else "False",
        "reason": "Computed" if ready else "InsufficientData",
        "message": "; ".join(missing)[:4000],
        "lastTransitionTime": iso(now_s),
    }


def desired_object(
    policy: PolicyRef, workload: WorkloadInfo, rows: Sequence[Assessment],
    entry: Mapping[str, Any], read_until_s: float | None, now_s: float,
    drift: Mapping[str, Mapping[str, Any]] | None = None,
    hpa: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The whole object for one workload; ``entry``: its ``lastAction`` and ``autoApply``
    (Annotate and Apply modes keep them on the object: ``auto_apply_entries``), if any;
    ``drift``: container → its drift entry (``status/drift.py``), if sized in place;
    ``hpa``: its ``hpa_entries``, if an HPA scales it on cpu or memory."""
    rows = sorted(rows, key=lambda r: r.recommendation.container)
    ready = [r.recommendation.confidence for r in rows if r.enough_data]
    status: dict[str, Any] = {
        "workload": workload.ref,
        "cpu": _column(rows, workload, cpu=True),
        "memory": _column(rows, workload, cpu=False),
        "confidence": f"{min(ready):.1f}d" if ready else "-",
        "state": _state(rows, entry),
        "pods": max((r.replicas for r in rows), default=workload.replicas),
        "containers": [
            _container(r, workload, (drift or {}).get(r.recommendation.container)) for r in rows
        ],
        "conditions": [_condition(rows, now_s)],
        **{key: (dict(entry[key]) if entry.get(key) else None) for key in _OPTIONAL_STATUS},
        "hpa": [dict(h) for h in hpa] if hpa else None,
    }
    if read_until_s is not None:
        status["readUntil"] = iso(read_until_s)
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.RECOMMENDATION_KIND,
        "metadata": {
            "name": object_name(workload.kind, workload.name),
            "namespace": workload.namespace,
            "labels": {
                names.POLICY_LABEL: label_value(policy.name),
                names.WORKLOAD_KIND_LABEL: workload.kind,
                names.WORKLOAD_NAME_LABEL: label_value(workload.name),
            },
            "ownerReferences": [owner_reference(policy)],
        },
        "spec": {
            "workload": {"apiVersion": "apps/v1", "kind": workload.kind, "name": workload.name},
            "policy": {"name": policy.name},
        },
        "status": status,
    }


def owner_reference(policy: PolicyRef) -> dict[str, Any]:
    """The policy as controller owner: the garbage collector deletes the object with it."""
    return {
        "apiVersion": names.API_VERSION, "kind": names.POLICY_KIND, "name": policy.name,
        "uid": policy.uid, "controller": True, "blockOwnerDeletion": False,
    }  # fmt: skip


def desired_objects(
    policy: PolicyRef, workloads: Sequence[WorkloadInfo], rows: Sequence[Assessment],
    entries: Mapping[str, Mapping[str, Any]], read_until_s: float | None, now_s: float,
    drift: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    hpas: Sequence[HpaInfo] = (), hpa_bounds: UtilizationBounds = DEFAULT_BOUNDS,
) -> list[dict[str, Any]]:  # fmt: skip
    """One object per workload with rows (the workloads the policy owns); ``entries``:
    workload (``Kind/name``) → its ``lastAction`` and ``autoApply``; ``drift``: workload →
    container → drift entry; ``hpas``: the namespace's HPAs (``hpa_entries``)."""
    by_workload: dict[str, list[Assessment]] = {}
    for row in rows:
        by_workload.setdefault(row.recommendation.workload, []).append(row)
    drift = drift or {}
    return [
        desired_object(
            policy,
            w,
            rows_of,
            entries.get(w.ref, {}),
            read_until_s,
            now_s,
            drift.get(w.ref),
            hpa_entries(rows_of, w, hpas, hpa_bounds),
        )
        for w in sorted(workloads, key=lambda w: w.ref)
        if (rows_of := by_workload.get(w.ref))
    ]


# -- what the API server has, and the writes that make it what is desired -----------------
@dataclass(frozen=True)
class Seen:
    """What the operator keeps of one object as the API server has it (its index)."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    owner_uid: str | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


def seen(body: Mapping[str, Any]) -> Seen:
    meta = body.get("metadata") or {}
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    return Seen(
        namespace=_shared(str(meta.get("namespace", ""))),
        name=str(meta.get("name", "")),
        labels=_shared(dict(meta.get("labels") or {})),
        owner_uid=_shared(str(owners[0].get("uid"))) if owners else None,
        spec=_shared(dict(body.get("spec") or {})),
        status=_shared(_kept(body.get("status") or {})),
    )


#: Strings up to this long are interned in the index (keys, states, reasons, names).
_SHARED_MAX = 64

_T = TypeVar("_T")


def _shared(value: _T) -> _T:
    """The same value with its short strings (dict keys above all) interned: each watch
    event is decoded on its own, so without this every object of the index holds its own
    copy of every key — ≈ 40 % of what the index keeps (≈ 5.9 → 3.6 KiB per object,
    ``docs/design.md``, "Memory per container")."""
    if isinstance(value, dict):
        return cast(_T, {sys.intern(k) if type(k) is str else k: _shared(v)
                         for k, v in value.items()})  # fmt: skip
    if isinstance(value, list):
        return cast(_T, [_shared(v) for v in value])
    if isinstance(value, str) and type(value) is str and len(value) <= _SHARED_MAX:
        return cast(_T, sys.intern(value))  # (not a StrEnum: those cannot be interned)
    return value


_SEVERITIES = ("ok", "info", "warning", "critical")


def _worst(containers: Sequence[Mapping[str, Any]]) -> str:
    known = [str(c.get("severity")) for c in containers if c.get("severity") in _SEVERITIES]
    return max(known, key=_SEVERITIES.index, default="ok")


def _kept(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields ``plan_writes`` compares and the policy's overview sums (the
    index keeps no more)."""
    containers = list(status.get("containers") or [])
    return {
        "workload": status.get("workload"),
        "cpu": status.get("cpu"),
        "memory": status.get("memory"),
        "pods": status.get("pods"),
        "severity": _worst(containers),
        "state": status.get("state"),
        "autoApply": status.get("autoApply"),
        "lastAction": status.get("lastAction"),
        "conditions": [dict(c) for c in status.get("conditions") or []],
        "containers": {str(c.get("name")): dict(c.get("exact") or {}) for c in containers},
        "drift": {str(c.get("name")): c["drift"] for c in containers if c.get("drift")},
        "hpa": [{k: h[k] for k in _HPA_SHOWN if k in h} for h in status.get("hpa") or []],
    }


class Action(StrEnum):
    CREATE = "create"
    PATCH = "patch"
    """Metadata (labels, owner) and spec: the object changes hands."""
    PATCH_STATUS = "patch-status"
    DELETE = "delete"


@dataclass(frozen=True)
class Write:
    action: Action
    namespace: str
    name: str
    body: Mapping[str, Any] | None = None
    """The object (create), the merge patch (patches); None for a delete."""


def _moved(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]],
    min_change_percent: float,
) -> bool:  # fmt: skip
    if set(before) != set(after):
        return True
    for name, exact in after.items():
        old = before[name]
        if set(old) != set(exact):
            return True
        for key, now in exact.items():
            was: Mapping[str, Any] = old.get(key) or {}
            if key in _CURRENT:
                if dict(was) != dict(now):
                    return True
                continue
            for unit in ("cpuMillicores", "memoryBytes"):
                a, b = was.get(unit), now.get(unit)
                if (a is None) != (b is None) or moved_enough(a, b, min_change_percent):
                    return True
    return False


def _conditions_changed(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> bool:
    def shown(conditions: Sequence[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
        return {(c.get("type"), c.get("status"), c.get("reason")) for c in conditions}

    return shown(before) != shown(after)


def shown_state(auto_apply: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """What of an Apply-mode state counts as a change: its state and reason (a hold's
    message may move at every pass: a cooldown's time left)."""
    auto = auto_apply or {}
    return auto.get("state"), auto.get("reason")


def status_changed(
    before: Mapping[str, Any], desired: Mapping[str, Any], min_change_percent: float
) -> bool:
    """Whether a person would see a difference: the state, the auto-apply state (and
    reason) or last action, a condition, current requests or limits, a container added or gone, or a
    target or recommended limit moved by at least ``min_change_percent``, an HPA target
    (added, gone, edited, or in or out of bounds)."""
    after = _kept(desired)
    if any(before.get(k) != after.get(k) for k in ("state", "lastAction")):
        return True
    if shown_state(before.get("autoApply")) != shown_state(after.get("autoApply")):
        return True
    if _conditions_changed(before.get("conditions") or [], after["conditions"]):
        return True
    if (before.get("drift") or {}) != after["drift"]:  # pods resized, added or gone
        return True
    if (before.get("hpa") or []) != after["hpa"]:  # an HPA added, gone, edited or held
        return True
    return _moved(before.get("containers") or {}, after["containers"], min_change_percent)


def _keep_transition_times(
    desired: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    old = {c.get("type"): c for c in before}
    out = []
    for c in desired:
        was = old.get(c.get("type"))
        keep = was is not None and was.get("status") == c.get("status")
        out.append(
            {**c, "lastTransitionTime": was["lastTransitionTime"]} if keep and was else dict(c)
        )
    return out


def plan_writes(
    policy: PolicyRef, desired: Sequence[Mapping[str, Any]], existing: Sequence[Seen],
    min_change_percent: float,
) -> list[Write]:  # fmt: skip
    """The writes that make the policy's namespace hold ``desired``: new objects created
    (then their status written), changed ones patched, the policy's objects no longer
    desired (workload deleted or no longer selected) deleted. Objects of other policies
    are left alone unless one is desired here (it changes hands). No write when nothing
    a person sees has changed."""
    by_name = {s.name: s for s in existing if s.namespace == policy.namespace}
    writes: list[Write] = []
    for body in desired:
        meta = body["metadata"]
        name = str(meta["name"])
        status = dict(body["status"])
        have = by_name.get(name)
        if have is None:
            writes.append(
                Write(Action.CREATE, policy.namespace, name,
                      {k: v for k, v in body.items() if k != "status"})
            )  # fmt: skip
            writes.append(Write(Action.PATCH_STATUS, policy.namespace, name, {"status": status}))
            continue
        if (
            dict(have.labels) != {**have.labels, **meta["labels"]}
            or have.owner_uid != policy.uid
            or dict(have.spec) != body["spec"]
        ):
            patch = {
                "metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
                "spec": body["spec"],
            }
            writes.append(Write(Action.PATCH, policy.namespace, name, patch))
        if status_changed(have.status, status, min_change_percent):
            status["conditions"] = _keep_transition_times(
                status["conditions"], have.status.get("conditions") or []
            )
            writes.append(Write(Action.PATCH_STATUS, policy.namespace, name, {"status": status}))
    wanted = {str(b["metadata"]["name"]) for b in desired}
    mine = label_value(policy.name)
    for have in by_name.values():
        ours = have.labels.get(names.POLICY_LABEL) == mine or have.owner_uid == policy.uid
        if ours and have.name not in wanted:
            writes.append(Write(Action.DELETE, policy.namespace, have.name))
    return writes


def effective(
    desired: Sequence[Mapping[str, Any]], existing: Sequence[Seen], writes: Sequence[Write],
    failed: Collection[str],
) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """(object name, kept status) of each desired object as the API server has it once
    ``writes`` are done (``failed``: names of objects whose writes were not): the written
    status where it was written, else the one already there. Objects not created yet
    (their create failed) are left out. What the policy's overview sums up, so it changes
    only when an object does."""
    have = {s.name: s.status for s in existing}
    written = {
        w.name: _kept((w.body or {}).get("status") or {})
        for w in writes
        if w.action is Action.PATCH_STATUS and w.name not in failed
    }
    out = []
    for body in desired:
        name = str(body["metadata"]["name"])
        status = written.get(name, have.get(name))
        if status is not None:
            out.append((name, dict(status)))
    return out
