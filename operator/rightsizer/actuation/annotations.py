"""Annotate mode: recommendation annotations on a workload's metadata (pure).

Only the workload's own metadata is annotated, never its pod template, so nothing rolls.
No timestamps go into the values, and an annotation is rewritten only when some target
moved by at least the policy's minimum change — no write storms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rightsizer.model.assessment import Assessment
from rightsizer.model.change import must_move
from rightsizer.names import RECOMMENDATION_ANNOTATION as RECOMMENDATION
from rightsizer.names import SUMMARY_ANNOTATION as SUMMARY
from rightsizer.quantity import human_cpu, human_memory, quantities


def wanted_annotations(rows: Sequence[Assessment], policy: str) -> dict[str, str] | None:
    """The two annotations for one workload's rows; None when no container has enough data."""
    containers: dict[str, Any] = {}
    parts = []
    for row in sorted(rows, key=lambda r: r.recommendation.container):
        if not row.enough_data:
            continue
        r = row.recommendation
        containers[r.container] = {
            "requests": quantities(r.target.cpu_millicores, r.target.memory_bytes),
            "limits": quantities(r.limits.cpu_millicores, r.limits.memory_bytes),
        }
        parts.append(
            f"{r.container}: cpu {human_cpu(r.current_requests.cpu_millicores)}→"
            f"{human_cpu(r.target.cpu_millicores)}, memory "
            f"{human_memory(r.current_requests.memory_bytes)}→{human_memory(r.target.memory_bytes)}"
        )
    if not containers:
        return None
    value = {"policy": policy, "containers": containers}
    return {
        RECOMMENDATION: json.dumps(value, separators=(",", ":"), sort_keys=True),
        SUMMARY: "; ".join(parts),
    }


def _targets(value: str | None) -> dict[tuple[str, str], float]:
    if not value:
        return {}
    try:
        doc = json.loads(value)
        out = {}
        for name, c in doc.get("containers", {}).items():
            req = c.get("requests", {})
            if "cpu" in req:
                out[(name, "cpu")] = float(str(req["cpu"]).rstrip("m"))
            if "memory" in req:
                out[(name, "memory")] = float(req["memory"])
        return out
    except (ValueError, AttributeError, TypeError):
        return {}


Band = tuple[float | None, float | None]


def annotation_bands(rows: Sequence[Assessment]) -> dict[tuple[str, str], Band]:
    """The strategy's hysteresis bands of the requests, by (container, resource), in the
    annotation's units (millicores, bytes); empty when the strategy gives none."""
    bands: dict[tuple[str, str], Band] = {}
    for row in rows:
        band = row.recommendation.keep
        if not row.enough_data or band is None:
            continue
        name = row.recommendation.container
        bands[(name, "cpu")] = (band.request_low.cpu_millicores, band.request_high.cpu_millicores)
        bands[(name, "memory")] = (band.request_low.memory_bytes, band.request_high.memory_bytes)
    return bands


def annotation_update(
    current: Mapping[str, str],
    wanted: Mapping[str, str],
    min_change_percent: float,
    bands: Mapping[tuple[str, str], Band] | None = None,
) -> dict[str, str] | None:
    """The annotations to write, or None when what is there is close enough: no target
    moved by the minimum change, or — with the strategy's hysteresis ``bands`` — every
    annotated target that did is still inside its band (the rule Apply mode uses)."""
    if all(current.get(k) == v for k, v in wanted.items()):
        return None
    old, new = _targets(current.get(RECOMMENDATION)), _targets(wanted.get(RECOMMENDATION))
    if old.keys() == new.keys() and current.get(RECOMMENDATION):
        bands = bands or {}
        moved = any(
            must_move(old[k], new[k], min_change_percent, *bands.get(k, (None, None))) for k in new
        )
        if not moved:
            return None
    return dict(wanted)
