"""Hysteresis for ``headroom`` (issue 18 item 2): a parameter search on the tuning half of
the Bitbrains August trace, and the chosen set on the held-out half. Reads the trace in
place from ``../shared/data``.

    python bench/bench_hysteresis.py              # the search, on the 100-VM sample
    python bench/bench_hysteresis.py --held-out   # … then the chosen set on the other 400
    python bench/bench_hysteresis.py --held-out --all --extra keep_below=0.3,keep_above=1
        # … and on all 500, with other sets (k=v,k=v) beside it

The halves are ``bench_profiles.py``'s: a fixed sample of 100 VMs (seed 18) to search on,
the other 400 VMs never searched on. The rule, applied on the sample only: among the
sets that are no worse than the current default (``Balanced``) on any of the issue's
measures — OOM container-days, CPU samples above request, peak fleet memory above
requests, core-hours, GiB-hours by request and by limit, churn — the one with the least
churn (ties within 0.5 point: the least cost reserved).
"""

from __future__ import annotations

import argparse
import itertools
import sys

import pandas as pd

from bench_profiles import (
    HEADER,
    TRACE,
    Point,
    baselines,
    contender,
    measure,
    percentile_7d,
    row,
    sample_ids,
    subset,
)
from rightsizer.backtest.replay import BacktestSettings, Contender
from rightsizer.sources.bitbrains import read_bitbrains

GRID = {
    "keep": ((0.3, 1.0),),
    "limit": ((0.0, 0.05), (0.0, 0.1), (0.05, 0.1)),
    "cpu": (("90", "50m"),),
    "memory_margin": ("0.1", "0.12", "0.15"),
    "memory_confidence_margin": ("0.75", "1", "1.25"),
    "memory_request_percentile": ("80", "90"),
}
"""The third round of the search. The first: one band for every value, keep (below/above)
∈ {0.1/0.5, 0.2/0.3, 0.2/0.5, 0.3/0.5, 0.2/1, 0.3/1} × CPU {p95/20m, p90/50m, p90/100m} ×
memory margin {0, 0.05, 0.15} × confidence {0.5, 1} × request {p80, p90} (216 sets):
nothing was no worse than the default everywhere — the memory limits kept high cost
GiB-hours, thinner lines cost OOM days — so the memory limit got its own band. The
second: keep {0.2/0.5, 0.3/1} × limit band {0/0.1, 0/0.2, 0.1/0.2, 0.1/0.3} × p90/50m ×
margin {0.05, 0.15, 0.3} × confidence {0.5, 1, 2} × request {p80, p90} (144 sets): the
closest missed by 0.2 points of GiB-hours by limit (keep 0.3/1, limit 0/0.1, margin
0.15, confidence 1, p80). The third refines around it."""


def candidates() -> list[tuple[str, dict[str, str]]]:
    result = []
    for keep, limit, cpu, margin, confidence, request in itertools.product(*GRID.values()):
        overrides = {
            "keep_below": str(keep[0]), "keep_above": str(keep[1]),
            "keep_limit_below": str(limit[0]), "keep_limit_above": str(limit[1]),
            "cpu_percentile": cpu[0], "cpu_step": cpu[1], "memory_margin": margin,
            "memory_confidence_margin": confidence, "memory_request_percentile": request,
        }  # fmt: skip
        label = (f"headroom:keep={keep[0]}/{keep[1]},limit={limit[0]}/{limit[1]},"
                 f"p={cpu[0]},step={cpu[1]},m={margin},c={confidence},req={request}")  # fmt: skip
        result.append((label, overrides))
    return result


def measures(p: Point) -> tuple[float, ...]:
    return (p.oom_days, p.cpu_samples_above, p.memory_exposure, p.core_hours,
            p.gib_hours_request, p.gib_hours_limit, p.churn)  # fmt: skip


def no_worse(a: Point, b: Point) -> bool:
    return all(x <= y + 1e-12 for x, y in zip(measures(a), measures(b), strict=True))


def choose(points: list[Point], default: Point) -> Point | None:
    fit = [p for p in points if p.label.startswith("headroom:") and no_worse(p, default)]
    if not fit:
        return None
    least = min(p.churn for p in fit)
    return min((p for p in fit if p.churn <= least + 0.005), key=lambda p: p.reserved_cost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=str(TRACE), help="Bitbrains trace file")
    parser.add_argument("--frame", help="a pickled frame of the trace (faster reruns)")
    parser.add_argument("--held-out", action="store_true", help="also measure the choice")
    parser.add_argument("--all", action="store_true", help="… and on all VMs")
    parser.add_argument("--no-grid", action="store_true", help="only the --extra sets")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        help="also measure these headroom sets (k=v,k=v) on both halves",
    )
    args = parser.parse_args()
    frame = pd.read_pickle(args.frame) if args.frame else read_bitbrains(args.trace)
    settings = BacktestSettings()
    chosen, held_out = sample_ids(frame)
    trace = subset(frame, chosen)
    default = contender("Balanced (before)", "headroom", {})
    grid = [] if args.no_grid else [contender(lb, "headroom", o) for lb, o in candidates()]
    extras = [contender(f"headroom:{e}", "headroom", dict(kv.split("=", 1) for kv in e.split(",")))
              for e in args.extra]  # fmt: skip
    points = measure(trace, [*baselines(), default, *extras, *grid], settings)
    points.append(percentile_7d(trace, settings))
    print(f"## tuning half: sample ({len(chosen)} VMs)\n\n{HEADER}")
    for p in sorted(points, key=lambda q: q.churn):
        print(row(p))
    by = {p.label: p for p in points}
    pick = choose(points, by["Balanced (before)"])
    print(f"\nrule → {pick.label if pick else 'none'}")
    sys.stdout.flush()
    if not args.held_out:
        return
    finals: list[Contender] = [*baselines(), default, *extras]
    grid_sets = dict(candidates())
    if pick is not None and pick.label in grid_sets and not args.no_grid:
        finals.append(contender(pick.label, "headroom", grid_sets[pick.label]))
    report_halves(frame, finals, settings, chosen, held_out, everything=args.all)


def report_halves(
    frame: pd.DataFrame, finals: list[Contender], settings: BacktestSettings,
    chosen: set[str], held_out: set[str], *, everything: bool,
) -> None:  # fmt: skip
    """The finalists (and `percentile` with a 7-day window) on the held-out VMs, and with
    ``everything`` on all of them: one table each."""
    halves = [(f"held out ({len(held_out)} VMs, never searched on)", held_out)]
    if everything:
        halves.append((f"all {len(chosen) + len(held_out)} VMs", chosen | held_out))
    for name, pods in halves:
        part = subset(frame, pods)
        others = measure(part, finals, settings)
        others.append(percentile_7d(part, settings))
        print(f"\n## {name}\n\n{HEADER}")
        for p in others:
            print(row(p))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
