"""``rightsizer`` — the command line.

Exit codes: 0 ok, 2 bad input (message on stderr, nothing on stdout), 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from rightsizer import __version__
from rightsizer.cli.backtest import add_backtest_parser
from rightsizer.cli.export import (
    JSONPATCH_NEEDS_KUBE,
    PATCH_FORMATS,
    add_patch_arguments,
    apply_settings,
    write_patches,
)
from rightsizer.cli.report import EXIT_SOURCE_FAILED, add_report_parser
from rightsizer.engine.policy import LimitRangeItem, parse_limit_range
from rightsizer.engine.settings import SettingsError, parse_assignments
from rightsizer.engine.strategies import PROFILES, STRATEGY_NAMES, build_strategy, settings_table
from rightsizer.model.assessment import assess
from rightsizer.quantity import QuantityError
from rightsizer.report.recommendations import FORMATS, render
from rightsizer.samples.errors import SamplesError
from rightsizer.sources.errors import SourceError
from rightsizer.sources.samples_file import add_max_input_argument, read_samples

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2


class BadInputError(Exception):
    """Input the user must fix; printed without a traceback, exit code 2."""


def _settings_help() -> str:
    lines = ["settings for --set KEY=VALUE, per strategy:"]
    for name in STRATEGY_NAMES:
        lines.append(f"\n  {name}:")
        for s in settings_table(name):
            lines.append(f"    {s.key:36} {s.help}")
    return "\n".join(lines)


def _read_limit_ranges(path: str) -> dict[str, list[LimitRangeItem]]:
    """LimitRange manifests from a YAML file; ``metadata.namespace`` (or ``*``) per item."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"{path}: cannot read LimitRange YAML: {exc}") from None
    result: dict[str, list[LimitRangeItem]] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            raise BadInputError(f"{path}: expected LimitRange objects")
        try:
            items = parse_limit_range(doc)
        except (ValueError, QuantityError) as exc:
            raise BadInputError(f"{path}: {exc}") from None
        ns = str((doc.get("metadata") or {}).get("namespace", "*"))
        result.setdefault(ns, []).extend(items)
    return result


def cmd_recommend(args: argparse.Namespace) -> int:
    from rightsizer.recommend import recommend_frame  # pandas: only for this command

    try:
        overrides = parse_assignments(args.set or [])
        strategy, policy = build_strategy(args.strategy, overrides, profile=args.profile)
    except (SettingsError, ValueError) as exc:
        raise BadInputError(str(exc)) from None
    if args.format == "jsonpatch":
        raise BadInputError(JSONPATCH_NEEDS_KUBE)
    settings = apply_settings(args, BadInputError) if args.format in PATCH_FORMATS else None
    limit_ranges = _read_limit_ranges(args.limit_range) if args.limit_range else {}
    try:
        frame = read_samples(args.samples, args.max_input_mib * 2**20)
    except SamplesError as exc:
        raise BadInputError(str(exc)) from None
    recs = recommend_frame(frame, strategy, policy, limit_ranges)
    if settings is not None:
        from rightsizer.controller.reconcile import MIN_HISTORY_S, MIN_SAMPLES

        # The operator's own thresholds, so the patch holds what Apply mode would write.
        rows = assess(recs, {}, min_history_s=MIN_HISTORY_S, min_samples=MIN_SAMPLES)
        return write_patches(rows, args.format, settings, "recommend")
    sys.stdout.write(render(recs, args.format))
    return EXIT_OK


def cmd_dev_openmetrics(args: argparse.Namespace) -> int:
    from rightsizer.dev.openmetrics import render, split_days, with_cpu_counter

    try:
        frame = read_samples(args.samples)
    except SamplesError as exc:
        raise BadInputError(str(exc)) from None
    if frame.empty:
        raise BadInputError(f"{args.samples}: no samples")
    if args.end == "now":
        end_s = time.time()
    else:
        try:
            end_s = float(args.end)
        except ValueError:
            raise BadInputError(f"--end must be 'now' or Unix seconds, got {args.end!r}") from None
    shift_s = end_s - float(frame["timestamp"].max())
    frame = with_cpu_counter(frame)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for day in split_days(frame, shift_s):
        first = float(day["timestamp"].min()) + shift_s
        path = out / f"day-{time.strftime('%Y%m%d', time.gmtime(first))}.om"
        with path.open("w") as fh:
            fh.writelines(render(day, shift_s))
        print(path)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rightsizer",
        description="Right-size Kubernetes workloads from real CPU and memory usage.",
    )
    parser.add_argument("--version", action="version", version=f"rightsizer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rec = sub.add_parser(
        "recommend",
        help="recommend requests and limits from a samples file",
        description=(
            "Compute recommendations from a samples file (CSV, CSV.gz or Parquet; "
            "columns as in shared/design/samples-format.md). Exit codes: 0 ok, "
            "2 bad input (message on stderr, nothing on stdout)."
        ),
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("--samples", required=True, metavar="FILE", help="samples file to read")
    add_max_input_argument(rec)
    rec.add_argument(
        "--strategy",
        choices=STRATEGY_NAMES,
        default="headroom",
        help="headroom: rightsizer's own (the best on the backtests, docs/quality.md); "
        "vpa: upstream VPA's recommender; percentile: p95 CPU, peak memory × 1.15 "
        "(default: %(default)s)",
    )
    rec.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default=None,
        help="headroom's point on the savings-versus-risk frontier (docs/quality.md): "
        "Conservative, Balanced (the default) or Economical; --set overrides its settings",
    )
    rec.add_argument(
        "--format",
        choices=(*FORMATS, *PATCH_FORMATS),
        default="table",
        help="output format (default: table); kustomize: strategic-merge patches for a "
        "GitOps repository (docs/gitops-export.md); jsonpatch needs `report --kube`",
    )
    rec.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a strategy or sizing setting; repeatable (keys listed below)",
    )
    rec.add_argument(
        "--limit-range",
        metavar="FILE",
        help="YAML with LimitRange objects to cap recommendations by (per metadata.namespace; "
        "without a namespace they apply everywhere)",
    )
    add_patch_arguments(rec)
    rec.set_defaults(func=cmd_recommend)
    add_backtest_parser(sub)

    add_report_parser(sub, BadInputError)

    dev = sub.add_parser("dev", help="developer tools (sandbox data)")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True, metavar="TOOL")
    om = dev_sub.add_parser(
        "openmetrics",
        help="turn a samples file into cAdvisor/kube-state-metrics series for promtool",
        description=(
            "Write one OpenMetrics file per UTC day into --output, ready for "
            "`promtool tsdb create-blocks-from openmetrics`. Prints the files written."
        ),
    )
    om.add_argument("--samples", required=True, metavar="FILE", help="samples file to read")
    om.add_argument(
        "--end",
        default="now",
        help="shift time so the history ends here: 'now' (default) or Unix seconds",
    )
    om.add_argument("--output", required=True, metavar="DIR", help="directory to write to")
    om.set_defaults(func=cmd_dev_openmetrics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except BadInputError as exc:
        print(f"rightsizer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SourceError as exc:
        print(f"rightsizer: error: {exc}", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    except KeyboardInterrupt:
        print("rightsizer: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
