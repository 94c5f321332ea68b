"""What a RightSizePolicy's status says about its recommendations (pure).

The status describes the policy, not each workload: totals over every object it owns
(cores and GiB freed or added, counts per state), the top changes by severity (at most
``TOP_CHANGES``) and how to list all of them. It is summed from the objects as the API
server has them (``status.recommendation.effective``), so it changes only when one of
them does; ``status_patch`` then leaves the status alone unless something a person sees
changed, or the heartbeat (``lastReconcileTime``) is due.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rightsizer import names
from rightsizer.names import RecommendationState
from rightsizer.status.recommendation import object_name

TOP_CHANGES = 20
#: A ``Conflict`` condition names at most this many workloads (and how many more).
CONFLICTS_NAMED = 10
#: ``lastReconcileTime`` (and the history's read and checkpoint times) are rewritten on
#: their own at most this often; any visible change writes them too.
HEARTBEAT_S = 900.0
#: Fields that move at every reconcile: written with a visible change or the heartbeat.
_HEARTBEAT_FIELDS = ("lastReconcileTime",)
_HISTORY_HEARTBEAT = ("readUntil", "lastCheckpointTime")
#: Fields of earlier versions, removed (a merge patch's null) when the status has them.
_LEGACY_FIELDS = ("workloads",)
_SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
GIB = 2**30


def _state_key(state: Any) -> str:
    """``Held (Cooldown)`` → ``Held``."""
    return str(state or RecommendationState.RECOMMENDED).split(" (", 1)[0]


def _deltas(status: Mapping[str, Any]) -> tuple[float, float, int, int]:
    """(cores, GiB) now − recommended over the workload's pods; containers with and
    without a recommendation."""
    pods = int(status.get("pods") or 1)
    cpu = mem = 0.0
    ready = missing = 0
    for exact in (status.get("containers") or {}).values():
        target = exact.get("target")
        if not target:
            missing += 1
            continue
        ready += 1
        now = exact.get("requests") or {}
        if now.get("cpuMillicores") is not None and target.get("cpuMillicores") is not None:
            cpu += (now["cpuMillicores"] - target["cpuMillicores"]) * pods / 1000
        if now.get("memoryBytes") is not None and target.get("memoryBytes") is not None:
            mem += (now["memoryBytes"] - target["memoryBytes"]) * pods / GIB
    return cpu, mem, ready, missing


def overview(
    namespace: str, policy: str, objects: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """``summary``, ``topChanges`` and ``recommendations`` of the policy's status, from
    its objects' (name, kept status) pairs."""
    freed = {"cpu": 0.0, "mem": 0.0}
    added = {"cpu": 0.0, "mem": 0.0}
    containers = insufficient = 0
    states: Counter[str] = Counter()
    changes = []
    for name, status in objects:
        cpu, mem, ready, missing = _deltas(status)
        containers += ready
        insufficient += missing
        freed["cpu"] += max(cpu, 0.0)
        added["cpu"] += max(-cpu, 0.0)
        freed["mem"] += max(mem, 0.0)
        added["mem"] += max(-mem, 0.0)
        states[_state_key(status.get("state"))] += 1
        severity = str(status.get("severity") or "ok")
        if _SEVERITY_RANK.get(severity, 0) > 0:
            changes.append((severity, abs(cpu) + abs(mem), name, status))
    changes.sort(key=lambda c: (-_SEVERITY_RANK[c[0]], -c[1], c[2]))
    cpu_net, mem_net = added["cpu"] - freed["cpu"], added["mem"] - freed["mem"]
    selector = f"{names.POLICY_LABEL}={policy}"
    return {
        "summary": {
            "workloads": len(objects),
            "containers": containers,
            "insufficientData": insufficient,
            "cpuCoresFreed": round(freed["cpu"], 3),
            "cpuCoresAdded": round(added["cpu"], 3),
            "memoryGiBFreed": round(freed["mem"], 3),
            "memoryGiBAdded": round(added["mem"], 3),
            "change": f"{cpu_net:+.2f} cores, {mem_net:+.2f} GiB",
            "states": {s.value: states.get(s.value, 0) for s in RecommendationState},
        },
        "topChanges": [
            {
                "workload": str(status.get("workload")),
                "recommendation": name,
                "severity": severity,
                "cpu": str(status.get("cpu") or "-"),
                "memory": str(status.get("memory") or "-"),
                "state": str(status.get("state") or RecommendationState.RECOMMENDED),
            }
            for severity, _, name, status in changes[:TOP_CHANGES]
        ],
        "recommendations": {
            "count": len(objects),
            "labelSelector": selector,
            "command": f"kubectl get rsr -n {namespace} -l {selector}",
        },
    }


def _seconds(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _visible(status: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if k not in _HEARTBEAT_FIELDS}
    history = out.get("history")
    if isinstance(history, Mapping):
        out["history"] = {k: v for k, v in history.items() if k not in _HISTORY_HEARTBEAT}
    return out


def status_patch(
    stored: Mapping[str, Any], pending: Mapping[str, Any], now_s: float
) -> dict[str, Any] | None:
    """The merge patch that brings ``stored`` to ``pending`` (None: nothing to write).
    Nothing is written when only heartbeat fields moved, unless the stored heartbeat is
    older than ``HEARTBEAT_S``; fields of earlier versions are removed."""
    patch = dict(pending)
    legacy = {k: None for k in _LEGACY_FIELDS if stored.get(k) is not None}
    summary = stored.get("summary")
    if isinstance(summary, Mapping) and "truncated" in summary and "summary" not in patch:
        patch["summary"] = dict(summary)
    if (
        isinstance(patch.get("summary"), Mapping)
        and isinstance(summary, Mapping)
        and ("truncated" in summary)
    ):
        patch["summary"] = {**patch["summary"], "truncated": None}
    seen = _visible(stored)
    changed = bool(legacy) or any(seen.get(k) != v for k, v in _visible(patch).items())
    beat = _seconds(stored.get("lastReconcileTime"))
    due = "lastReconcileTime" in patch and (beat is None or now_s - beat >= HEARTBEAT_S)
    if not changed and not due:
        return None
    return {**patch, **legacy}


def conflict_message(namespace: str, conflicts: Mapping[str, str]) -> str:
    """The ``Conflict`` condition's message: each workload an older policy owns instead,
    with that policy and the RightSizeRecommendation it holds (``kubectl get rsr NAME``);
    at most ``CONFLICTS_NAMED`` of them, then how many more and how to list them.

    ``conflicts`` maps ``Kind/name`` to the owning policy's name."""
    if not conflicts:
        return ""
    named = sorted(conflicts.items())
    parts = []
    for ref, owner in named[:CONFLICTS_NAMED]:
        kind, _, name = ref.partition("/")
        parts.append(
            f"{ref} belongs to policy {owner} "
            f"(RightSizeRecommendation {namespace}/{object_name(kind, name)})"
        )
    text = "; ".join(parts)
    rest = len(named) - CONFLICTS_NAMED
    if rest > 0:
        owners = ",".join(sorted(set(conflicts.values())))
        text += (
            f"; and {rest} more: kubectl get rsr -n {namespace} "
            f"-l '{names.POLICY_LABEL} in ({owners})'"
        )
    return text
