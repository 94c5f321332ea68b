"""Recommendation objects at scale (issue 14 item 7): N Deployments spread over M
namespaces on kwok nodes, history in Prometheus, one RightSizePolicy per namespace.

Builds on ``bench_operator_scale.py`` (same sandbox setup, same ServiceAccount token, same
request counting by the apiserver's own metrics) and prints:

* policy creation → every RightSizeRecommendation object written (it exists and has a
  status), and → every policy's status complete;
* API requests by the operator (``flow_schema="service-accounts"``, exact) for the first
  contact and per steady round (every policy reconciled once), with the breakdown per
  verb and resource; writes to recommendation objects and 429 answers (the apiserver's
  ``apiserver_request_total``, the operator's own counters);
* operator peak RSS (``VmHWM``) and CPU seconds; apiserver and Prometheus CPU seconds
  (their own ``process_cpu_seconds_total``) during the first contact.

    python bench/bench_scale.py [--deployments 2000] [--namespaces 20] [--days 1]
                                [--writes-per-second R] [--reconciles 2] [--keep]
                                [--hold FILE] [--history-only]

``--hold FILE``: the sandbox, the Deployments and the history are set up, then the bench
waits until FILE exists before it starts the operator (so a long setup can overlap with
work on the operator's code); ``KEY=VALUE`` lines in FILE are added to the operator's
environment (e.g. ``PYTHONPATH`` of a source snapshot, ``MALLOC_ARENA_MAX``).

``--history-only``: Prometheus alone, the history written (one UTC day file at a time,
``fleet_history.day_files``) while promtool loads the day before; prints the time until
it is ready, the text's size, the blocks' samples and the bench's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client

from bench_operator_scale import (
    GROUP,
    NAMESPACE,
    PLURAL,
    PORTS,
    STATE_DIR,
    VERSION,
    Bench,
    Fleet,
    Samples,
    Snapshot,
    log,
    parse_metrics,
    prometheus_cpu,
    queries,
    run_in_sandbox,
    total,
    wait_for,
)
from tests.sandbox import OperatorExitedError, OperatorProcess

RSR = "rightsizerecommendations"
WRITE_VERBS = ("POST", "PATCH", "PUT", "DELETE")
OPERATOR_COUNTERS = [
    "rightsizer_reconcile_duration_seconds_count",
    "rightsizer_reconcile_duration_seconds_sum",
    "rightsizer_recommendation_writes_total",
    "rightsizer_recommendation_write_rejections_total",
]


def rsr_writes(samples: Samples) -> float:
    """Writes to recommendation objects the apiserver answered (any code)."""
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "apiserver_request_total"
        and dict(labels).get("resource") == RSR
        and dict(labels).get("verb") in WRITE_VERBS
    )


def too_many(samples: Samples) -> float:
    """429 answers of the apiserver, all clients and resources."""
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "apiserver_request_total" and dict(labels).get("code") == "429"
    )


class ScaleBench(Bench):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.spaces = [f"{NAMESPACE}-{j:02d}" for j in range(self.args.namespaces)]

    def create_deployments(self, fleet: Fleet) -> None:
        core: Any = client.CoreV1Api(self.admin)
        apps: Any = client.AppsV1Api(self.admin)
        for ns in self.spaces:
            core.create_namespace({"metadata": {"name": ns}})
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: apps.create_namespaced_deployment(
                fleet.namespaces[i], fleet.deployment(i)), range(len(fleet.names))))  # fmt: skip

        def available() -> bool:
            items = apps.list_deployment_for_all_namespaces(label_selector="app").items
            return sum(1 for d in items if (d.status.available_replicas or 0) >= 1) >= len(
                fleet.names
            )

        wait_for("all Deployments available", available, 1800, interval=5)

    def start_operator(self, kubeconfig: Path) -> None:
        self.operator_log = self.cfg.state / "operator.log"
        self.operator_log.unlink(missing_ok=True)
        env = self.held()
        if self.args.writes_per_second:
            env["RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND"] = f"{self.args.writes_per_second:g}"
        try:
            self.operator = OperatorProcess(
                kubeconfig, self.operator_log, self.cfg.prometheus_url, tick_s=2,
                log_format="json", start_timeout_s=180, env=env,
            )  # fmt: skip
        except (OperatorExitedError, TimeoutError) as exc:
            raise SystemExit(f"bench: the operator did not start: {exc}") from None
        self.metrics_port = self.operator.metrics_port
        self.wait_settled()

    def held(self) -> dict[str, str]:
        """--hold: wait for the file, return its KEY=VALUE lines."""
        if not self.args.hold:
            return {}
        hold = Path(self.args.hold)
        log(f"holding until {hold} exists …")
        wait_for(str(hold), hold.exists, 6 * 3600, interval=5)
        env = {}
        for line in hold.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                env[key] = value
        log(f"  operator environment from {hold}: {env}")
        return env

    def scrape_apiserver(self) -> Samples:
        import urllib.request

        req = urllib.request.Request(self.cfg.apiserver_url + "/metrics")
        with urllib.request.urlopen(req, context=self.ssl_admin, timeout=30) as resp:
            text = resp.read().decode()
        return parse_metrics(text, ["apiserver_request_total",
                                    "apiserver_flowcontrol_dispatched_requests_total",
                                    "process_cpu_seconds_total"])  # fmt: skip

    def scrape(self) -> Snapshot:
        import urllib.request

        apiserver = self.scrape_apiserver()
        with urllib.request.urlopen(self.cfg.prometheus_url + "/metrics", timeout=30) as r:
            prometheus = parse_metrics(
                r.read().decode(), ["process_cpu_seconds_total", "prometheus_http_requests_total"]
            )
        operator = parse_metrics(self.operator_metrics(), OPERATOR_COUNTERS)
        return Snapshot(
            at=time.monotonic(), apiserver=apiserver, prometheus=prometheus, operator=operator,
            reconciles=total(operator, "rightsizer_reconcile_duration_seconds_count"),
            reconcile_s=total(operator, "rightsizer_reconcile_duration_seconds_sum"),
        )  # fmt: skip

    def create_policies(self) -> None:
        custom: Any = client.CustomObjectsApi(self.admin)
        for ns in self.spaces:
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
                "metadata": {"name": "bench", "namespace": ns},
                "spec": {
                    "targets": {"kinds": ["Deployment"]},
                    "source": {
                        "prometheus": {"url": self.cfg.prometheus_url,
                                       "history": f"{self.args.days:g}d", "step": "1m"},
                        "metricsServer": {"enabled": False},
                    },
                    "update": {"mode": "Recommend"},
                    "reconcileInterval": f"{self.args.interval:g}s",
                },
            })  # fmt: skip

    def objects_written(self) -> int:
        """Recommendation objects with a status (both writes of a new object done)."""
        custom: Any = client.CustomObjectsApi(self.admin)
        items = custom.list_cluster_custom_object(GROUP, VERSION, RSR)["items"]
        return sum(1 for o in items if (o.get("status") or {}).get("state"))

    def policies_complete(self) -> int:
        custom: Any = client.CustomObjectsApi(self.admin)
        done = 0
        for p in custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]:
            status = p.get("status") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions", []))  # fmt: skip
            done += bool(ready and (status.get("summary") or {}).get("workloads"))
        return done

    def run(self) -> None:
        args = self.args
        n, m = args.deployments, args.namespaces
        if args.history_only:
            self.history_only(Fleet.make(n, spaces=m))
            return
        t_start = time.monotonic()
        log(f"sandbox in {os.environ['RIGHTSIZER_SANDBOX_DIR']} (fresh data)")
        self.sandbox_up()
        kubeconfig = self.install()
        self.nodes(n)
        fleet = Fleet.make(n, spaces=m)
        # The history load (Python and promtool) and the Deployments (apiserver, controllers,
        # kwok) run side by side: the setup's two long parts, independent of each other.
        log(f"history: {n} containers × {args.days:g} days at 1 minute, while creating {n} "
            f"Deployments in {m} namespaces …")  # fmt: skip
        t0 = time.monotonic()
        with ThreadPoolExecutor(1) as history:
            loaded = history.submit(self.load_history, fleet)
            self.create_deployments(fleet)
            log(f"  {n} Deployments available in {time.monotonic() - t0:.0f}s")
            loaded.result()
        log(f"  history and Deployments ready in {time.monotonic() - t0:.0f}s")
        log("starting the operator (ServiceAccount token) …")
        self.start_operator(kubeconfig)
        idle = self.operator_status()
        s0 = self.scrape()
        time.sleep(args.baseline)
        s1 = self.scrape()
        idle_sa = self.sa_requests(s1.apiserver) - self.sa_requests(s0.apiserver)
        baseline = {k: v / (s1.at - s0.at) for k, v in self.deltas(s0, s1).items()}

        log(f"creating {m} policies …")
        setup_s = time.monotonic() - t_start
        start = self.operator_status()
        t0 = time.monotonic()
        self.create_policies()
        t_complete: float | None = None
        t_objects: float | None = None
        last = -1
        deadline = t0 + args.timeout
        while t_objects is None or t_complete is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {last} of {n} objects after {args.timeout:.0f}s")
            if t_complete is None and self.policies_complete() >= m:
                t_complete = time.monotonic() - t0
                log(f"  every policy's status complete after {t_complete:.1f}s")
            if t_objects is None:
                last = self.objects_written()
                if last >= n:
                    t_objects = time.monotonic() - t0
                    log(f"  all {n} objects written after {t_objects:.1f}s")
            time.sleep(max(2.0, n / 2000))  # listing every object costs the apiserver too
        end = self.operator_status()
        s2 = self.scrape()
        # Writes still planned by reconciles that ran before the index caught up show as
        # 409s in the first steady round; start counting after one more round.
        log(f"steady state: {args.reconciles} rounds of {m} reconciles …")
        wait_for("one settling round", lambda: self.scrape().reconciles >= s2.reconciles + m,
                 args.interval * 3 + 300)  # fmt: skip
        s3 = self.scrape()
        wait_for(f"{args.reconciles} rounds",
                 lambda: self.scrape().reconciles >= s3.reconciles + m * args.reconciles,
                 args.interval * (args.reconciles + 2) + 300)  # fmt: skip
        s4 = self.scrape()
        final = self.operator_status()

        ticks = os.sysconf("SC_CLK_TCK")
        rounds = (s4.reconciles - s3.reconciles) / m
        first_sa = self.sa_requests(s2.apiserver) - self.sa_requests(s1.apiserver)
        steady_sa = self.sa_requests(s4.apiserver) - self.sa_requests(s3.apiserver)
        writes_first = rsr_writes(s2.apiserver) - rsr_writes(s1.apiserver)
        writes_steady = rsr_writes(s4.apiserver) - rsr_writes(s3.apiserver)
        api_cpu = total(s2.apiserver, "process_cpu_seconds_total") - total(
            s1.apiserver, "process_cpu_seconds_total"
        )
        contact_s = s2.at - s1.at
        rejections = total(s4.operator, "rightsizer_recommendation_write_rejections_total")
        pace = args.writes_per_second or "default"
        print(
            f"\nrecommendation objects at scale: {n} Deployments in {m} namespaces (one "
            f"policy each, Recommend mode) on kwok nodes, {args.days:g} days of 1-minute "
            f"history; write pace {pace}/s; {os.cpu_count()} CPUs; setup {setup_s:.0f}s\n"
        )
        rows = [
            ("policies created → every object written", f"{t_objects:.1f} s (target ≤ 300 s)"),
            ("policies created → every policy status complete", f"{t_complete:.1f} s"),
            ("API requests by the operator, first contact", f"{first_sa:.0f}"),
            ("  of which writes to recommendation objects", f"{writes_first:.0f} "
             f"({writes_first / max(n, 1):.2f} per object)"),
            (f"API requests per steady round ({rounds:.1f} rounds of {m} reconciles)",
             f"{steady_sa / max(rounds, 1):.1f}"),
            ("  writes to recommendation objects, steady", f"{writes_steady:.0f} (target 0)"),
            ("API requests while idle (before the policies)",
             f"{idle_sa:.0f} in {s1.at - s0.at:.0f} s"),
            ("429 answers (apiserver, all clients) / operator's retries",
             f"{too_many(s4.apiserver) - too_many(s1.apiserver):.0f} / {rejections:.0f}"),
            ("Prometheus queries, first contact", f"{queries(s2) - queries(s1):.0f}"),
            ("operator peak RSS (VmHWM)", f"{final['VmHWM'] / 1024:.0f} MiB (target ≤ 500 MiB)"),
            ("operator RSS idle / after first contact / end",
             f"{idle['VmRSS'] / 1024:.0f} / {end['VmRSS'] / 1024:.0f} / "
             f"{final['VmRSS'] / 1024:.0f} MiB"),
            ("operator CPU seconds, first contact",
             f"{(end['cpu_ticks'] - start['cpu_ticks']) / ticks:.1f} s in {contact_s:.0f} s"),
            ("apiserver CPU seconds, first contact", f"{api_cpu:.1f} s"),
            ("Prometheus CPU seconds, first contact",
             f"{prometheus_cpu(s2) - prometheus_cpu(s1):.1f} s"),
            ("first-contact reconciles: count, total seconds",
             f"{s2.reconciles - s1.reconciles:.0f}, {s2.reconcile_s - s1.reconcile_s:.1f} s"),
        ]  # fmt: skip
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k.ljust(width)}  {v}")
        for title, a, b in (("first contact", s1, s2), ("steady rounds", s3, s4)):
            print(f"\nAPI requests by verb/resource, {title} (the operator's resources, all "
                  f"clients, background subtracted; approximate):")  # fmt: skip
            for key, value in self.breakdown(a, b, baseline, 0)[:12]:
                print(f"  {value:8.0f}  {key}")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--days", type=float, default=1.0, help="days of history (default 1)")
    parser.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="each policy's reconcileInterval, seconds (default 60)",
    )
    parser.add_argument(
        "--reconciles", type=int, default=2, help="steady rounds to average over (default 2)"
    )
    parser.add_argument(
        "--baseline",
        type=float,
        default=15.0,
        help="seconds of background traffic to measure (default 15)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=0.0,
        help="RIGHTSIZER_RECOMMENDATION_WRITES_PER_SECOND (0: the default)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument(
        "--hold",
        default="",
        help="wait for this file before starting the operator; its KEY=VALUE lines go to "
        "the operator's environment",
    )
    parser.add_argument(
        "--history-only",
        action="store_true",
        help="only write and load the history (Prometheus alone, no cluster, no operator)",
    )
    args = parser.parse_args()
    args.no_metrics_server, args.profile = True, None
    run_in_sandbox(ScaleBench, args, STATE_DIR, PORTS)


if __name__ == "__main__":
    main()
