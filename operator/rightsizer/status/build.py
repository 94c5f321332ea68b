"""Conditions of the operator's statuses (pure).

Conditions are a list-map keyed by ``type``; a condition keeps its ``lastTransitionTime``
while its status does not change. Each workload's recommendation is an object of its own
(``status/recommendation.py``); the policy's summary is ``status/policy.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


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


def status_after_pass(
    new_status: Mapping[str, Any] | None, stored: Mapping[str, Any],
    condition: Condition | Sequence[Condition], when: tuple[float, int],
) -> dict[str, Any] | None:  # fmt: skip
    """This tick's new status (else nothing) with Apply mode's condition merged in; None
    when nothing changes what is stored. ``when``: the time and the policy generation the
    condition is for. (Each workload's state is on its recommendation object.)"""
    base = new_status if new_status is not None else stored
    now_s, generation = when
    new = [condition] if isinstance(condition, Condition) else list(condition)
    conditions = merge_conditions(base.get("conditions") or [], new, now_s, generation)
    if new_status is None and conditions == list(stored.get("conditions") or []):
        return None
    return {**(new_status or {}), "conditions": conditions}
