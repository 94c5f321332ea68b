"""PNG charts of a backtest (matplotlib, Agg canvas, no pyplot state): the only module of
the backtest that writes files.

* per container: CPU and memory use over time, with each strategy's request (solid) and
  limit (dashed) once it is in force, the original request (black, dotted) and a cross
  where usage crossed a strategy's memory line (an OOM event);
* savings against risk: one point per strategy, cost saved against OOM events and
  against the time CPU use spent above the request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from rightsizer.backtest.replay import BacktestResult, StrategyOutcome
from rightsizer.backtest.summary import StrategySummary
from rightsizer.engine.buckets import FloatArray, IntArray

GIB = float(2**30)
DPI = 100
USAGE_COLOR = "#9a9a9a"
ORIGINAL_COLOR = "black"
#: Fixed colours for the built-in strategies, so every chart reads the same.
STRATEGY_COLORS = {"vpa": "#d62728", "percentile": "#1f77b4", "headroom": "#2ca02c"}
OTHER_COLORS = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _color(label: str, index: int) -> str:
    return STRATEGY_COLORS.get(label, OTHER_COLORS[index % len(OTHER_COLORS)])


def _times(seconds: FloatArray) -> Any:
    return (seconds * 1000).astype("int64").astype("datetime64[ms]")


def _step_series(result: BacktestResult, values: FloatArray) -> tuple[Any, FloatArray]:
    """A per-step value as a step line: (times, values) with a point at every boundary."""
    grid = result.grid
    bounds = np.asarray([grid.boundary(k) for k in range(grid.steps + 1)], dtype=np.float64)
    return _times(bounds), np.append(values, values[-1:])


def _container_title(result: BacktestResult, cid: int) -> str:
    ns, workload, container = result.trace.registry.containers[cid]
    ooms = ", ".join(f"{o.label} {int(o.ledger.oom_events[cid])}" for o in result.outcomes[1:])
    return f"{ns}/{workload} ({container}) — OOM events: {ooms}"


def _memory_line(outcome: StrategyOutcome, steps: IntArray, cid: int) -> FloatArray:
    assert outcome.applied is not None
    limit = outcome.applied.memory_limit[steps, cid]
    request = outcome.applied.memory_request[steps, cid]
    result: FloatArray = np.where(np.isfinite(limit), limit, request)
    return result


def plot_container(result: BacktestResult, cid: int, path: Path) -> Path:
    """One container's usage with every strategy's requests and limits."""
    trace = result.trace
    rows = np.flatnonzero((trace.usage.container_id == cid) & ~trace.usage.oom)
    ts = trace.usage.timestamp_s[rows]
    when = _times(ts)
    step_of = np.clip(
        np.ceil((ts - result.grid.start_s) / result.grid.every_s).astype(np.int64) - 1,
        0,
        result.grid.steps - 1,
    )
    fig = Figure(figsize=(12, 6.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax_cpu, ax_mem = fig.subplots(2, 1, sharex=True)
    ax_cpu.plot(when, trace.usage.cpu_cores[rows], color=USAGE_COLOR, lw=0.6, label="usage")
    ax_mem.plot(
        when, trace.usage.memory_bytes[rows] / GIB, color=USAGE_COLOR, lw=0.6, label="usage"
    )
    ax_cpu.plot(when, trace.cpu_request_cores[rows], color=ORIGINAL_COLOR, lw=1.2, ls=":",
                label="original request")  # fmt: skip
    ax_mem.plot(when, trace.memory_request_bytes[rows] / GIB, color=ORIGINAL_COLOR, lw=1.2,
                ls=":", label="original request")  # fmt: skip
    for index, outcome in enumerate(result.outcomes[1:]):
        applied = outcome.applied
        assert applied is not None
        color = _color(outcome.label, index)
        for ax, request, limit, scale in (
            (ax_cpu, applied.cpu_request[:, cid], applied.cpu_limit[:, cid], 1.0),
            (ax_mem, applied.memory_request[:, cid], applied.memory_limit[:, cid], GIB),
        ):
            t, v = _step_series(result, request / scale)
            ax.step(t, v, where="post", color=color, lw=1.6, label=f"{outcome.label} request")
            if bool(np.any(np.isfinite(limit) & (limit != request))):
                t, v = _step_series(result, limit / scale)
                ax.step(t, v, where="post", color=color, lw=1.1, ls="--",
                        label=f"{outcome.label} limit")  # fmt: skip
        line = _memory_line(outcome, step_of, cid)
        mem = trace.usage.memory_bytes[rows]
        with np.errstate(invalid="ignore"):
            killed = mem > line
        if bool(killed.any()):
            ax_mem.scatter(when[killed], mem[killed] / GIB, marker="x", s=28, color=color,
                           zorder=5, label=f"{outcome.label} OOM")  # fmt: skip
    ax_cpu.set_ylabel("CPU (cores)")
    ax_mem.set_ylabel("memory (GiB)")
    for ax in (ax_cpu, ax_mem):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_cpu.set_title("solid: request, dashed: limit (where it differs), ×: usage above the "
                     "memory limit = OOM event", fontsize=8, loc="right")  # fmt: skip
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax_mem.xaxis.set_major_locator(locator)
    ax_mem.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    fig.suptitle(_container_title(result, cid), fontsize=10)
    fig.savefig(path, dpi=DPI)
    return path


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")


def plot_containers(result: BacktestResult, containers: IntArray, out_dir: Path) -> list[Path]:
    """``worst-<rank>-<workload>.png`` for each container, in the order given."""
    paths = []
    for rank, cid in enumerate(containers.tolist(), start=1):
        _, workload, container = result.trace.registry.containers[cid]
        name = f"worst-{rank}-{_safe_name(workload.split('/', 1)[-1])}-{_safe_name(container)}"
        paths.append(plot_container(result, cid, out_dir / f"{name}.png"))
    return paths


def _harms(s: StrategySummary) -> tuple[float, float, float, float]:
    return (
        float(s.oom_events),
        100 * s.memory_peak_fleet_excess,
        100 * s.cpu_above_request,
        100 * s.cpu_peak_fleet_excess,
    )


def plot_savings_vs_risk(
    summaries: list[StrategySummary], path: Path, interval: str = "interval"
) -> Path:
    """Cost saved against each kind of harm, one point per strategy (the originals are
    the reference: 0 % saved). ``interval`` names a step in the OOM axis label."""
    fig = Figure(figsize=(11, 8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharey=True).ravel()
    labels = (
        f"OOM events (container-{interval}s with memory above the limit)",
        "memory used above requests at the worst moment (% of all requests)",
        "time with CPU use above the request (%)",
        "CPU used above requests at the worst moment (% of all requests)",
    )
    contenders = summaries[1:] or summaries
    for which, (ax, label) in enumerate(zip(axes, labels, strict=True)):
        for index, s in enumerate(contenders):
            color = _color(s.label, index)
            x, y = _harms(s)[which], 100.0 * (s.cost_savings or 0.0)
            ax.scatter([x], [y], s=90, color=color, zorder=3)
            ax.annotate(s.label, (x, y), textcoords="offset points", xytext=(7, 6),
                        fontsize=9, color=color)  # fmt: skip
        ax.set_xlabel(label, fontsize=9)
        widest = max((_harms(s)[which] for s in contenders), default=0.0)
        ax.set_xlim(0, widest * 1.25 if widest > 0 else 1.0)
        ax.margins(y=0.4)
        ax.grid(alpha=0.3)
    for ax in axes[::2]:
        ax.set_ylabel("cost saved vs the original requests (%)")
    fig.suptitle("Savings vs risk, one point per strategy: up is cheaper, left is safer",
                 fontsize=11)  # fmt: skip
    fig.savefig(path, dpi=DPI)
    return path


#: (label, share of the original cost reserved, OOM container-days, CPU samples > request,
#: peak fleet memory above requests)
FrontierPoint = tuple[str, float, float, float, float]
PROFILE_COLOR = "#2ca02c"


def plot_frontier(
    points: list[FrontierPoint], cloud: list[FrontierPoint], profiles: list[str], path: Path
) -> Path:
    """Cost reserved against each risk: every candidate parameter set (grey), the
    profiles (green) and the baselines (their own colours). Down and left is better."""
    fig = Figure(figsize=(15, 5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    labels = ("OOM container-days (%)", "CPU samples above the request (%)",
              "peak fleet memory above requests (% of requests)")  # fmt: skip
    for which, (ax, label) in enumerate(zip(axes, labels, strict=True)):
        ax.scatter([100 * c[2 + which] for c in cloud], [100 * c[1] for c in cloud], s=10,
                   color="#c7c7c7", zorder=2, label="headroom, other parameter sets")  # fmt: skip
        for index, (name, cost, *risks) in enumerate(points):
            color = PROFILE_COLOR if name in profiles else _color(name.split(" ")[0], index)
            marker = "o" if name in profiles else "s"
            x, y = 100 * risks[which], 100 * cost
            ax.scatter([x], [y], s=70, color=color, marker=marker, zorder=3)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=9,
                        color=color)  # fmt: skip
        ax.set_xlabel(label, fontsize=9)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cost reserved (% of the original requests)")
    axes[0].legend(loc="upper right", fontsize=8, frameon=False)
    fig.suptitle("Savings vs risk: the headroom profiles (green) and the baselines; "
                 "down and left is better", fontsize=11)  # fmt: skip
    fig.savefig(path, dpi=DPI)
    return path
