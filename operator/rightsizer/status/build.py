"""Status of a RightSizePolicy: conditions, per-workload recommendations, summary (pure).

Conditions are a list-map keyed by ``type``; a condition keeps its ``lastTransitionTime``
while its status does not change. Per-workload details are dropped (most important kept)
when the status would grow beyond ``budget_bytes``; the summary always covers all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rightsizer.model.assessment import Assessment, Severity, Totals
from rightsizer.quantity import quantities

#: Well under the 1.5 MB etcd object limit, leaving room for the spec and metadata.
DEFAULT_BUDGET_BYTES = 400_000
_ORDER = list(Severity)


def iso(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None
    reason: str
    message: str = ""


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], new: Sequence[Condition], now_s: float, generation: int
) -> list[dict[str, Any]]:
    """New conditions replace old ones of the same type; others are kept."""
    by_type = {c.get("type"): dict(c) for c in previous}
    for c in new:
        status = "Unknown" if c.status is None else ("True" if c.status else "False")
        old = by_type.get(c.type)
        changed = old is None or old.get("status") != status
        by_type[c.type] = {
            "type": c.type,
            "status": status,
            "reason": c.reason,
            "message": c.message[:4000],
            "lastTransitionTime": iso(now_s)
            if changed
            else old.get("lastTransitionTime", iso(now_s)),  # type: ignore[union-attr]
            "observedGeneration": generation,
        }
    return sorted(by_type.values(), key=lambda c: str(c["type"]))


def container_entry(row: Assessment) -> dict[str, Any]:
    r = row.recommendation
    entry: dict[str, Any] = {
        "name": r.container,
        "requests": quantities(r.current_requests.cpu_millicores, r.current_requests.memory_bytes),
        "limits": quantities(r.current_limits.cpu_millicores, r.current_limits.memory_bytes),
        "samples": {"cpu": r.cpu_samples, "memory": r.memory_samples},
        "confidence": round(r.confidence, 3),
        "severity": row.severity.value,
    }
    if not row.enough_data:
        entry["insufficientData"] = row.reason
        return entry
    entry.update(
        target=quantities(r.target.cpu_millicores, r.target.memory_bytes),
        lowerBound=quantities(r.lower_bound.cpu_millicores, r.lower_bound.memory_bytes),
        upperBound=quantities(r.upper_bound.cpu_millicores, r.upper_bound.memory_bytes),
        uncappedTarget=quantities(r.uncapped_target.cpu_millicores, r.uncapped_target.memory_bytes),
        recommendedLimits=quantities(r.limits.cpu_millicores, r.limits.memory_bytes),
    )
    return entry


def workload_entries(
    rows: Sequence[Assessment], last_actions: Mapping[str, Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    by_workload: dict[str, list[Assessment]] = defaultdict(list)
    for row in rows:
        by_workload[row.recommendation.workload].append(row)
    entries = []
    for workload in sorted(by_workload):
        group = by_workload[workload]
        entry: dict[str, Any] = {
            "workload": workload,
            "pods": max(r.replicas for r in group),
            "containers": [
                container_entry(r) for r in sorted(group, key=lambda r: r.recommendation.container)
            ],
        }
        if last_actions and workload in last_actions:
            entry["lastAction"] = dict(last_actions[workload])
        entries.append(entry)
    return entries


def with_auto_apply(
    entries: Sequence[Mapping[str, Any]],
    last_actions: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Workload entries with Apply mode's last action and current state merged in."""
    out = []
    for entry in entries:
        e = dict(entry)
        ref = str(e.get("workload"))
        if ref in last_actions:
            e["lastAction"] = dict(last_actions[ref])
        if ref in states:
            e["autoApply"] = dict(states[ref])
        out.append(e)
    return out


def change_text(t: Totals) -> str:
    cpu = t.cpu_cores_added - t.cpu_cores_freed
    mem = t.memory_gib_added - t.memory_gib_freed
    return f"{cpu:+.2f} cores, {mem:+.2f} GiB"


def summary(t: Totals, workloads: int, truncated: bool) -> dict[str, Any]:
    return {
        "workloads": workloads,
        "containers": t.containers,
        "insufficientData": t.insufficient_data,
        "cpuCoresFreed": round(t.cpu_cores_freed, 3),
        "cpuCoresAdded": round(t.cpu_cores_added, 3),
        "memoryGiBFreed": round(t.memory_gib_freed, 3),
        "memoryGiBAdded": round(t.memory_gib_added, 3),
        "change": change_text(t),
        "truncated": truncated,
    }


def _importance(entry: Mapping[str, Any]) -> tuple[int, str]:
    worst = max((_ORDER.index(Severity(c["severity"])) for c in entry["containers"]), default=0)
    return (-worst, str(entry["workload"]))


def fit(entries: list[dict[str, Any]], budget_bytes: int) -> tuple[list[dict[str, Any]], bool]:
    """Keep the most severe workloads whose details fit the budget (sorted by name)."""
    size = len(json.dumps(entries, separators=(",", ":")))
    if size <= budget_bytes:
        return entries, False
    kept, used = [], 2
    for entry in sorted(entries, key=_importance):
        cost = len(json.dumps(entry, separators=(",", ":"))) + 1
        if used + cost > budget_bytes:
            continue
        kept.append(entry)
        used += cost
    return sorted(kept, key=lambda e: str(e["workload"])), True
