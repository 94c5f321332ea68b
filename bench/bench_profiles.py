"""The savings-versus-risk frontier of the ``headroom`` strategy on the Bitbrains August
trace, and where the profiles (``Conservative``, ``Balanced``, ``Economical``) and the
baselines sit on it (issue 18 item 4). Reads the trace in place from ``../shared/data``.

    python bench/bench_profiles.py        # the parameter search on a 100-VM sample
    python bench/bench_profiles.py --plot docs/img/profiles-frontier.png
        # … then the profiles and baselines on the 400 held-out VMs and on all 500, and the
        # chart (the grid, the profiles and the baselines on the sample)

The sample is fixed (100 VMs drawn with seed 18); parameters are searched on it only, and
the chosen profiles are measured again on the other 400 VMs, which the search never saw.
The grid: CPU percentile × CPU step × memory margin × confidence margin × memory request
percentile (3 × 3 × 3 × 3 × 5 = 405 candidates, one replay: ≈ 5–8 min on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rightsizer.backtest.replay import BacktestSettings, Contender, run_backtest
from rightsizer.backtest.summary import StrategySummary, summarize
from rightsizer.backtest.trace import ReplayTrace, build_trace
from rightsizer.engine.strategies import PROFILES, build_strategy
from rightsizer.sources.bitbrains import read_bitbrains

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT.parent / "shared" / "data" / "bitbrains_rnd_2013-08_500vms.csv.xz"
DAY_S = 86_400.0
SAMPLE_SIZE = 100
SEED = 18

GRID = {
    "cpu_percentile": ("90", "95", "98"),
    "cpu_step": ("10m", "20m", "50m"),
    "memory_margin": ("0.05", "0.15", "0.3"),
    "memory_confidence_margin": ("0.5", "1", "2"),
    "memory_request_percentile": ("50", "70", "80", "90", "100"),
}
SHORT = {"cpu_percentile": "p", "cpu_step": "step", "memory_margin": "m",
         "memory_confidence_margin": "c", "memory_request_percentile": "req"}  # fmt: skip


@dataclass(frozen=True)
class Point:
    label: str
    reserved_cost: float
    """Share of the original cost still reserved (CPU and memory weighed by price)."""
    oom_days: float
    cpu_samples_above: float
    core_hours: float
    gib_hours_request: float
    gib_hours_limit: float
    churn: float
    memory_exposure: float
    """Peak fleet memory used above requests, as a share of all requests."""

    @classmethod
    def of(cls, s: StrategySummary) -> Point:
        return cls(s.label, 1.0 - (s.cost_savings or 0.0), s.oom_container_days,
                   s.cpu_samples_above_request, s.cpu_reserved or 0.0,
                   s.memory_reserved_by_request or 0.0, s.memory_reserved_by_limit or 0.0,
                   s.churn, s.memory_peak_fleet_excess)  # fmt: skip


def sample_ids(frame: pd.DataFrame) -> tuple[set[str], set[str]]:
    pods = np.asarray(sorted(frame["pod"].unique()))
    chosen = set(np.random.default_rng(SEED).choice(pods, SAMPLE_SIZE, replace=False).tolist())
    return chosen, set(pods.tolist()) - chosen


def subset(frame: pd.DataFrame, pods: set[str]) -> ReplayTrace:
    return build_trace(frame.loc[frame["pod"].isin(pods)].reset_index(drop=True))


def candidates() -> list[tuple[str, dict[str, str]]]:
    result = []
    for values in itertools.product(*GRID.values()):
        overrides = dict(zip(GRID, values, strict=True))
        label = "headroom:" + ",".join(f"{SHORT[k]}={v}" for k, v in overrides.items())
        result.append((label, overrides))
    return result


def contender(label: str, name: str, overrides: dict[str, str], profile: str | None = None
              ) -> Contender:  # fmt: skip
    strategy, policy = build_strategy(name, overrides, profile=profile)
    return Contender(label, strategy, policy)


def baselines() -> list[Contender]:
    return [contender("vpa", "vpa", {}), contender("percentile", "percentile", {})]


def profiles() -> list[Contender]:
    return [contender(name, "headroom", {}, profile=name) for name in PROFILES]


def measure(trace: ReplayTrace, tested: list[Contender], settings: BacktestSettings
            ) -> list[Point]:  # fmt: skip
    t0 = time.perf_counter()
    points = [Point.of(s) for s in summarize(run_backtest(trace, tested, settings))[1:]]
    print(f"({len(tested)} strategies, {trace.containers} VMs: {time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)  # fmt: skip
    return points


def percentile_7d(trace: ReplayTrace, settings: BacktestSettings) -> Point:
    (point,) = measure(trace, [contender("percentile", "percentile", {})],
                       replace(settings, history_s=7 * DAY_S))  # fmt: skip
    return replace(point, label="percentile (7 d)")


def pareto(points: list[Point]) -> list[Point]:
    """Points no other point beats at once on cost (requests), GiB-hours of memory limits,
    OOM days, CPU samples above the request and peak fleet memory above requests."""

    def key(p: Point) -> tuple[float, ...]:
        return (p.reserved_cost, p.gib_hours_limit, p.oom_days, p.cpu_samples_above,
                p.memory_exposure)  # fmt: skip

    def beats(a: Point, b: Point) -> bool:
        ka, kb = key(a), key(b)
        return all(x <= y for x, y in zip(ka, kb, strict=True)) and ka != kb

    return [p for p in points if not any(beats(q, p) for q in points)]


HEADER = ("| strategy | cost reserved | OOM container-days | CPU samples > request | "
          "peak fleet memory > requests | core-hours | GiB-hours by request | GiB-hours by limit | "
          "churn |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip


def row(p: Point) -> str:
    cells = (p.reserved_cost, p.oom_days, p.cpu_samples_above, p.memory_exposure,
             p.core_hours, p.gib_hours_request, p.gib_hours_limit, p.churn)  # fmt: skip
    digits = (1, 2, 2, 1, 1, 1, 1, 1)
    return (
        f"| {p.label} | "
        + " | ".join(f"{100 * v:.{d}f}%" for v, d in zip(cells, digits, strict=True))
        + " |"
    )


def choose(points: list[Point]) -> tuple[Point, Point]:
    """The rules the profiles are chosen by (on the sample; the held-out VMs check them).
    One knob means an order: Economical ≤ Balanced ≤ Conservative on every cost (core-
    hours, GiB-hours by request and by limit), the other way round on every risk
    (OOM container-days, CPU samples above the request, peak fleet memory above requests).

    * ``Conservative``: as safe as the grid gets, at the least cost — the cheapest set
      within 10 % of the grid's lowest on each risk;
    * ``Economical``: the cheapest set that reserves no more than ``Balanced`` on any cost
      and is no riskier than upstream VPA's defaults on any risk (what Kubernetes users
      run when they run anything).

    "Cheapest": the least cost reserved (requests at list prices), ties within 0.1 point
    to fewer OOM container-days. ``Balanced`` is the defaults (retuning them is issue 18
    item 2)."""
    grid = [p for p in points if p.label.startswith("headroom:")]
    by = {p.label: p for p in points}
    vpa, balanced = by["vpa"], by["Balanced"]

    def risks(p: Point) -> tuple[float, float, float]:
        return (p.oom_days, p.cpu_samples_above, p.memory_exposure)

    def costs(p: Point) -> tuple[float, float, float]:
        return (p.core_hours, p.gib_hours_request, p.gib_hours_limit)

    def at_most(a: tuple[float, ...], b: tuple[float, ...], factor: float = 1.0) -> bool:
        return all(x <= factor * y + 1e-12 for x, y in zip(a, b, strict=True))

    lowest = tuple(min(risks(p)[i] for p in grid) for i in range(3))
    safe = [
        p for p in grid if at_most(risks(p), lowest, 1.1) and at_most(costs(balanced), costs(p))
    ]
    cheap = [
        p for p in grid if at_most(costs(p), costs(balanced)) and at_most(risks(p), risks(vpa))
    ]

    def cost(p: Point) -> tuple[float, float]:
        return (round(p.reserved_cost, 3), p.oom_days)

    return min(safe, key=cost), min(cheap, key=cost)


def sweep(frame: pd.DataFrame, settings: BacktestSettings, plot_path: Path | None) -> None:
    """The grid, the profiles and the baselines on the sample; with ``plot_path`` the
    profiles and baselines on the held-out VMs and on all of them too, and the chart."""
    chosen, held_out = sample_ids(frame)
    trace = subset(frame, chosen)
    grid = [contender(label, "headroom", o) for label, o in candidates()]
    points = measure(trace, [*baselines(), *profiles(), *grid], settings)
    points.append(percentile_7d(trace, settings))
    front = {p.label for p in pareto(points)}
    print(f"## sample ({len(chosen)} VMs, searched on)\n\n{HEADER}")
    for p in sorted(points, key=lambda q: q.reserved_cost):
        print(row(p) + (" frontier" if p.label in front else ""))
    conservative, economical = choose(points)
    print(f"\nrules → Conservative: {conservative.label}; Economical: {economical.label}")
    named = [p for p in points if not p.label.startswith("headroom:")]
    print(f"\n{HEADER}")
    for p in named:
        print(row(p))
    sys.stdout.flush()
    if plot_path is None:
        return
    for name, pods in ((f"held out ({len(held_out)} VMs, never searched on)", held_out),
                       (f"all {len(chosen) + len(held_out)} VMs", chosen | held_out)):  # fmt: skip
        part = subset(frame, pods)
        others = measure(part, [*baselines(), *profiles()], settings)
        others.append(percentile_7d(part, settings))
        print(f"\n## {name}\n\n{HEADER}")
        for p in others:
            print(row(p))
        sys.stdout.flush()
    from rightsizer.backtest.plots import plot_frontier

    def as_tuple(p: Point) -> tuple[str, float, float, float, float]:
        return (p.label, p.reserved_cost, p.oom_days, p.cpu_samples_above, p.memory_exposure)

    cloud = [as_tuple(p) for p in points if p.label.startswith("headroom:")]
    plot_frontier([as_tuple(p) for p in named], cloud, list(PROFILES), plot_path)
    print(f"\nwrote {plot_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=str(TRACE), help="Bitbrains trace file")
    parser.add_argument(
        "--plot", metavar="PNG", help="also measure on the held-out and all VMs, and chart"
    )
    args = parser.parse_args()
    frame = read_bitbrains(args.trace)
    sweep(frame, BacktestSettings(), Path(args.plot) if args.plot else None)


if __name__ == "__main__":
    main()
