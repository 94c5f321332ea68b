"""Recommendations as JSON/YAML (``samples-format.md``), CSV, or a table for people."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import yaml

from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.model.change import change_percent
from rightsizer.quantity import format_memory, human_cpu, human_memory, quantities

FORMATS = ("table", "json", "yaml", "csv")


def _quantities(r: Resources) -> dict[str, str]:
    return quantities(r.cpu_millicores, r.memory_bytes)


def to_document(recs: Sequence[ContainerRecommendation]) -> dict[str, Any]:
    """The JSON document of ``samples-format.md`` (extra fields after the fixed ones)."""
    items = []
    for r in recs:
        item: dict[str, Any] = {
            "namespace": r.namespace,
            "workload": r.workload,
            "container": r.container,
            "target": _quantities(r.target),
            "lowerBound": _quantities(r.lower_bound),
            "upperBound": _quantities(r.upper_bound),
            "uncappedTarget": _quantities(r.uncapped_target),
            "samples": {"cpu": r.cpu_samples, "memory": r.memory_samples},
            "limits": _quantities(r.limits),
            "confidence": round(r.confidence, 4),
            "current": {
                "requests": _quantities(r.current_requests),
                "limits": _quantities(r.current_limits),
            },
            "peakMemory": format_memory(int(r.peak_memory_bytes)),
            "oomKills": r.oom_kills,
        }
        items.append(item)
    return {"recommendations": items}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0f}%"


def change_cells(r: ContainerRecommendation) -> list[str]:
    """Current request, recommendation and change, for CPU then memory (for tables)."""
    return [
        human_cpu(r.current_requests.cpu_millicores),
        human_cpu(r.target.cpu_millicores),
        _pct(change_percent(r.current_requests.cpu_millicores, r.target.cpu_millicores)),
        human_memory(r.current_requests.memory_bytes),
        human_memory(r.target.memory_bytes),
        _pct(change_percent(r.current_requests.memory_bytes, r.target.memory_bytes)),
    ]


def render_table(recs: Sequence[ContainerRecommendation]) -> str:
    header = [
        "NAMESPACE", "WORKLOAD", "CONTAINER",
        "CPU NOW", "CPU REC", "CPU Δ",
        "MEM NOW", "MEM REC", "MEM Δ",
        "CPU LIMIT", "MEM LIMIT", "SAMPLES", "HISTORY",
    ]  # fmt: skip
    rows = [header]
    for r in recs:
        rows.append(
            [
                r.namespace,
                r.workload,
                r.container,
                *change_cells(r),
                human_cpu(r.limits.cpu_millicores),
                human_memory(r.limits.memory_bytes),
                str(r.cpu_samples),
                f"{r.confidence:.1f}d",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    if not recs:
        lines.append("(no containers with samples)")
    return "\n".join(lines) + "\n"


def render_csv(recs: Sequence[ContainerRecommendation]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "namespace", "workload", "container",
            "cpu_request_now_m", "cpu_target_m", "cpu_lower_m", "cpu_upper_m", "cpu_limit_m",
            "memory_request_now_bytes", "memory_target_bytes", "memory_lower_bytes",
            "memory_upper_bytes", "memory_limit_bytes", "cpu_samples", "memory_samples",
            "confidence_days",
        ]
    )  # fmt: skip
    for r in recs:
        writer.writerow(
            [
                r.namespace, r.workload, r.container,
                r.current_requests.cpu_millicores, r.target.cpu_millicores,
                r.lower_bound.cpu_millicores, r.upper_bound.cpu_millicores,
                r.limits.cpu_millicores,
                r.current_requests.memory_bytes, r.target.memory_bytes,
                r.lower_bound.memory_bytes, r.upper_bound.memory_bytes, r.limits.memory_bytes,
                r.cpu_samples, r.memory_samples, round(r.confidence, 4),
            ]
        )  # fmt: skip
    return buf.getvalue()


def render(recs: Sequence[ContainerRecommendation], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_document(recs), indent=2) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(to_document(recs), sort_keys=False)
    if fmt == "csv":
        return render_csv(recs)
    if fmt == "table":
        return render_table(recs)
    raise ValueError(f"unknown format {fmt!r}")
