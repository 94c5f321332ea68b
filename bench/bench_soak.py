"""Soak benchmark: does the operator's state stay bounded under pod churn?

90 simulated days of a 20-replica Deployment rolled out daily (20 new pod names a day)
and a CronJob-like workload starting a 5-minute pod every 15 minutes (96 new pods a day),
1-minute samples. They go through the operator's own code path at accelerated time:
``reconcile()`` once per simulated hour with a history port serving the samples chunk by
chunk (``rightsizer.dev.churn.ChurnHistory``) and a pod-list port answering which pods
exist — so the registry, the strategy state, garbage collection, the recommendation and
the checkpoint encoding are the real ones. Per simulated week it prints the process's RSS,
the entries held (pods × containers = instances, containers) and the checkpoint's bytes.

Each configuration runs in its own process, so RSS is its own.

    python bench/bench_soak.py                       # vpa and headroom, 90 days
    python bench/bench_soak.py --strategy vpa --days 30 --no-forgetting
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

HOUR_S = 3600.0
WEEK_S = 7 * 86_400.0
START_S = 1_800_000_000.0


def _rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_one(strategy: str, days: int, forgetting: bool) -> list[dict[str, Any]]:
    from rightsizer.controller import reconcile as reconcile_module
    from rightsizer.controller.reconcile import Ports, ReconcileInput, reconcile
    from rightsizer.dev.churn import Churn, ChurnHistory
    from rightsizer.engine.recommendation import Resources
    from rightsizer.model.workloads import ContainerResources, PolicyInfo, WorkloadInfo

    if not forgetting:  # the baseline: garbage collection never due
        reconcile_module.GC_INTERVAL_S = float("inf")
    churn = Churn(replicas=20, job_every_s=900.0, job_run_s=300.0, step_s=60.0)
    spec = {
        "strategy": {"name": strategy},
        "source": {
            "prometheus": {"url": "http://soak:9090", "history": "1h", "step": "1m"},
            "metricsServer": {"enabled": False},
        },
    }
    policy = PolicyInfo(churn.namespace, "soak", "uid", "2026-01-01T00:00:00Z", spec)
    app = ContainerResources("app", Resources(500, 2**29), Resources(None, 2**30))
    web = WorkloadInfo("Deployment", churn.namespace, churn.deployment, "w", {}, {}, 20, (app,))
    clock = {"now": START_S}
    ports = Ports(
        prometheus=lambda src, ns: ChurnHistory(churn),  # type: ignore[arg-type,return-value]
        live_pods=lambda ns: {pod for _, pod in churn.live_pods(clock["now"])},
    )
    runtime = None
    rows: list[dict[str, Any]] = []
    checkpoint_bytes = 0
    t0 = time.perf_counter()
    for hour in range(1, days * 24 + 1):
        now = START_S + hour * HOUR_S
        clock["now"] = now
        outcome, runtime = reconcile(
            ReconcileInput(policy, 1, {}, [web], [], [], now), runtime, ports
        )
        assert runtime is not None and outcome.source_error is None
        if outcome.checkpoint is not None:
            checkpoint_bytes = len(outcome.checkpoint)
        if hour % (7 * 24) == 0 or hour == days * 24:
            rss, peak = _rss_mib()
            target = {r.recommendation.container: r.recommendation.target for r in outcome.rows}
            rows.append(
                {
                    "day": hour / 24,
                    "rss_mib": round(rss, 1),
                    "peak_rss_mib": round(peak, 1),
                    "instances": len(runtime.registry.instances),
                    "containers": len(runtime.registry.containers),
                    "checkpoint_bytes": checkpoint_bytes,
                    "app_target": str(target.get("app")),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", action="append", help="vpa, headroom, percentile")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--no-forgetting", action="store_true", help="baseline: no GC")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    strategies = args.strategy or ["vpa", "headroom"]
    if args.one:
        print(json.dumps(run_one(strategies[0], args.days, not args.no_forgetting)))
        return
    for strategy in strategies:
        argv = [sys.executable, __file__, "--one", "--strategy", strategy, "--days", str(args.days)]
        if args.no_forgetting:
            argv.append("--no-forgetting")
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        mode = "without forgetting" if args.no_forgetting else "with forgetting"
        print(f"\n{strategy}, {args.days} simulated days, {mode}")
        print("| day | RSS MiB | peak RSS MiB | instances held | containers | checkpoint bytes |")
        print("|---:|---:|---:|---:|---:|---:|")
        for row in json.loads(out):
            print(
                f"| {row['day']:g} | {row['rss_mib']:.0f} | {row['peak_rss_mib']:.0f} | "
                f"{row['instances']:,} | {row['containers']} | {row['checkpoint_bytes']:,} |"
            )
        last = json.loads(out)[-1]
        print(f"(wall {last['wall_s']} s; app target at the end: {last['app_target']})")


if __name__ == "__main__":
    main()
