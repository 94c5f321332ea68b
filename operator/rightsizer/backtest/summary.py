"""Totals per strategy, and their rendering as a table, Markdown or JSON (pure text).

Savings compare a strategy's requested resource-hours with the original requests over the
same samples (``1 − strategy / original``). The combined cost weighs core-hours and
GiB-hours by ``Prices`` (default: Google Compute Engine e2 on-demand list prices,
us-central1, which put one vCPU at ≈ 7.5 GiB of memory).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rightsizer.backtest.ledger import Ledger
from rightsizer.backtest.replay import BacktestResult
from rightsizer.engine.buckets import IntArray
from rightsizer.quantity import WEEK_S

HOUR_S = 3600.0
GIB = float(2**30)


@dataclass(frozen=True)
class Prices:
    cpu_core_hour: float = 0.021811
    """USD per vCPU-hour (GCE e2, us-central1)."""
    memory_gib_hour: float = 0.002923
    """USD per GiB-hour (GCE e2, us-central1)."""


@dataclass(frozen=True)
class StrategySummary:
    label: str
    cost_savings: float | None
    """Fraction of the original cost saved (CPU and memory weighed by ``Prices``)."""
    cpu_savings: float | None
    memory_savings: float | None
    oom_events: int
    containers_with_oom: int
    memory_above_request: float
    """Fraction of the observed memory time with usage above the memory request."""
    memory_peak_fleet_excess: float
    """At the worst moment, memory used above requests as a fraction of all requests."""
    cpu_peak_fleet_excess: float
    """At the worst moment, CPU used above requests as a fraction of all requests."""
    cpu_above_request: float
    cpu_unmet: float
    """CPU used above the request, as a fraction of all CPU used."""
    cpu_above_limit: float
    adoptions: int
    changes: int
    """Rollouts after the first adoption."""
    changes_per_container_week: float
    cpu_request_core_hours: float
    memory_request_gib_hours: float
    cpu_used_core_hours: float
    memory_used_gib_hours: float
    cpu_slack_core_hours: float
    memory_slack_gib_hours: float
    cost_usd: float
    # the measures everyone compares on (issue 18)
    oom_container_days: float
    """Share of container-days with a memory sample above the memory line in force."""
    cpu_samples_above_request: float
    """Share of CPU samples above the CPU request in force."""
    cpu_reserved: float | None
    """Requested core-hours as a share of the original requests' (same rows)."""
    memory_reserved_by_request: float | None
    """Requested GiB-hours as a share of the original requests'."""
    memory_reserved_by_limit: float | None
    """GiB-hours of memory limits (requests where unset) as a share of the originals'."""
    churn: float
    """Share of container-day transitions where a request or limit moved by > 10 %."""
    container_days: int
    oom_days: int
    cpu_floor_core_hours: float = 0.0
    """Requested core-hours that only the strategy's floors asked for."""
    memory_floor_gib_hours: float = 0.0
    """Requested GiB-hours that only the strategy's floors asked for."""
    cpu_floor_share: float | None = None
    """``cpu_floor_core_hours`` as a share of the original requests' core-hours."""
    memory_floor_share: float | None = None
    """``memory_floor_gib_hours`` as a share of the original requests' GiB-hours."""


def _fraction(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def _saving(mine: float, original: float) -> float | None:
    return 1.0 - mine / original if original > 0 else None


def _share(mine: float, original: float) -> float | None:
    return mine / original if original > 0 else None


def summarize(result: BacktestResult, prices: Prices | None = None) -> list[StrategySummary]:
    prices = prices or Prices()
    original = result.outcomes[0].ledger
    orig_cpu = original.total("cpu_requested_core_s")
    orig_mem = original.total("memory_requested_byte_s")
    orig_cost = _cost(orig_cpu, orig_mem, prices)
    orig_mem_cap = original.total("memory_limit_comparable_byte_s")
    observed_weeks = original.total("cpu_observed_s") / WEEK_S
    summaries = []
    for outcome in result.outcomes:
        led = outcome.ledger
        cpu_cmp = led.total("cpu_comparable_core_s")
        mem_cmp = led.total("memory_comparable_byte_s")
        changes = int(led.total("changes"))
        summaries.append(
            StrategySummary(
                label=outcome.label,
                cost_savings=_saving(_cost(cpu_cmp, mem_cmp, prices), orig_cost),
                cpu_savings=_saving(cpu_cmp, orig_cpu),
                memory_savings=_saving(mem_cmp, orig_mem),
                oom_events=int(led.total("oom_events")),
                containers_with_oom=int(np.count_nonzero(led.oom_events)),
                memory_above_request=_fraction(
                    led.total("memory_above_request_s"), led.total("memory_observed_s")
                ),
                memory_peak_fleet_excess=led.peak_fleet_excess("memory"),
                cpu_peak_fleet_excess=led.peak_fleet_excess("cpu"),
                cpu_above_request=_fraction(
                    led.total("cpu_above_request_s"), led.total("cpu_observed_s")
                ),
                cpu_unmet=_fraction(led.total("cpu_excess_core_s"), led.total("cpu_used_core_s")),
                cpu_above_limit=_fraction(
                    led.total("cpu_above_limit_s"), led.total("cpu_observed_s")
                ),
                adoptions=int(led.total("adoptions")),
                changes=changes,
                changes_per_container_week=_fraction(changes, observed_weeks),
                cpu_request_core_hours=led.total("cpu_requested_core_s") / HOUR_S,
                memory_request_gib_hours=led.total("memory_requested_byte_s") / HOUR_S / GIB,
                cpu_used_core_hours=led.total("cpu_used_core_s") / HOUR_S,
                memory_used_gib_hours=led.total("memory_used_byte_s") / HOUR_S / GIB,
                cpu_slack_core_hours=led.total("cpu_slack_core_s") / HOUR_S,
                memory_slack_gib_hours=led.total("memory_slack_byte_s") / HOUR_S / GIB,
                cost_usd=_cost(
                    led.total("cpu_requested_core_s"), led.total("memory_requested_byte_s"), prices
                ),
                oom_container_days=_fraction(
                    led.total("oom_container_days"), led.total("container_days")
                ),
                cpu_samples_above_request=_fraction(
                    led.total("cpu_samples_above_request"), led.total("cpu_samples")
                ),
                cpu_reserved=_share(cpu_cmp, orig_cpu),
                memory_reserved_by_request=_share(mem_cmp, orig_mem),
                memory_reserved_by_limit=_share(
                    led.total("memory_limit_comparable_byte_s"), orig_mem_cap
                ),
                churn=_fraction(led.total("day_transitions_moved"), led.total("day_transitions")),
                container_days=int(led.total("container_days")),
                oom_days=int(led.total("oom_container_days")),
                cpu_floor_core_hours=led.total("cpu_floor_core_s") / HOUR_S,
                memory_floor_gib_hours=led.total("memory_floor_byte_s") / HOUR_S / GIB,
                cpu_floor_share=_share(led.total("cpu_floor_core_s"), orig_cpu),
                memory_floor_share=_share(led.total("memory_floor_byte_s"), orig_mem),
            )
        )
    return summaries


def _cost(core_s: float, byte_s: float, prices: Prices) -> float:
    return (core_s * prices.cpu_core_hour + byte_s / GIB * prices.memory_gib_hour) / HOUR_S


def worst_containers(result: BacktestResult, count: int) -> IntArray:
    """The worst container of each strategy in turn (then each one's second worst, …),
    without repeats: most OOM events, then most time above the memory request, then
    above the CPU request. With no strategies, the originals' worst."""
    contenders = result.outcomes[1:] or result.outcomes
    rankings = [
        np.lexsort(
            (
                -o.ledger.cpu_above_request_s,
                -o.ledger.memory_above_request_s,
                -o.ledger.oom_events.astype(np.float64),
            )
        ).tolist()
        for o in contenders
    ]
    picked: list[int] = []
    depth = 0
    limit = min(count, result.trace.containers)
    while len(picked) < limit:
        for ranking in rankings:
            if len(picked) < limit and ranking[depth] not in picked:
                picked.append(ranking[depth])
        depth += 1
    return np.asarray(picked, dtype=np.int64)


# -- rendering ------------------------------------------------------------------------
_COLUMNS = (
    ("STRATEGY", "strategy"),
    ("COST SAVED", "cost saved"),
    ("CPU SAVED", "CPU saved"),
    ("MEM SAVED", "memory saved"),
    ("OOM EVENTS", "OOM events"),
    ("OOM CONTAINERS", "containers with OOM"),
    ("MEM>REQ", "time memory > request"),
    ("MEM FLEET PEAK", "peak fleet memory > requests"),
    ("CPU>REQ", "time CPU > request"),
    ("CPU UNMET", "CPU use above request"),
    ("CPU FLEET PEAK", "peak fleet CPU > requests"),
    ("CPU>LIMIT", "time CPU > limit"),
    ("CHANGES", "changes"),
    ("CHANGES/CTR-WEEK", "changes per container-week"),
    ("OOM DAYS", "OOM container-days"),
    ("CPU SAMPLES>REQ", "CPU samples > request"),
    ("CORE-H", "reserved core-hours"),
    ("GIB-H REQ", "GiB-hours by request"),
    ("GIB-H LIMIT", "GiB-hours by limit"),
    ("CHURN", "churn (day transitions > 10 %)"),
    ("FLOOR CORE-H", "floor core-hours"),
    ("FLOOR GIB-H", "floor GiB-hours"),
)


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * 100:.{digits}f}%"


def _cells(s: StrategySummary) -> list[str]:
    return [
        s.label,
        _pct(s.cost_savings),
        _pct(s.cpu_savings),
        _pct(s.memory_savings),
        str(s.oom_events),
        str(s.containers_with_oom),
        _pct(s.memory_above_request, 2),
        _pct(s.memory_peak_fleet_excess),
        _pct(s.cpu_above_request, 2),
        _pct(s.cpu_unmet, 2),
        _pct(s.cpu_peak_fleet_excess),
        _pct(s.cpu_above_limit, 2),
        str(s.changes),
        f"{s.changes_per_container_week:.2f}",
        _pct(s.oom_container_days, 2),
        _pct(s.cpu_samples_above_request, 2),
        _pct(s.cpu_reserved),
        _pct(s.memory_reserved_by_request),
        _pct(s.memory_reserved_by_limit),
        _pct(s.churn),
        f"{s.cpu_floor_core_hours:.1f} ({_pct(s.cpu_floor_share, 2)})",
        f"{s.memory_floor_gib_hours:.1f} ({_pct(s.memory_floor_share, 2)})",
    ]


def render_table(summaries: list[StrategySummary]) -> str:
    rows = [[c[0] for c in _COLUMNS], *(_cells(s) for s in summaries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def render_markdown(summaries: list[StrategySummary]) -> str:
    header = "| " + " | ".join(c[1] for c in _COLUMNS) + " |"
    rule = "|" + "|".join(["---"] + ["---:"] * (len(_COLUMNS) - 1)) + "|"
    body = ["| " + " | ".join(_cells(s)) + " |" for s in summaries]
    return "\n".join([header, rule, *body]) + "\n"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_document(
    result: BacktestResult, summaries: list[StrategySummary], *, per_container: bool = True
) -> dict[str, Any]:
    """Settings, totals per strategy and (optionally) per-container figures."""
    trace, grid, st = result.trace, result.grid, result.settings
    doc: dict[str, Any] = {
        "trace": {
            "containers": trace.containers,
            "samples": trace.rows,
            "start": _iso(float(trace.usage.timestamp_s[0])),
            "end": _iso(float(trace.usage.timestamp_s[-1])),
            "steps": grid.steps,
        },
        "settings": {
            "everySeconds": st.every_s,
            "historySeconds": st.history_s,
            "warmupSeconds": st.warmup_s,
            "minChangeFraction": st.min_change_fraction,
            "oomFeedback": st.oom_feedback,
        },
        "strategies": [{_camel(k): v for k, v in asdict(s).items()} for s in summaries],
    }
    if per_container:
        doc["containers"] = _per_container(result)
    return doc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _per_container(result: BacktestResult) -> list[dict[str, Any]]:
    items = []
    for cid, (ns, workload, container) in enumerate(result.trace.registry.containers):
        per: dict[str, Any] = {}
        for outcome in result.outcomes:
            per[outcome.label] = _container_figures(outcome.ledger, cid)
        items.append(
            {"namespace": ns, "workload": workload, "container": container, "strategies": per}
        )
    return items


def _container_figures(led: Ledger, cid: int) -> dict[str, Any]:
    return {
        "oomEvents": int(led.oom_events[cid]),
        "memoryAboveRequestHours": round(float(led.memory_above_request_s[cid]) / HOUR_S, 4),
        "cpuAboveRequestHours": round(float(led.cpu_above_request_s[cid]) / HOUR_S, 4),
        "cpuAboveLimitHours": round(float(led.cpu_above_limit_s[cid]) / HOUR_S, 4),
        "cpuRequestCoreHours": round(float(led.cpu_requested_core_s[cid]) / HOUR_S, 4),
        "memoryRequestGibHours": round(float(led.memory_requested_byte_s[cid]) / HOUR_S / GIB, 4),
        "changes": int(led.changes[cid]),
        "containerDays": int(led.container_days[cid]),
        "oomContainerDays": int(led.oom_container_days[cid]),
        "dayTransitions": int(led.day_transitions[cid]),
        "dayTransitionsMoved": int(led.day_transitions_moved[cid]),
    }


DECISIONS_HEADER = (
    "namespace,workload,container,time,cpu_request,cpu_limit,memory_request,memory_limit"
)


def _cores(value: float) -> str:
    if not math.isfinite(value):
        return ""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _whole_bytes(value: float) -> str:
    return str(math.ceil(value)) if math.isfinite(value) else ""


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def render_decisions(result: BacktestResult, label: str) -> str:
    """The ``--decisions`` CSV of one strategy: the values in force after each of its
    rollouts (time in Unix seconds, cores and bytes, an empty cell = not set)."""
    outcome = next(o for o in result.outcomes if o.label == label)
    lines = [DECISIONS_HEADER]
    d = outcome.decisions
    if d is not None:
        keys = result.trace.registry.containers
        for i in range(len(d)):
            ns, workload, container = keys[int(d.container_id[i])]
            cells = [
                *(_csv_field(k) for k in (ns, workload, container)),
                f"{d.time_s[i]:.0f}",
                _cores(float(d.cpu_request[i])),
                _cores(float(d.cpu_limit[i])),
                _whole_bytes(float(d.memory_request[i])),
                _whole_bytes(float(d.memory_limit[i])),
            ]
            lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def render_json(result: BacktestResult, summaries: list[StrategySummary]) -> str:
    return json.dumps(to_document(result, summaries), indent=2) + "\n"
