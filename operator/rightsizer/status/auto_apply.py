"""Apply mode's state between passes (pure): the holds already told, and each workload's
``lastAction`` and ``autoApply`` for its recommendation object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rightsizer.status.recommendation import Seen


def workload_ref(obj: Seen) -> str:
    """``Kind/name`` of the workload a recommendation object is about."""
    workload = obj.spec.get("workload") or {}
    return f"{workload.get('kind')}/{workload.get('name')}"


def stored_entries(objects: Sequence[Seen], policy_uid: str) -> dict[str, dict[str, Any]]:
    """Workload → ``lastAction`` and ``autoApply`` as the policy's own objects have them:
    what the operator had done and told before a restart."""
    out: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if obj.owner_uid != policy_uid:
            continue
        kept = {k: obj.status.get(k) for k in ("lastAction", "autoApply") if obj.status.get(k)}
        if kept:
            out[workload_ref(obj)] = kept
    return out


def told_states(
    stored: Mapping[str, Mapping[str, Any]], remembered: Mapping[str, Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """Workload → the Apply-mode state already told (an Event was sent): the operator's
    memory, seeded after a restart from the recommendation objects (``stored_entries``),
    so a restart sends no second Event for the same hold."""
    told: dict[str, Mapping[str, Any]] = {
        ref: entry.get("autoApply") or {} for ref, entry in stored.items()
    }
    told.update(remembered)
    return told


def object_entries(
    stored: Mapping[str, Mapping[str, Any]], last_actions: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Workload → what its object shows of Annotate and Apply modes: the last action
    taken (in this process, else as the object has it) and, in Apply mode (``states``
    given), the state of the last pass; outside Apply mode no ``autoApply``."""
    refs = set(stored) | set(last_actions) | set(states or {})
    out: dict[str, dict[str, Any]] = {}
    for ref in refs:
        action = last_actions.get(ref) or (stored.get(ref) or {}).get("lastAction")
        state = (states or {}).get(ref)
        entry = {k: dict(v) for k, v in (("lastAction", action), ("autoApply", state)) if v}
        if entry:
            out[ref] = entry
    return out
