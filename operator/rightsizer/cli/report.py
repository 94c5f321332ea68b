"""``rightsizer report``: read-only recommendations for a live cluster's history."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rightsizer import heap
from rightsizer.cli.export import (
    JSONPATCH_NEEDS_KUBE,
    PATCH_FORMATS,
    add_patch_arguments,
    apply_settings,
    write_patches,
)
from rightsizer.cli.progress import Progress
from rightsizer.engine.policy import SizingPolicy
from rightsizer.engine.settings import SettingsError, parse_assignments, parse_duration_s
from rightsizer.engine.strategies import PROFILES, STRATEGY_NAMES, Strategy, build_strategy
from rightsizer.export.patches import TemplateContainer, Templates
from rightsizer.guardrails.apply import ApplySettings
from rightsizer.model.assessment import assess, totals
from rightsizer.report.collect import (
    DEFAULT_KINDS,
    ClusterReads,
    Collected,
    Scope,
    collect_from_prometheus,
)
from rightsizer.report.hpa import hpa_changes
from rightsizer.report.render import FORMATS, render_report
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from rightsizer.sources.prometheus_history import HistoryWindow, PrometheusHistory, plan_bootstrap

EXIT_SOURCE_FAILED = 3
DEFAULT_OLDER_STEP = "5m"

EPILOG = """\
credentials (never on the command line):
  RIGHTSIZER_PROMETHEUS_TOKEN          bearer token (or --prometheus-token-file)
  RIGHTSIZER_PROMETHEUS_USER / _PASSWORD   basic auth

patches for a GitOps repository (docs/gitops-export.md):
  --format kustomize    strategic-merge patches, one YAML document per workload
  --format jsonpatch    RFC 6902 patches with kustomize targets (needs --kube: positions
                        of the containers in each pod template)

exit codes: 0 ok; 2 bad input; 3 a source failed or answered partially (no report is
printed then); 1 anything else (also: patches written, but containers left out that are
not in the live pod templates).
"""


def add_report_parser(sub: Any, bad_input: type[Exception]) -> None:
    p = sub.add_parser(
        "report",
        help="one-shot, read-only recommendations from Prometheus history",
        description=(
            "Read CPU/memory history from Prometheus (cAdvisor + kube-state-metrics) and "
            "print what each container's requests should be. Reads only; writes nothing."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--prometheus", metavar="URL", required=True, help="Prometheus base URL")
    p.add_argument("--prometheus-token-file", metavar="FILE", help="file with a bearer token")
    p.add_argument("--ca-bundle", metavar="FILE", help="CA certificates to verify TLS with")
    p.add_argument("--insecure-skip-tls-verify", action="store_true", help="do not verify TLS")
    p.add_argument("--header", action="append", metavar="'NAME: VALUE'",
                   help="extra HTTP header (repeatable), e.g. for a tenant ID")  # fmt: skip
    p.add_argument("--label-matcher", default="", metavar="MATCHERS",
                   help='series matchers for a shared Prometheus, e.g. cluster="prod"')  # fmt: skip
    p.add_argument("--timeout", default="60s",
                   help="per-query timeout (default 60s); each request, body included, "
                        "ends at 1.2 × this + 1 s whatever the server does")  # fmt: skip
    p.add_argument("--max-response-mib", type=float, default=64.0, metavar="MIB",
                   help="largest answer read per query, after decompression (default 64); "
                        "a larger one fails the report (exit 3)")  # fmt: skip
    p.add_argument("--retries", type=int, default=3, help="retries per query (default 3)")
    p.add_argument("--compress", action="store_true",
                   help="ask for gzip answers: less on the wire, about twice Prometheus's "
                        "CPU (for slow links; default: uncompressed)")  # fmt: skip
    p.add_argument("--in-flight", type=int, default=2, metavar="N",
                   help="queries in flight at once, 1-8 (default 2)")  # fmt: skip
    p.add_argument("--kube", action="store_true",
                   help="also use the current kube context: owner references, LimitRanges, "
                        "--selector")  # fmt: skip
    p.add_argument("--context", help="kube context to use (implies --kube)")
    p.add_argument("--namespace", "-n", action="append", default=[],
                   help="namespace name or regex (repeatable; default all)")  # fmt: skip
    p.add_argument("--selector", "-l", help="label selector on workloads (needs --kube)")
    p.add_argument("--kind", action="append", choices=DEFAULT_KINDS,
                   help="workload kinds (repeatable; default all three)")  # fmt: skip
    p.add_argument("--history", default="14d", help="how far back to read (default 14d)")
    p.add_argument("--step", default="1m", help="resolution of the history (default 1m)")
    p.add_argument(
        "--older-step",
        metavar="DURATION",
        help="read history older than --full-resolution at this coarser step, each "
        f"sample weighted as older-step/step samples (default {DEFAULT_OLDER_STEP} when "
        "that is a coarser whole multiple of --step; = --step reads all at full resolution)",
    )
    p.add_argument(
        "--full-resolution",
        default="24h",
        metavar="DURATION",
        help="most recent history read at --step when --older-step is set (default 24h)",
    )
    p.add_argument("--end", default="now", help="end of the history: now or Unix seconds")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default="headroom")
    p.add_argument("--profile", choices=tuple(PROFILES), default=None,
                   help="headroom's savings-versus-risk point (default Balanced; "
                   "docs/quality.md); --set overrides its settings")  # fmt: skip
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="strategy/sizing setting (see `rightsizer recommend --help`)")  # fmt: skip
    p.add_argument("--min-history", default="24h",
                   help="less history than this → 'insufficient data' (default 24h)")  # fmt: skip
    p.add_argument("--min-samples", type=int, default=60,
                   help="fewer CPU samples → 'insufficient data' (default 60)")  # fmt: skip
    p.add_argument("--format", choices=(*FORMATS, *PATCH_FORMATS), default="table")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here, not stdout")
    add_patch_arguments(p)
    p.set_defaults(func=lambda args: cmd_report(args, bad_input))


def _headers(items: list[str] | None, bad_input: type[Exception]) -> dict[str, str]:
    headers = {}
    for item in items or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise bad_input(f"--header must look like 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def _config(args: argparse.Namespace, bad_input: type[Exception]) -> PrometheusConfig:
    token = os.environ.get("RIGHTSIZER_PROMETHEUS_TOKEN")
    if args.prometheus_token_file:
        try:
            token = Path(args.prometheus_token_file).read_text().strip()
        except OSError as exc:
            raise bad_input(f"cannot read --prometheus-token-file: {exc}") from None
    user = os.environ.get("RIGHTSIZER_PROMETHEUS_USER")
    password = os.environ.get("RIGHTSIZER_PROMETHEUS_PASSWORD", "")
    try:
        return PrometheusConfig(
            url=args.prometheus,
            bearer_token=token,
            basic_auth=(user, password) if user else None,
            ca_bundle=args.ca_bundle,
            verify_tls=not args.insecure_skip_tls_verify,
            headers=_headers(args.header, bad_input),
            label_matchers=args.label_matcher,
            timeout_s=parse_duration_s(args.timeout),
            retries=args.retries,
            max_response_bytes=int(args.max_response_mib * 1024 * 1024),
            compression=args.compress,
            in_flight=args.in_flight,
        )
    except (ValueError, SettingsError) as exc:
        raise bad_input(str(exc)) from None


@dataclass(frozen=True)
class ReportPlan:
    """What the command line asks for, checked before anything is read."""

    sizing: tuple[Strategy, SizingPolicy]
    windows: list[HistoryWindow]
    step_s: float
    older_step_s: float
    min_history_s: float
    kinds: tuple[str, ...]
    kube: bool
    patch_settings: ApplySettings | None


@dataclass
class ReportReads:
    collected: Collected
    templates: Templates | None
    hpas: list[dict[str, Any]] = field(default_factory=list)
    """The live HPAs of the namespaces (``--kube``): exported with the patches, shown next
    to the request changes otherwise."""


def cmd_report(args: argparse.Namespace, bad_input: type[Exception]) -> int:
    heap.limit_arenas(os.environ)  # before the reader threads: a lower peak (heap.py)
    plan = _plan(args, bad_input)
    config = _config(args, bad_input)
    client = PrometheusClient(config)
    try:
        history = PrometheusHistory(client)
    except ValueError as exc:
        raise bad_input(str(exc)) from None
    reads = _read(args, plan, client, history)
    rows = assess(
        reads.collected.recommendations,
        reads.collected.replicas,
        min_history_s=plan.min_history_s,
        min_samples=args.min_samples,
    )
    if plan.patch_settings is not None:
        return write_patches(
            rows, args.format, plan.patch_settings, "report", reads.templates, args.output,
            reads.hpas,
        )  # fmt: skip
    text = render_report(
        rows,
        totals(rows),
        args.format,
        _source(args, plan, config, reads),
        hpa_changes(rows, reads.hpas, apply_settings(args, bad_input).hpa_bounds),
    )
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _plan(args: argparse.Namespace, bad_input: type[Exception]) -> ReportPlan:
    try:
        sizing = build_strategy(
            args.strategy, parse_assignments(args.set or []), profile=args.profile
        )
        history_s = parse_duration_s(args.history)
        step_s = parse_duration_s(args.step)
        min_history_s = parse_duration_s(args.min_history)
        end_s = time.time() if args.end == "now" else float(args.end)
        older_step_s = _older_step_s(args.older_step, step_s)
        if older_step_s > step_s and not math.isclose(
            older_step_s / step_s, round(older_step_s / step_s)
        ):
            raise ValueError("--older-step must be a whole multiple of --step")
        windows = plan_bootstrap(
            end_s - history_s, end_s, step_s, older_step_s, parse_duration_s(args.full_resolution)
        )
    except (SettingsError, ValueError) as exc:
        raise bad_input(str(exc)) from None
    kube = bool(args.kube or args.context)
    if args.selector and not kube:
        raise bad_input("--selector needs --kube (workload labels come from the API)")
    if args.format == "jsonpatch" and not kube:
        raise bad_input(JSONPATCH_NEEDS_KUBE)
    return ReportPlan(
        sizing=sizing, windows=windows, step_s=step_s, older_step_s=older_step_s,
        min_history_s=min_history_s, kinds=tuple(args.kind or DEFAULT_KINDS), kube=kube,
        patch_settings=(
            apply_settings(args, bad_input) if args.format in PATCH_FORMATS else None
        ),
    )  # fmt: skip


def _older_step_s(older_step: str | None, step_s: float) -> float:
    """``--older-step``, or by default 5m where that is a coarser whole multiple of the step
    (the tiered read, as the operator's first contact), else the step itself."""
    if older_step:
        return parse_duration_s(older_step)
    default_s = parse_duration_s(DEFAULT_OLDER_STEP)
    ratio = default_s / step_s
    return default_s if ratio > 1 and math.isclose(ratio, round(ratio)) else step_s


def _read(
    args: argparse.Namespace, plan: ReportPlan, client: PrometheusClient,
    history: PrometheusHistory,
) -> ReportReads:  # fmt: skip
    """Everything the report needs from Prometheus (and the API with ``--kube``), with
    progress on the terminal."""
    progress = Progress()
    api = None
    if plan.kube:
        from rightsizer.sources import kubernetes_api as kube

        api = kube.api_client(args.context)
    try:
        client.check()
        collected = collect_from_prometheus(
            history,
            plan.sizing,
            plan.windows,
            Scope(namespaces=tuple(args.namespace), kinds=plan.kinds),
            cluster=_cluster_reads(api) if api is not None else None,
            progress=progress,
        )
        if api is not None and args.selector:
            allowed: set[tuple[str, str]] = set()
            for ns in collected.namespaces:
                allowed |= kube.workloads_matching(api, ns, args.selector, plan.kinds)
            collected.recommendations = [
                r for r in collected.recommendations if (r.namespace, r.workload) in allowed
            ]
        templates: Templates | None = None
        hpas: list[dict[str, Any]] = []
        if api is not None:
            namespaces = sorted({r.namespace for r in collected.recommendations})
            if plan.patch_settings is not None:
                templates = _templates(api, namespaces, plan.kinds)
            for ns in namespaces:
                try:
                    hpas.extend(kube.hpas_of(api, ns))
                except Exception as exc:  # the exports need them; the table does without
                    if plan.patch_settings is not None:
                        raise
                    print(f"rightsizer: HPAs of {ns} not read ({type(exc).__name__}): "
                          "their targets are not shown", file=sys.stderr)  # fmt: skip
    finally:
        progress.done()
        client.close()
    return ReportReads(collected, templates, hpas)


def _cluster_reads(api: Any) -> ClusterReads:
    from rightsizer.sources import kubernetes_api as kube

    return ClusterReads(
        limit_ranges=lambda ns: kube.limit_range_items(api, ns),
        owners=lambda ns: WorkloadResolver(
            kube.pod_owners(api, ns), kube.replicaset_owners(api, ns)
        ),
    )


def _source(
    args: argparse.Namespace, plan: ReportPlan, config: PrometheusConfig, reads: ReportReads
) -> dict[str, Any]:
    """Where the report's figures come from, as the output formats print it."""
    windows = plan.windows
    history_info: dict[str, float] = {
        "start": windows[0].start_s,
        "end": windows[-1].end_s,
        "step": plan.step_s,
    }
    if len(windows) > 1:
        history_info.update(olderStep=plan.older_step_s, fullResolutionFrom=windows[1].start_s)
    return {
        "prometheus": config.url,
        "labelMatchers": config.label_matchers,
        "history": history_info,
        "namespaces": reads.collected.namespaces,
        "queries": reads.collected.queries_sent,
        "strategy": args.strategy,
    }


def _templates(api: Any, namespaces: list[str], kinds: tuple[str, ...]) -> Templates:
    """The live pod templates' containers (order and resources) of the workloads."""
    from rightsizer.sources import kubernetes_api as kube

    found: dict[tuple[str, str], list[str | TemplateContainer]] = {}
    for ns in namespaces:
        for key, containers in kube.template_containers(api, ns, kinds).items():
            found[key] = [TemplateContainer(name, res) for name, res in containers]
    return found
