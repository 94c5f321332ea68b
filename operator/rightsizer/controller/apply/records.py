"""The write records kept on workloads, read back and shown in status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.apply import (
    QuotaRoom,
)
from rightsizer.guardrails.record import (
    AppliedRecord,
    hpa_target_json,
    parse_record,
)
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.names import (
    RECORD_ANNOTATION,
)
from rightsizer.quantity import QuantityError, parse_quantity, quantities
from rightsizer.status.build import iso


def record_of(w: WorkloadInfo) -> AppliedRecord | None:
    text = w.annotations.get(RECORD_ANNOTATION)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return parse_record(data) if isinstance(data, dict) else None


def _pairs_json(m: Mapping[str, tuple[Resources, Resources]]) -> dict[str, Any]:
    return {
        c: {"requests": quantities(r.cpu_millicores, r.memory_bytes),
            "limits": quantities(lim.cpu_millicores, lim.memory_bytes)}
        for c, (r, lim) in sorted(m.items())
    }  # fmt: skip


def last_action(record: AppliedRecord) -> dict[str, Any]:
    """The status form of a write: what was there before and what was written (and the
    HPA targets moved with it: ``hpa``)."""
    return {
        "type": record.state,
        "method": record.method,
        "reason": record.reason,
        "time": iso(record.time_s),
        "previous": _pairs_json(record.previous),
        "applied": _pairs_json(record.applied),
        **({"hpa": [hpa_target_json(h) for h in record.hpa]} if record.hpa else {}),
    }


def quota_rooms(quotas: Sequence[Mapping[str, Any]]) -> list[QuotaRoom]:
    rooms = []
    for q in quotas:
        try:
            hard = {str(k): float(parse_quantity(v)) for k, v in (q.get("hard") or {}).items()}
            used = {str(k): float(parse_quantity(v)) for k, v in (q.get("used") or {}).items()}
        except QuantityError:
            continue
        rooms.append(QuotaRoom(str(q.get("name", "")), hard, used))
    return rooms


IN_PLACE = "InPlace"
"""``AppliedRecord.method`` of an in-place write."""
