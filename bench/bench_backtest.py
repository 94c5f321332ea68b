"""Backtest benchmark and sensitivity runs on the Bitbrains trace (read in place from
``../shared/data``; nothing is copied into the repository).

    python bench/bench_backtest.py                # load + replay vpa, percentile, headroom
    python bench/bench_backtest.py --sensitivity  # Markdown tables for docs/quality.md
    python bench/bench_backtest.py --synthetic 2000 60   # replay only: containers, days

Prints wall times (loading and replay separately) and peak RSS. The sensitivity mode
loads the trace once and replays it under other settings, strategy variants and the two
halves of the VMs (odd and even ids), to show the ranking does not hinge on one choice.
The synthetic mode builds a larger trace directly as arrays (5-minute samples from
``rightsizer.dev.synthetic``), skipping the pandas loader, to time the replay at scale.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from rightsizer.backtest.replay import BacktestSettings, Contender, run_backtest
from rightsizer.backtest.summary import StrategySummary, render_markdown, summarize
from rightsizer.backtest.trace import ReplayTrace, build_trace, sample_durations
from rightsizer.cli.backtest import contenders
from rightsizer.dev.synthetic import synthetic_chunks
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.sources.bitbrains import read_bitbrains

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT.parent / "shared" / "data" / "bitbrains_rnd_2013-08_500vms.csv.xz"
DAY_S = 86_400.0
DEFAULT = ("vpa", "percentile", "headroom")
VARIANTS = (
    "vpa",
    "vpa:memory_limit=x2",
    "percentile",
    "percentile:memory_buffer_ratio=1.3",
    "percentile:memory_buffer_ratio=1.5",
    "headroom",
    "headroom:memory_request_percentile=100",
    "headroom:cpu_step=0",
    "headroom:memory_confidence_margin=0",
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def replay(
    trace: ReplayTrace, specs: tuple[str, ...], settings: BacktestSettings
) -> tuple[list[StrategySummary], float]:
    tested: list[Contender] = contenders(list(specs), None)
    t0 = time.perf_counter()
    result = run_backtest(trace, tested, settings)
    return summarize(result), time.perf_counter() - t0


def compact(summaries: list[StrategySummary]) -> str:
    """strategy: cost saved / OOM events / memory > request (time, fleet peak) /
    CPU > request (time, fleet peak) / changes per container-week."""
    cells = []
    for s in summaries[1:]:
        cells.append(
            f"{s.label} {100 * (s.cost_savings or 0):.1f}% / {s.oom_events} / "
            f"{100 * s.memory_above_request:.2f}%, {100 * s.memory_peak_fleet_excess:.1f}% / "
            f"{100 * s.cpu_above_request:.2f}%, {100 * s.cpu_peak_fleet_excess:.1f}% / "
            f"{s.changes_per_container_week:.2f}"
        )
    return " · ".join(cells)


def synthetic_trace(containers: int, days: float) -> ReplayTrace:
    """5-minute samples of single-pod containers, originals at 3× CPU and 2× memory."""
    registry = ContainerRegistry()
    for i in range(containers):
        registry.instance_id(("bench", f"Deployment/w{i}", f"w{i}-0", "app"))
    parts = list(synthetic_chunks(containers, days=days, step_s=300.0, chunk_steps=288))
    usage = UsageChunk(
        *(np.concatenate([getattr(c, name) for c in parts]) for name in (
            "container_id", "instance_id", "timestamp_s", "cpu_cores", "memory_bytes", "oom"))
    )  # fmt: skip
    del parts
    cid = usage.container_id
    mean_cpu = np.bincount(cid, weights=usage.cpu_cores) / np.bincount(cid)
    mean_mem = np.bincount(cid, weights=usage.memory_bytes) / np.bincount(cid)
    ts = usage.timestamp_s
    return ReplayTrace(
        registry=registry,
        usage=usage,
        dt_s=sample_durations(usage.instance_id, ts, usage.oom),
        cpu_request_cores=3 * mean_cpu[cid],
        cpu_limit_cores=np.full(ts.shape[0], np.nan),
        memory_request_bytes=2 * mean_mem[cid],
        memory_limit_bytes=2 * mean_mem[cid],
        time_bin=np.floor((ts - ts[0]) / 300.0).astype(np.int64),
        bin_s=300.0,
    )


def run_synthetic(containers: int, days: float) -> None:
    t0 = time.perf_counter()
    trace = synthetic_trace(containers, days)
    t1 = time.perf_counter()
    summaries, replay_s = replay(trace, DEFAULT, BacktestSettings())
    print(f"synthetic: {containers} containers × {days:g} days = {trace.rows:,} samples; "
          f"built in {t1 - t0:.1f} s; replay of {', '.join(DEFAULT)} {replay_s:.1f} s "
          f"({trace.rows * len(DEFAULT) / replay_s / 1e6:.2f} M samples × strategies/s); "
          f"peak RSS {peak_rss_mib():.0f} MiB")  # fmt: skip
    print()
    print(render_markdown(summaries))


def half(frame: pd.DataFrame, parity: int) -> pd.DataFrame:
    vm = frame["pod"].str.removeprefix("vm-").astype(int)
    return frame.loc[vm % 2 == parity].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=str(TRACE), help="Bitbrains trace file")
    parser.add_argument("--sensitivity", action="store_true", help="run the variants too")
    parser.add_argument(
        "--synthetic", nargs=2, type=float, metavar=("CONTAINERS", "DAYS"),
        help="replay a synthetic trace of this size instead",
    )  # fmt: skip
    args = parser.parse_args()
    if args.synthetic:
        run_synthetic(int(args.synthetic[0]), args.synthetic[1])
        return

    t0 = time.perf_counter()
    frame = read_bitbrains(args.trace)
    t1 = time.perf_counter()
    trace = build_trace(frame)
    t2 = time.perf_counter()
    base = BacktestSettings()
    summaries, replay_s = replay(trace, DEFAULT, base)
    print(f"read + convert {t1 - t0:.1f} s; encode {t2 - t1:.1f} s; replay of "
          f"{', '.join(DEFAULT)} {replay_s:.1f} s; {trace.containers} containers, "
          f"{trace.rows:,} samples; peak RSS "
          f"{peak_rss_mib():.0f} MiB")  # fmt: skip
    print()
    print(render_markdown(summaries))
    if not args.sensitivity:
        return

    print("### Strategy variants (default settings)\n")
    variants, seconds = replay(trace, VARIANTS, base)
    print(render_markdown(variants))
    print(f"({seconds:.1f} s)\n")

    print("### Settings and halves of the fleet\n")
    print(
        "Per strategy: cost saved / OOM events / memory above request (time, fleet peak) / "
        "CPU above request (time, fleet peak) / changes per container-week.\n"
    )
    print("| run | results |\n|---|---|")
    runs: list[tuple[str, ReplayTrace, BacktestSettings]] = [
        ("default (1d steps, 14d history, 10 % min change)", trace, base),
        ("steps of 6 h", trace, replace(base, every_s=DAY_S / 4)),
        ("steps of 7 d", trace, replace(base, every_s=7 * DAY_S, history_s=14 * DAY_S)),
        ("min change 0 %", trace, replace(base, min_change_fraction=0.0)),
        ("min change 20 %", trace, replace(base, min_change_fraction=0.2)),
        ("no OOM feedback", trace, replace(base, oom_feedback=False)),
        ("percentile history 7d", trace, replace(base, history_s=7 * DAY_S)),
        ("percentile history: all", trace, replace(base, history_s=None)),
        ("no warm-up", trace, replace(base, warmup_s=0.0)),
        ("odd VMs only (250)", build_trace(half(frame, 1)), base),
        ("even VMs only (250)", build_trace(half(frame, 0)), base),
    ]
    for name, data, settings in runs:
        result, seconds = replay(data, DEFAULT, settings)
        print(f"| {name} | {compact(result)} |")
        sys.stdout.flush()
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
