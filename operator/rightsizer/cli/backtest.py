"""``rightsizer backtest``: replay a usage trace under each strategy and count the outcome.

Only argument handling and I/O live here (reading the trace, writing plots, progress on
a terminal); the simulation is ``rightsizer.backtest``. Exit codes as ``rightsizer``'s:
0 ok, 2 bad input (message on stderr, nothing on stdout).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rightsizer.backtest.replay import (
    BacktestResult,
    BacktestSettings,
    Contender,
    ProgressCallback,
    run_backtest,
)
from rightsizer.backtest.summary import (
    Prices,
    render_decisions,
    render_json,
    render_markdown,
    render_table,
    summarize,
    worst_containers,
)
from rightsizer.engine.settings import SettingsError, parse_assignments, parse_duration_s
from rightsizer.engine.strategies import PROFILES, STRATEGY_NAMES, build_strategy, settings_table
from rightsizer.quantity import DAY_S
from rightsizer.samples.errors import SamplesError
from rightsizer.sources.samples_file import add_max_input_argument, read_samples

if TYPE_CHECKING:  # pandas is imported when a backtest runs, not by every command
    import pandas as pd

EXIT_OK = 0
EXIT_BAD_INPUT = 2
FORMATS = ("table", "json", "markdown")
INPUT_FORMATS = ("samples", "bitbrains")


class BacktestInputError(Exception):
    """Input the user must fix: printed without a traceback, exit code 2."""


DESCRIPTION = """\
Replay a usage trace step by step. At every step (--every, aligned to 00:00 UTC for
whole days) each strategy recommends from the samples seen so far — never from later
ones — and its recommendation is held until the next step and measured against the
usage of that interval: OOM events (memory above the strategy's memory limit, or above
its request when it sets no limit; once per container and interval), time with usage
above the request and above the CPU limit, requested core-hours and GiB-hours against
the original requests, and changes (rollouts) when a recommendation moves by more than
--min-change. Until a container has --warmup of history it keeps its original
resources. Usage above the original limit of a row counts as that limit (measurement
noise: the limit is enforced). --history is percentile's trailing window (KRR's
history); vpa and headroom weigh all history by their own decay and windows.

Input: a samples file (CSV, CSV.gz or Parquet, shared/design/samples-format.md), or with
--input-format bitbrains a GWA-T-12 Bitbrains trace file as described in
shared/data/README.md (read in place, never copied).

Exit codes: 0 ok, 2 bad input (message on stderr, nothing on stdout)."""


STRATEGY_SUMMARIES = {
    "vpa": "upstream VPA's recommender with its defaults",
    "percentile": "KRR-like: p95 CPU, memory = peak × 1.15 over --history",
    "headroom": "rightsizer's own: CPU p95+ while cheap; memory p90 of daily peaks, limit above",
}


def _strategies_help() -> str:
    lines = ["strategies (default: all):"]
    for name in STRATEGY_NAMES:
        lines.append(f"  {name}: {STRATEGY_SUMMARIES.get(name, '')}".rstrip())
    lines.append("\nsettings for --set [STRATEGY.]KEY=VALUE or --strategy NAME:KEY=VALUE,...")
    lines.append("(`rightsizer recommend --help` explains each key):")
    for name in STRATEGY_NAMES:
        keys = ", ".join(s.key for s in settings_table(name))
        lines.extend(textwrap.wrap(f"{name}: {keys}", 88, initial_indent="  ",
                                   subsequent_indent="    "))  # fmt: skip
    return "\n".join(lines)


def add_backtest_parser(sub: Any) -> None:
    """Register ``backtest`` on the ``rightsizer`` subcommands."""
    bt = sub.add_parser(
        "backtest",
        help="replay a usage trace under each strategy: savings, OOMs, throttling, churn",
        description=DESCRIPTION,
        epilog=_strategies_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bt.add_argument("--samples", required=True, metavar="FILE", help="the trace to replay")
    add_max_input_argument(bt)
    bt.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default="samples",
        help="samples: the samples format; bitbrains: a Bitbrains trace (default: samples)",
    )
    bt.add_argument(
        "--strategy",
        action="append",
        metavar="NAME[:KEY=VALUE,...]",
        help="a strategy to test, optionally with settings; repeatable (default: all)",
    )
    bt.add_argument(
        "--set",
        action="append",
        metavar="[STRATEGY.]KEY=VALUE",
        help="a setting for every tested strategy that has KEY (or only for STRATEGY)",
    )
    bt.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default=None,
        help="headroom's point on the savings-versus-risk frontier (default: Balanced); "
        "per strategy: --strategy headroom:profile=Economical",
    )
    bt.add_argument(
        "--history",
        default="14d",
        help="percentile's trailing window, or 'all' (default: 14d, as KRR)",
    )
    bt.add_argument("--every", default="1d", help="recompute this often (default: 1d)")
    bt.add_argument(
        "--warmup", default="1d", help="history before the first change (default: 1d; 0: none)"
    )
    bt.add_argument(
        "--min-change",
        type=float,
        default=10.0,
        metavar="PERCENT",
        help="apply a new recommendation only if a value moves more than this (default: 10)",
    )
    bt.add_argument(
        "--no-oom-feedback",
        action="store_true",
        help="do not tell strategies about the OOM kills their own limits caused",
    )
    bt.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    bt.add_argument(
        "--decisions",
        metavar="FILE.csv",
        help="write the values in force after each change a strategy makes (its adoption "
        "included) as CSV: namespace,workload,container,time (Unix s),cpu_request,"
        "cpu_limit (cores),memory_request,memory_limit (bytes), empty = not set; with "
        "several strategies one file each, FILE.<strategy>.csv",
    )
    bt.add_argument("--plot", metavar="DIR", help="write PNG charts into DIR")
    bt.add_argument(
        "--plot-containers",
        type=int,
        default=3,
        metavar="N",
        help="how many of the worst containers to chart (default: 3)",
    )
    bt.add_argument(
        "--price-cpu",
        type=float,
        default=Prices.cpu_core_hour,
        metavar="USD",
        help="per core-hour, to weigh CPU against memory (default: %(default)s, GCE e2)",
    )
    bt.add_argument(
        "--price-memory",
        type=float,
        default=Prices.memory_gib_hour,
        metavar="USD",
        help="per GiB-hour (default: %(default)s, GCE e2)",
    )
    bt.set_defaults(func=cmd_backtest)


def _duration(text: str, what: str, *, zero_ok: bool = False) -> float:
    if zero_ok and text.strip() in ("0", "0s", "0d"):
        return 0.0
    try:
        return parse_duration_s(text)
    except SettingsError as exc:
        raise BacktestInputError(f"--{what}: {exc}") from None


def _settings(args: argparse.Namespace) -> BacktestSettings:
    history = None if args.history.strip().lower() == "all" else _duration(args.history, "history")
    if not (math.isfinite(args.min_change) and 0 <= args.min_change < 1000):
        raise BacktestInputError("--min-change: a percentage ≥ 0")
    try:
        return BacktestSettings(
            every_s=_duration(args.every, "every"),
            history_s=history,
            warmup_s=_duration(args.warmup, "warmup", zero_ok=True),
            min_change_fraction=args.min_change / 100.0,
            oom_feedback=not args.no_oom_feedback,
        )
    except ValueError as exc:
        raise BacktestInputError(str(exc)) from None


def contenders(
    specs: list[str] | None, sets: list[str] | None, profile: str | None = None
) -> list[Contender]:
    """Parse ``--strategy`` specs and ``--set`` items into strategies under test; a spec's
    own ``profile=`` wins over ``profile`` (``--profile``, for headroom only)."""
    chosen = specs or list(STRATEGY_NAMES)
    try:
        common = parse_assignments(sets or [])
    except SettingsError as exc:
        raise BacktestInputError(f"--set: {exc}") from None
    parsed: list[tuple[str, str, dict[str, str]]] = []
    for spec in chosen:
        name, _, rest = spec.partition(":")
        name = name.strip()
        if name not in STRATEGY_NAMES:
            known = ", ".join(STRATEGY_NAMES)
            raise BacktestInputError(f"--strategy: unknown strategy {name!r}; known: {known}")
        try:
            own = parse_assignments([p for p in rest.split(",") if p.strip()])
        except SettingsError as exc:
            raise BacktestInputError(f"--strategy {spec}: {exc}") from None
        parsed.append((spec.strip(), name, own))
    used: set[str] = set()
    result = []
    for label, name, own in parsed:
        keys = {s.key for s in settings_table(name)}
        overrides: dict[str, str] = {}
        for key, value in common.items():
            target, dot, bare = key.rpartition(".")
            if dot and target != name:
                continue
            if bare in keys:
                overrides[bare] = value
                used.add(key)
        overrides.update(own)
        chosen_profile = overrides.pop("profile", profile if name == "headroom" else None)
        try:
            strategy, policy = build_strategy(name, overrides, profile=chosen_profile)
        except (SettingsError, ValueError) as exc:
            raise BacktestInputError(f"{label}: {exc}") from None
        result.append(Contender(label, strategy, policy))
    unused = sorted(set(common) - used)
    if unused:
        raise BacktestInputError(
            f"--set: no tested strategy has the setting(s) {', '.join(unused)}"
        )
    labels = [c.label for c in result]
    if len(set(labels)) != len(labels):
        raise BacktestInputError("--strategy: the same strategy is listed twice")
    return result


def _progress(stream: TextIO) -> ProgressCallback | None:
    if not stream.isatty():
        return None
    started = time.monotonic()

    def report(done: int, steps: int, until_s: float) -> None:
        day = datetime.fromtimestamp(until_s, tz=UTC).strftime("%Y-%m-%d %H:%M")
        elapsed = time.monotonic() - started
        end = "\n" if done == steps else ""
        stream.write(f"\rbacktest: step {done}/{steps} (to {day} UTC), {elapsed:.0f} s{end}")
        stream.flush()

    return report


def _note(stream: TextIO, text: str) -> None:
    if stream.isatty():
        stream.write(text + "\n")
        stream.flush()


def _read(args: argparse.Namespace) -> pd.DataFrame:
    from rightsizer.sources.bitbrains import read_bitbrains

    limit = args.max_input_mib * 2**20
    reader: Callable[[str], pd.DataFrame] = (
        read_bitbrains
        if args.input_format == "bitbrains"
        else lambda path: read_samples(path, limit)
    )
    try:
        return reader(args.samples)
    except SamplesError as exc:
        raise BacktestInputError(str(exc)) from None


def _plot_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BacktestInputError(f"--plot: cannot create {path}: {exc}") from None
    if not out.is_dir():
        raise BacktestInputError(f"--plot: {path} is not a directory")
    return out


def decisions_paths(path: str, labels: list[str]) -> dict[str, Path]:
    """Where each strategy's decisions go: ``path`` itself for one strategy, else
    ``<stem>.<label>.csv`` beside it (the label made safe for a file name)."""
    target = Path(path)
    if len(labels) == 1:
        return {labels[0]: target}
    suffix = target.suffix or ".csv"
    stem = target.name[: -len(target.suffix)] if target.suffix else target.name
    safe = {label: re.sub(r"[^A-Za-z0-9_.=-]+", "_", label) for label in labels}
    return {label: target.with_name(f"{stem}.{safe[label]}{suffix}") for label in labels}


def _write_decisions(result: BacktestResult, path: str, labels: list[str]) -> list[Path]:
    written = []
    for label, target in decisions_paths(path, labels).items():
        try:
            target.write_text(render_decisions(result, label), encoding="utf-8")
        except OSError as exc:
            raise BacktestInputError(f"--decisions: cannot write {target}: {exc}") from None
        written.append(target)
    return written


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from rightsizer.backtest.trace import build_trace

    settings = _settings(args)
    tested = contenders(args.strategy, args.set, args.profile)
    if args.plot_containers < 0:
        raise BacktestInputError("--plot-containers must not be negative")
    prices = Prices(cpu_core_hour=args.price_cpu, memory_gib_hour=args.price_memory)
    if min(prices.cpu_core_hour, prices.memory_gib_hour) < 0:
        raise BacktestInputError("prices must not be negative")
    plot_dir = _plot_dir(args.plot) if args.plot else None
    _note(stderr, f"backtest: reading {args.samples}")
    frame = _read(args)
    if frame.empty:
        raise BacktestInputError(f"{args.samples}: no samples")
    trace = build_trace(frame)
    del frame
    result = run_backtest(trace, tested, settings, progress=_progress(stderr))
    summaries = summarize(result, prices)
    if args.decisions:
        written = _write_decisions(result, args.decisions, [c.label for c in tested])
        _note(stderr, "backtest: wrote " + ", ".join(str(p) for p in written))
    if plot_dir is not None:
        from rightsizer.backtest import plots  # matplotlib only when asked for

        worst = worst_containers(result, args.plot_containers)
        paths = plots.plot_containers(result, worst, plot_dir)
        interval = "day" if settings.every_s == DAY_S else "interval"
        chart = plot_dir / "savings-vs-risk.png"
        paths.append(plots.plot_savings_vs_risk(summaries, chart, interval))
        _note(stderr, "backtest: wrote " + ", ".join(str(p) for p in paths))
    if args.format == "json":
        stdout.write(render_json(result, summaries))
    elif args.format == "markdown":
        stdout.write(render_markdown(summaries))
    else:
        stdout.write(_preamble(result) + render_table(summaries))
    return EXIT_OK


def _preamble(result: BacktestResult) -> str:
    trace, grid, st = result.trace, result.grid, result.settings

    def day(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")

    history = "all" if st.history_s is None else f"{st.history_s / DAY_S:g}d"
    return (
        f"trace: {trace.containers} containers, {trace.rows:,} samples, "
        f"{day(float(trace.usage.timestamp_s[0]))} → {day(float(trace.usage.timestamp_s[-1]))} "
        f"UTC; {grid.steps} steps of {st.every_s / 3600:g} h; percentile history {history}; "
        f"warm-up {st.warmup_s / 3600:g} h; min change {st.min_change_fraction * 100:g}%\n"
    )


def cmd_backtest(args: argparse.Namespace) -> int:
    try:
        return run(args, sys.stdout, sys.stderr)
    except BacktestInputError as exc:
        print(f"rightsizer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
