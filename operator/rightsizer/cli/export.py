"""``--format kustomize|jsonpatch`` for ``recommend`` and ``report``: patches for a PR."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rightsizer import __version__
from rightsizer.export.patches import (
    PATCH_FORMATS,
    Hpas,
    Templates,
    UnknownContainersError,
    nothing_to_change,
    plan_changes,
    render_jsonpatch,
    render_kustomize,
)
from rightsizer.guardrails.apply import ApplySettings
from rightsizer.model.assessment import Assessment
from rightsizer.model.hpa import UtilizationBounds

__all__ = ["JSONPATCH_NEEDS_KUBE", "PATCH_FORMATS", "add_patch_arguments", "write_patches"]

EXIT_INCOMPLETE = 1

JSONPATCH_NEEDS_KUBE = (
    "--format jsonpatch needs --kube: JSON patches address containers by their position "
    "in the pod template, which only the live workloads tell (`rightsizer report --kube "
    "--format jsonpatch`); --format kustomize merges by container name and needs neither"
)

_DEFAULTS = ApplySettings()


def add_patch_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "patches (--format kustomize|jsonpatch)",
        "the new values are those Apply mode would write, with these guardrails",
    )
    g.add_argument("--max-step-down", type=float, metavar="PERCENT",
                   default=_DEFAULTS.max_step_down_percent,
                   help="largest decrease per change, in %% (default %(default)g)")  # fmt: skip
    g.add_argument("--memory-peak-margin", type=float, metavar="PERCENT",
                   default=_DEFAULTS.memory_peak_margin_percent,
                   help="memory never below the observed peak plus this, in %% "
                        "(default %(default)g)")  # fmt: skip
    g.add_argument("--min-change", type=float, metavar="PERCENT",
                   default=_DEFAULTS.min_change_percent,
                   help="leave containers whose requests move less than this, in %% "
                        "(default %(default)g)")  # fmt: skip
    g.add_argument("--hpa-resources", choices=("Skip", "Allow", "Compensate"),
                   default="Compensate",
                   help="resources an HPA scales on by utilization (live HPAs: report "
                        "--kube): leave alone, change, or change with the HPA's target "
                        "moved to keep its scale point, exported next to them (default "
                        "%(default)s)")  # fmt: skip
    g.add_argument(
        "--hpa-bounds",
        default="10-200",
        metavar="MIN-MAX",
        help="Compensate: targets allowed, in %% (default %(default)s)",
    )


def apply_settings(args: argparse.Namespace, bad_input: type[Exception]) -> ApplySettings:
    for flag, value, high in (
        ("--max-step-down", args.max_step_down, 100.0),
        ("--memory-peak-margin", args.memory_peak_margin, None),
        ("--min-change", args.min_change, None),
    ):
        if not value >= 0 or (high is not None and value > high):
            bound = f"between 0 and {high:g}" if high is not None else "0 or more"
            raise bad_input(f"{flag} must be {bound} (percent), got {value:g}")
    low_text, _, high_text = str(args.hpa_bounds).partition("-")
    try:
        bounds = UtilizationBounds(int(low_text), int(high_text))
    except ValueError:
        raise bad_input(f"--hpa-bounds must be MIN-MAX in percent, got {args.hpa_bounds}") from None
    if not 0 < bounds.low_percent < bounds.high_percent:
        raise bad_input(f"--hpa-bounds: MIN must be positive and below MAX ({args.hpa_bounds})")
    return ApplySettings(
        min_change_percent=args.min_change,
        max_step_down_percent=args.max_step_down,
        memory_peak_margin_percent=args.memory_peak_margin,
        hpa_resources=args.hpa_resources,
        hpa_bounds=bounds,
    )


def write_patches(
    rows: Sequence[Assessment],
    fmt: str,
    settings: ApplySettings,
    command: str,
    templates: Templates | None = None,
    output: str | None = None,
    hpas: Hpas = (),
) -> int:
    """Render, write to ``output`` (or stdout) and report on stderr. Returns the exit
    code: 0, or 1 when containers were left out for lack of a place in the templates."""
    plan = plan_changes(rows, settings, templates, hpas)
    produced_by = f"rightsizer {__version__} ({command})"
    code = 0
    try:
        if fmt == "jsonpatch":
            assert templates is not None
            text = render_jsonpatch(plan, templates)
        else:
            text = render_kustomize(plan, settings, produced_by, templates)
    except UnknownContainersError as exc:
        text = exc.output
        print(f"rightsizer: error: {exc}", file=sys.stderr)
        code = EXIT_INCOMPLETE
    if plan.containers == 0:
        print(f"rightsizer: {nothing_to_change(plan)}", file=sys.stderr)
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)
    return code
