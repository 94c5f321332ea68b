"""Apply mode's part of a policy's status (pure): the holds already told, and the status
with a pass's actions, states and condition merged in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rightsizer.status.build import DEFAULT_BUDGET_BYTES, Condition, fit, merge_conditions
from rightsizer.status.build import with_auto_apply as _with_auto_apply


def told_states(
    stored: Mapping[str, Any], remembered: Mapping[str, Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """Workload → the Apply-mode state already told (an Event was sent). Kept in memory,
    since a large status is truncated and would forget them (an Event storm); the stored
    status seeds it after a restart."""
    told: dict[str, Mapping[str, Any]] = {
        str(e.get("workload")): e.get("autoApply") or {} for e in stored.get("workloads") or []
    }
    told.update(remembered)
    return told


def status_after_pass(
    new_status: Mapping[str, Any] | None,
    stored: Mapping[str, Any],
    last_actions: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, Mapping[str, Any]],
    condition: Condition,
    when: tuple[float, int],
) -> dict[str, Any] | None:
    """This tick's new status (else the stored one) with the pass merged in, within the
    status budget; None when nothing changes what is stored. ``when``: the time and the
    policy generation the condition is for."""
    base = new_status if new_status is not None else stored
    now_s, generation = when
    workloads, cut = fit(
        _with_auto_apply(base.get("workloads") or [], last_actions, states), DEFAULT_BUDGET_BYTES
    )
    out = dict(base)
    if cut and isinstance(base.get("summary"), dict):
        out["summary"] = {**base["summary"], "truncated": True}
    conditions = merge_conditions(base.get("conditions") or [], [condition], now_s, generation)
    if (
        new_status is None
        and workloads == list(stored.get("workloads") or [])
        and conditions == list(stored.get("conditions") or [])
    ):
        return None
    return {**out, "workloads": workloads, "conditions": conditions}
