"""A report as a table, Markdown, CSV, JSON or YAML."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import yaml

from rightsizer.model.assessment import Assessment, Totals
from rightsizer.quantity import DAY_S, human_cpu, human_memory
from rightsizer.report.hpa import WorkloadHpa
from rightsizer.report.recommendations import change_cells, to_document

FORMATS = ("table", "json", "yaml", "csv", "markdown")


def _cells(row: Assessment) -> list[str]:
    r = row.recommendation
    base = [r.namespace, r.workload, r.container, str(row.replicas)]
    if not row.enough_data:
        return [*base, human_cpu(r.current_requests.cpu_millicores), "?", "-",
                human_memory(r.current_requests.memory_bytes), "?", "-",
                str(r.cpu_samples), f"{r.history_span_s / DAY_S:.1f}d",
                f"insufficient data: {row.reason}"]  # fmt: skip
    return [
        *base,
        *change_cells(r),
        str(r.cpu_samples),
        f"{r.history_span_s / DAY_S:.1f}d",
        row.severity.value,
    ]


HEADER = ["NAMESPACE", "WORKLOAD", "CONTAINER", "PODS", "CPU NOW", "CPU REC", "CPU Δ",
          "MEM NOW", "MEM REC", "MEM Δ", "SAMPLES", "HISTORY", "SEVERITY"]  # fmt: skip


def totals_line(t: Totals) -> str:
    return (
        f"{t.containers} containers with recommendations, {t.insufficient_data} with "
        f"insufficient data; CPU: {t.cpu_cores_freed:.2f} cores freed, "
        f"{t.cpu_cores_added:.2f} added; memory: {t.memory_gib_freed:.2f} GiB freed, "
        f"{t.memory_gib_added:.2f} GiB added (× pods)"
    )


def hpa_section(hpa: Sequence[WorkloadHpa], bullet: str = "  ") -> list[str]:
    """The HPA target changes next to the request changes (``--kube``: live HPAs)."""
    if not hpa:
        return []
    head = "HPA targets that keep their scale points with the recommended requests:"
    return ["", head, *(f"{bullet}{w.line()}" for w in hpa)]


def render_table(rows: Sequence[Assessment], t: Totals, hpa: Sequence[WorkloadHpa] = ()) -> str:
    table = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in table
    ]
    return "\n".join([*lines, *hpa_section(hpa), "", totals_line(t)]) + "\n"


def render_markdown(rows: Sequence[Assessment], t: Totals, hpa: Sequence[WorkloadHpa] = ()) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    return "\n".join([*out, *hpa_section(hpa, "- "), "", totals_line(t)]) + "\n"


def to_report_document(
    rows: Sequence[Assessment], t: Totals, source: dict[str, Any],
    hpa: Sequence[WorkloadHpa] = (),
) -> dict[str, Any]:  # fmt: skip
    return _document([_item(row) for row in rows], t, source, hpa)


def _item(row: Assessment) -> dict[str, Any]:
    item: dict[str, Any] = to_document([row.recommendation])["recommendations"][0]
    item["pods"] = row.replicas
    item["historySeconds"] = round(row.recommendation.history_span_s, 3)
    item["severity"] = row.severity.value
    if not row.enough_data:
        item["insufficientData"] = row.reason
        for key in ("target", "lowerBound", "upperBound", "uncappedTarget", "limits"):
            item.pop(key, None)
    return item


def _document(
    items: list[dict[str, Any]], t: Totals, source: dict[str, Any], hpa: Sequence[WorkloadHpa]
) -> dict[str, Any]:
    return {
        "source": source,
        "totals": {
            "containers": t.containers,
            "insufficientData": t.insufficient_data,
            "cpuCoresFreed": round(t.cpu_cores_freed, 3),
            "cpuCoresAdded": round(t.cpu_cores_added, 3),
            "memoryGiBFreed": round(t.memory_gib_freed, 3),
            "memoryGiBAdded": round(t.memory_gib_added, 3),
        },
        "recommendations": items,
        **({"hpa": [item for w in hpa for item in w.document()]} if hpa else {}),
    }


def render_json(
    rows: Sequence[Assessment], t: Totals, source: dict[str, Any],
    hpa: Sequence[WorkloadHpa] = (),
) -> str:  # fmt: skip
    """``json.dumps(to_report_document(…), indent=2)``, the same text, built one row at a
    time: the encoder's pieces of the whole document would take about eight times the
    text (37 MiB for 5,000 rows, the report's peak memory)."""
    frame = json.dumps(_document([], t, source, hpa), indent=2)
    if not rows:
        return frame + "\n"
    slot = '\n  "recommendations": []'
    head, sep, tail = frame.partition(slot)
    assert sep, "the document has its recommendations at the top level"
    pad = "\n    "
    items = ",\n".join("    " + json.dumps(_item(row), indent=2).replace("\n", pad) for row in rows)
    return f'{head}\n  "recommendations": [\n{items}\n  ]{tail}\n'


def render_csv(rows: Sequence[Assessment]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["namespace", "workload", "container", "pods", "cpu_request_now_m",
                "cpu_target_m", "memory_request_now_bytes", "memory_target_bytes",
                "cpu_samples", "history_s", "severity", "insufficient_data"])  # fmt: skip
    for row in rows:
        r = row.recommendation
        ok = row.enough_data
        w.writerow([r.namespace, r.workload, r.container, row.replicas,
                    r.current_requests.cpu_millicores, r.target.cpu_millicores if ok else "",
                    r.current_requests.memory_bytes, r.target.memory_bytes if ok else "",
                    r.cpu_samples, round(r.history_span_s, 3), row.severity.value,
                    row.reason])  # fmt: skip
    return buf.getvalue()


def render_report(
    rows: Sequence[Assessment], t: Totals, fmt: str, source: dict[str, Any],
    hpa: Sequence[WorkloadHpa] = (),
) -> str:  # fmt: skip
    """``hpa``: the HPA target changes (``report/hpa.py``); not in CSV (one row a container)."""
    if fmt == "table":
        return render_table(rows, t, hpa)
    if fmt == "markdown":
        return render_markdown(rows, t, hpa)
    if fmt == "csv":
        return render_csv(rows)
    if fmt == "json":
        return render_json(rows, t, source, hpa)
    doc = to_report_document(rows, t, source, hpa)
    if fmt == "yaml":
        return yaml.safe_dump(doc, sort_keys=False)
    raise ValueError(f"unknown format {fmt!r}")
