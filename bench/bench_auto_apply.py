"""Auto-apply at scale: 1,000 opted-in Deployments, one RightSizePolicy in Apply mode.

The same sandbox, fleet and week of history as ``bench_operator_scale.py`` (whose ``Bench``
this reuses), in its own state directory (``/tmp/rightsizer-bench-apply``) and on its own
ports (13xxx), so both benchmarks can exist side by side. The fleet's requests (250m,
256Mi) are generous, so most recommendations differ from them by more than
``minChangePercent``. The namespace carries ``rightsizer.dev/auto-apply=enabled``; the
policy has ``update.mode: Apply``, ``maxConcurrentRollouts`` (``--max-rollouts``, default
2 as the product), cooldown 24h, reconcileInterval 20s; the operator ticks every 2 s.

Measured from the policy's creation:

* time to a complete status (recommendations for every workload);
* time until every eligible Deployment is applied. A Deployment is applied when it carries
  the ``rightsizer.dev/last-applied`` annotation (the record written in the same
  server-side apply as the resources); the time of the last apply is the record's own
  timestamp. The run is over when the operator's ``rightsizer_workload_writes_total``
  (polled every ``--poll`` s) has not grown for ``--settle`` seconds, no workload was held
  by ``RolloutLimit`` or ``RolloutInProgress`` meanwhile (its
  ``rightsizer_skips_total{reason}``, which counts every held workload on every pass, so
  it counts every held workload), and a list of the Deployments shows no rollout in
  flight. The others are held: their reasons come from each RightSizeRecommendation's
  ``status.autoApply``;
* applies per minute, the rollouts in flight (time average of the lists of the
  Deployments, every ``--list-every`` s, and Little's law from the records' times and the
  Deployments' ``Progressing`` condition);
* API requests of the operator's ServiceAccount during the apply phase (complete status →
  end) and per apply, with a verb/resource breakdown (all clients, this script's own reads
  and the background rate measured before the policy subtracted; dry-runs apart);
* the operator's peak RSS (VmHWM) and CPU seconds.

``--apply-timeout`` bounds the wait: on expiry the figures so far are printed with the
projected time to apply the rest at the measured rate.

    python bench/bench_auto_apply.py [--deployments 1000] [--days 7] [--max-rollouts 2]
                                     [--settle 30] [--apply-timeout 3600] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the operator-at-scale benchmark

from kubernetes import client

import bench_operator_scale as base

STATE_DIR = "/tmp/rightsizer-bench-apply"
#: The base benchmark's ports + 1000 (12xxx → 13xxx): never the same as a running base.
PORTS = {var: port + 1000 for var, port in base.PORTS.items()}
AUTO_APPLY_LABEL = "rightsizer.dev/auto-apply"
RECORD_ANNOTATION = "rightsizer.dev/last-applied"
#: Holds that mean "eligible, not yet written": the run is not over while they occur.
WAITING = ("RolloutLimit", "RolloutInProgress")
DEPLOYMENTS_PATH = f"/apis/apps/v1/namespaces/{base.NAMESPACE}/deployments"
FLOW = "apiserver_flowcontrol_dispatched_requests_total"
#: FlowSchemas matching only the operator's ServiceAccount, ahead of the built-in
#: "service-accounts" one (same priority level): the apiserver counts the operator's
#: requests exactly, by what they do. name → (verbs, API groups, resources); first match
#: wins (the catch-all last: watches, lists, discovery).
OPERATOR_FLOWS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "rs-write-workloads": (["patch"], ["apps"], ["deployments", "statefulsets", "daemonsets"]),
    "rs-get-workloads": (["get"], ["apps"], ["deployments", "statefulsets", "daemonsets"]),
    "rs-events": (["create", "patch"], ["", "events.k8s.io"], ["events"]),
    "rs-policy-status": (["get", "patch", "update"], [base.GROUP], [f"{base.PLURAL}/status"]),
    "rs-policies": (["get", "patch"], [base.GROUP], [base.PLURAL]),
    "rs-pods": (["get", "list"], [""], ["pods"]),
    "rs-configmaps": (["*"], [""], ["configmaps"]),
    "rs-other": (["*"], ["*"], ["*"]),
}


def seconds(timestamp: str) -> float:
    """An API timestamp (RFC 3339, whole seconds) as epoch seconds (0 when unparsable)."""
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def describe(schema: str) -> str:
    if schema not in OPERATOR_FLOWS:
        return "(not matched by the benchmark's FlowSchemas)"
    verbs, groups, resources = OPERATOR_FLOWS[schema]
    return f"{'/'.join(verbs)} {','.join(g or 'core' for g in groups)}/{','.join(resources)}"


def rolling(d: dict[str, Any]) -> bool:
    """A Deployment's rollout is not complete (the operator's rule, guardrails.rollout)."""
    spec, status = d.get("spec") or {}, d.get("status") or {}
    desired = int(spec.get("replicas", 1))
    return not (
        int(status.get("observedGeneration", 0)) >= int(d["metadata"].get("generation", 0))
        and int(status.get("updatedReplicas", 0)) >= desired
        and int(status.get("availableReplicas", 0)) >= desired
        and int(status.get("replicas", 0)) <= desired
    )


@dataclass(frozen=True)
class Applied:
    """One Deployment's record: when we wrote it and when its rollout completed."""

    name: str
    time_s: float
    state: str
    #: The Progressing condition's lastUpdateTime once NewReplicaSetAvailable (None: rolling).
    done_s: float | None


@dataclass(frozen=True)
class Poll:
    """One look at the operator's counters and (every --list-every s) at the Deployments."""

    at: float  # monotonic
    applied: dict[str, Applied]
    in_flight: int
    writes: float
    skips: dict[str, float]
    #: applied and in_flight come from a fresh list (else: copied from the last one).
    listed: bool = True


@dataclass
class ApplyBench(base.Bench):
    #: The FlowSchemas that split the operator's requests (a subclass may name others).
    flow_schemas: ClassVar[dict[str, tuple[list[str], list[str], list[str]]]] = OPERATOR_FLOWS
    deployment_lists: int = 0
    polls: list[Poll] = field(default_factory=list)

    # ------------------------------------------------------------------ setup
    def opt_in(self) -> None:
        core: Any = client.CoreV1Api(self.admin)
        core.patch_namespace(base.NAMESPACE,
                             {"metadata": {"labels": {AUTO_APPLY_LABEL: "enabled"}}})  # fmt: skip

    def create_policy(
        self, name: str = base.POLICY, bootstrap: dict[str, str] | None = None
    ) -> None:
        custom: Any = client.CustomObjectsApi(self.admin)
        b = base
        custom.create_namespaced_custom_object(b.GROUP, b.VERSION, b.NAMESPACE, b.PLURAL, {
            "apiVersion": f"{base.GROUP}/{base.VERSION}", "kind": "RightSizePolicy",
            "metadata": {"name": name, "namespace": base.NAMESPACE},
            "spec": {
                "targets": {"kinds": ["Deployment"]},
                "source": {
                    "prometheus": {"url": self.cfg.prometheus_url,
                                   "history": f"{self.args.days:g}d", "step": base.STEP},
                    "metricsServer": {"enabled": not self.args.no_metrics_server},
                },
                "update": self.update(),
                "reconcileInterval": f"{self.args.interval:g}s",
            },
        })  # fmt: skip

    def update(self) -> dict[str, Any]:
        """The policy's ``spec.update`` (a subclass may apply otherwise)."""
        return {"mode": "Apply", "maxConcurrentRollouts": self.args.max_rollouts,
                "cooldown": "24h"}  # fmt: skip

    def operator_flows(self) -> None:
        """FlowSchemas that split the operator's requests (see OPERATOR_FLOWS)."""
        flow: Any = client.FlowcontrolApiserverV1Api(self.admin)
        level = flow.read_flow_schema("service-accounts").spec.priority_level_configuration.name
        subject = {"kind": "ServiceAccount", "serviceAccount": {
            "name": base.SERVICE_ACCOUNT, "namespace": base.OPERATOR_NS}}  # fmt: skip
        for i, (name, (verbs, groups, resources)) in enumerate(self.flow_schemas.items()):
            rule: dict[str, Any] = {"subjects": [subject], "resourceRules": [{
                "verbs": verbs, "apiGroups": groups, "resources": resources,
                "clusterScope": True, "namespaces": ["*"]}]}  # fmt: skip
            if name == "rs-other":
                rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            flow.create_flow_schema({
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                "metadata": {"name": name},
                "spec": {"matchingPrecedence": 100 + i,
                         "priorityLevelConfiguration": {"name": level},
                         "distinguisherMethod": {"type": "ByUser"}, "rules": [rule]},
            })  # fmt: skip

    def sa_requests(self, samples: base.Samples) -> float:
        """The operator's requests: its own FlowSchemas (and service-accounts, in case)."""
        return sum(self.flows(samples).values())

    @classmethod
    def flows(cls, samples: base.Samples) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for (name, labels), value in samples.items():
            schema = dict(labels).get("flow_schema", "")
            if name == FLOW and (schema in cls.flow_schemas or schema == "service-accounts"):
                out[schema] += value
        return out

    # ------------------------------------------------------------------ watching
    def deployments(self) -> list[dict[str, Any]]:
        """Every Deployment of the namespace as JSON (no client models: 1,000 of them)."""
        self.deployment_lists += 1
        req = urllib.request.Request(self.cfg.apiserver_url + DEPLOYMENTS_PATH)
        with urllib.request.urlopen(req, context=self.ssl_admin, timeout=60) as resp:
            items: list[dict[str, Any]] = json.loads(resp.read())["items"]
        return items

    def poll(self, listing: bool) -> Poll:
        """The operator's counters; the Deployments' records and rollouts when ``listing``
        (a list of 1,000 Deployments costs the apiserver and this script CPU the operator
        would otherwise have: not on every poll)."""
        if not listing and self.polls:
            last = self.polls[-1]
            applied, in_flight = last.applied, last.in_flight
        else:
            applied, in_flight = self.list_applied()
        metrics = base.parse_metrics(
            self.operator_metrics(),
            ["rightsizer_workload_writes_total", "rightsizer_skips_total"],
        )  # fmt: skip
        skips: dict[str, float] = defaultdict(float)
        for (name, labels), value in metrics.items():
            if name == "rightsizer_skips_total":
                skips[dict(labels).get("reason", "")] += value
        writes = base.total(metrics, "rightsizer_workload_writes_total", kind="resources")
        poll = Poll(time.monotonic(), applied, in_flight, writes, dict(skips), listing)
        self.polls.append(poll)
        return poll

    def list_applied(self) -> tuple[dict[str, Applied], int]:
        """The Deployments' records, and how many of them are rolling out."""
        applied: dict[str, Applied] = {}
        in_flight = 0
        for d in self.deployments():
            raw = (d["metadata"].get("annotations") or {}).get(RECORD_ANNOTATION)
            if raw is None:
                continue
            record = json.loads(raw)
            record_s = float(record["time"])
            done_s = None
            if rolling(d):
                in_flight += 1
            else:
                for c in (d.get("status") or {}).get("conditions") or []:
                    if (
                        c.get("type") == "Progressing"
                        and c.get("reason") == "NewReplicaSetAvailable"
                    ):
                        done_s = max(seconds(str(c.get("lastUpdateTime", ""))), record_s)
            name = d["metadata"]["name"]
            applied[name] = Applied(name, record_s, str(record.get("state")), done_s)
        return applied, in_flight

    def held_reasons(self, applied: dict[str, Applied]) -> tuple[Counter[str], int, dict[str, str]]:
        """Reasons of the Deployments not applied, from their RightSizeRecommendations
        (one list request); the number of objects seen; one message per reason."""
        custom: Any = client.CustomObjectsApi(self.admin)
        items = custom.list_namespaced_custom_object(
            base.GROUP, base.VERSION, base.NAMESPACE, "rightsizerecommendations"
        )["items"]
        reasons: Counter[str] = Counter()
        examples: dict[str, str] = {}
        entries = [o.get("status") or {} for o in items]
        for e in entries:
            name = str(e.get("workload", "")).rpartition("/")[2]
            if name in applied:
                continue
            auto = e.get("autoApply") or {}
            reason = str(auto.get("reason") or "(no autoApply entry)")
            reasons[reason] += 1
            examples.setdefault(reason, str(auto.get("message", "")))
        return reasons, len(entries), examples

    # ------------------------------------------------------------------ breakdown
    def request_deltas(self, a: base.Snapshot, b: base.Snapshot) -> dict[str, float]:
        """apiserver_request_total increase by "VERB group/resource", dry-runs apart."""
        out: dict[str, float] = defaultdict(float)
        for (name, labels), value in b.apiserver.items():
            lab = dict(labels)
            if name != "apiserver_request_total" or not lab.get("resource"):
                continue
            if (lab.get("group", ""), lab["resource"]) not in base.OPERATOR_RESOURCES:
                continue
            key = (
                f"{lab.get('verb')} {lab.get('group') or 'core'}/{lab['resource']}"
                + (f"/{lab['subresource']}" if lab.get("subresource") else "")
                + (" (dry-run)" if lab.get("dry_run") else "")
            )
            out[key] += value - a.apiserver.get((name, labels), 0.0)
        return out

    def apply_breakdown(
        self, a: base.Snapshot, b: base.Snapshot, background_per_s: dict[str, float],
        own: Mapping[str, float],
    ) -> list[tuple[str, float]]:  # fmt: skip
        delta = self.request_deltas(a, b)
        for key, n in own.items():
            delta[key] -= n
        span = b.at - a.at
        net = {k: v - background_per_s.get(k, 0.0) * span for k, v in delta.items()}
        return sorted(((k, v) for k, v in net.items() if v >= 0.5), key=lambda kv: -kv[1])

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        args = self.args
        t_start = time.monotonic()
        log = base.log
        log(f"sandbox in {os.environ['RIGHTSIZER_SANDBOX_DIR']} (fresh data, ports 13xxx)")
        self.sandbox_up()
        kubeconfig = self.install()
        self.nodes(args.deployments)
        fleet = base.Fleet.make(args.deployments)
        log(f"history: {args.deployments} containers × {args.days:g} days at 1 minute …")
        self.load_history(fleet)
        log(f"creating {args.deployments} Deployments …")
        t0 = time.monotonic()
        self.create_deployments(fleet)
        self.opt_in()
        log(f"  {args.deployments} Deployments available in {time.monotonic() - t0:.0f}s; "
            f"namespace labelled {AUTO_APPLY_LABEL}=enabled")  # fmt: skip
        self.operator_flows()
        log("starting the operator (ServiceAccount token) …")
        self.start_operator(kubeconfig)
        ticks = os.sysconf("SC_CLK_TCK")

        s0 = self.scrape()
        time.sleep(args.baseline)
        s1 = self.scrape()
        background = {k: v / (s1.at - s0.at) for k, v in self.request_deltas(s0, s1).items()}
        idle_sa = self.sa_requests(s1.apiserver) - self.sa_requests(s0.apiserver)
        self.poll(True)  # nothing applied yet: the first poll's counters are the zero

        log(f"creating the policy (Apply, maxConcurrentRollouts={args.max_rollouts}) …")
        setup_s = time.monotonic() - t_start
        proc_start = self.operator_status()
        self.status_gets = 0
        lists_start = self.deployment_lists
        t_policy, wall_policy = time.monotonic(), time.time()
        self.create_policy()
        status_at: float | None = None
        s_status: base.Snapshot | None = None
        proc_status: dict[str, int] = {}
        lists_status = gets_status = 0
        settle_from = last_log = last_list = 0.0
        timed_out = False
        while True:
            time.sleep(args.poll)
            listing = time.monotonic() - last_list >= args.list_every
            last_list = time.monotonic() if listing else last_list
            self.poll(listing)
            p, previous = self.polls[-1], self.polls[-2]
            now = time.monotonic()
            if status_at is None and self.complete(args.deployments) is not None:
                status_at = now - t_policy
                s_status = self.scrape()
                proc_status = self.operator_status()
                lists_status, gets_status = self.deployment_lists, self.status_gets
                log(f"  complete status after {status_at:.1f}s ({len(p.applied)} applied)")
            # Settled: no write, no RolloutLimit/RolloutInProgress hold, nothing rolling.
            if (
                p.writes != previous.writes
                or (p.listed and p.in_flight)
                or any(p.skips.get(r, 0.0) != previous.skips.get(r, 0.0) for r in WAITING)
            ):
                settle_from = now
            if now - last_log >= args.progress:
                last_log = now
                self.progress(p, now - t_policy)
            if status_at is not None and now - settle_from >= args.settle:
                last_list = time.monotonic()
                final = self.poll(True)
                if final.in_flight == 0 and final.writes == p.writes:
                    break
                settle_from = final.at
            if now - t_policy > args.apply_timeout:
                timed_out = True
                log(f"  --apply-timeout {args.apply_timeout:.0f}s reached: stopping early")
                break
        end = self.polls[-1] if self.polls[-1].listed else self.poll(True)
        s_end = self.scrape()
        proc_end = self.operator_status()
        gets_end, lists_end = self.status_gets, self.deployment_lists
        if s_status is None:
            raise SystemExit("bench: no complete status before the timeout")
        assert status_at is not None

        # ------------------------------------------------------------ figures
        records = sorted(end.applied.values(), key=lambda r: r.time_s)
        n = len(records)
        reverted = sum(1 for r in records if r.state != "Applied")
        first_s = records[0].time_s - wall_policy if records else float("nan")
        last_s = records[-1].time_s - wall_policy if records else float("nan")
        span_s = (records[-1].time_s - records[0].time_s) if n > 1 else float("nan")
        per_min = 60 * (n - 1) / span_s if n > 1 and span_s > 0 else float("nan")
        done = [r for r in records if r.done_s is not None]
        last_done_s = max((r.done_s or 0.0) for r in done) - wall_policy if done else float("nan")
        durations = [(r.done_s or 0.0) - r.time_s for r in done]
        mean_rollout = sum(durations) / len(durations) if durations else float("nan")
        # In flight: time average of the polls between the first and the last apply.
        window = [q for q in self.polls
                  if q.listed and t_policy + first_s <= q.at <= t_policy + last_s]  # fmt: skip
        mean_polled = sum(q.in_flight for q in window) / len(window) if window else float("nan")
        little = per_min / 60 * mean_rollout if durations else float("nan")
        held, seen, examples = self.held_reasons(end.applied)
        # Per pass of the operator: Cooldown counts every applied workload once a pass.
        start_poll = next(q for q in self.polls if q.at >= t_policy)
        d_skips = {r: end.skips.get(r, 0.0) - start_poll.skips.get(r, 0.0)
                   for r in set(end.skips) | set(start_poll.skips)}  # fmt: skip

        writes_apply = end.writes - self.poll_at(s_status.at).writes
        sa_total = self.sa_requests(s_end.apiserver) - self.sa_requests(s1.apiserver)
        sa_first = self.sa_requests(s_status.apiserver) - self.sa_requests(s1.apiserver)
        sa_apply = self.sa_requests(s_end.apiserver) - self.sa_requests(s_status.apiserver)
        apply_s = s_end.at - s_status.at
        idle_rate = idle_sa / (s1.at - s0.at)
        reconciles = s_end.reconciles - s_status.reconciles
        prom = base.queries(s_end) - base.queries(s_status)
        remaining = args.deployments - n - sum(v for k, v in held.items() if k not in WAITING)

        print(f"\nrightsizer auto-apply at scale: {args.deployments} opted-in Deployments (1 pod, "
              f"1 container each) on kwok nodes, {args.days:g} days of 1-minute history, "
              f"update.mode Apply, maxConcurrentRollouts {args.max_rollouts}, cooldown 24h, "
              f"minChangePercent 10 (default), reconcileInterval {args.interval:g}s, tick 2 s; "
              f"{os.cpu_count()} CPUs; setup {setup_s:.0f}s"
              + (f"; STOPPED at --apply-timeout {args.apply_timeout:.0f}s" if timed_out
                 else ""))  # fmt: skip
        rows = [
            ("policy created → complete status", f"{status_at:.1f} s"),
            ("policy created → first apply", f"{first_s:.1f} s"),
            ("policy created → last apply" + (" so far" if timed_out else ""),
             f"{last_s:.1f} s ({last_s / 60:.1f} min)"),
            ("policy created → last rollout complete", f"{last_done_s:.1f} s"),
            ("applied Deployments (last-applied annotation)",
             f"{n} of {args.deployments}" + (f" ({reverted} reverted)" if reverted else "")),
            ("held (not applied), from the RightSizeRecommendations' autoApply",
             ", ".join(f"{k} {v}" for k, v in held.most_common()) or "none"),
            ("  recommendation objects seen", f"{seen} of {args.deployments}"),
            ("applies per minute (first → last apply)", f"{per_min:.1f}"),
            ("rollout duration (write → NewReplicaSetAvailable), mean",
             f"{mean_rollout:.1f} s over {len(durations)}"),
            ("rollouts in flight, mean (polls / Little's law)",
             f"{mean_polled:.2f} / {little:.2f} (limit {args.max_rollouts})"),
            ("operator writes (rightsizer_workload_writes_total, apply phase)",
             f"{writes_apply:.0f}"),
            ("API requests (operator SA), policy → end", f"{sa_total:.0f}"),
            ("  first reconcile (policy → complete status)", f"{sa_first:.0f}"),
            ("  apply phase (complete status → end)", f"{sa_apply:.0f} in {apply_s:.0f} s "
             f"(idle rate {idle_rate:.2f}/s ≈ {idle_rate * apply_s:.0f})"),
            ("  per apply (apply phase / writes)", f"{sa_apply / max(writes_apply, 1):.1f}"),
            ("  per apply, idle rate subtracted",
             f"{(sa_apply - idle_rate * apply_s) / max(writes_apply, 1):.1f}"),
            ("reconciles / Prometheus queries in the apply phase",
             f"{reconciles:.0f} / {prom:.0f}"),
            ("operator peak RSS (VmHWM)", f"{proc_end['VmHWM'] / 1024:.0f} MiB"),
            ("operator RSS at policy / at status / end",
             f"{proc_start['VmRSS'] / 1024:.0f} / {proc_status['VmRSS'] / 1024:.0f} / "
             f"{proc_end['VmRSS'] / 1024:.0f} MiB"),
            ("operator CPU s: first reconcile / apply phase / total",
             f"{(proc_status['cpu_ticks'] - proc_start['cpu_ticks']) / ticks:.1f} / "
             f"{(proc_end['cpu_ticks'] - proc_status['cpu_ticks']) / ticks:.1f} / "
             f"{proc_end['cpu_ticks'] / ticks:.1f}"),
            ("failed scrapes of the operator's /metrics", str(len(self.scrape_errors))),
        ]  # fmt: skip
        if timed_out and per_min > 0:
            eta = last_s + 60 * remaining / per_min
            rows.insert(3, ("  projected: all eligible applied at the measured rate",
                            f"≈ {eta:.0f} s ({eta / 60:.1f} min), {remaining} left"))  # fmt: skip
        width = max(len(k) for k, _ in rows)
        print()
        for k, v in rows:
            print(f"{k.ljust(width)}  {v}")
        for reason, message in sorted(examples.items()):
            print(f"  e.g. {reason}: {message[:160]}")
        skips = ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(d_skips.items(), key=lambda kv: -kv[1]) if v
        )
        print(f"\nrightsizer_skips_total by reason since the policy (held workloads × passes): "
              f"{skips or 'none'}")  # fmt: skip
        own_apply = {f"GET {base.GROUP}/{base.PLURAL}": gets_end - gets_status,
                     "LIST apps/deployments": lists_end - lists_status}  # fmt: skip
        own_first = {f"GET {base.GROUP}/{base.PLURAL}": gets_status,
                     "LIST apps/deployments": lists_status - lists_start,
                     f"POST {base.GROUP}/{base.PLURAL}": 1}  # fmt: skip
        for title, a, b, per in (
            ("first reconcile (policy → complete status)", s1, s_status, 0.0),
            ("apply phase (complete status → end)", s_status, s_end, writes_apply),
        ):
            fa, fb = self.flows(a.apiserver), self.flows(b.apiserver)
            split = sorted(((k, fb[k] - fa.get(k, 0.0)) for k in fb), key=lambda kv: -kv[1])
            print(f"\nAPI requests of the operator (exact, by FlowSchema), {title}"
                  + (f"; and per apply ({per:.0f}):" if per else ":"))  # fmt: skip
            for key, value in split:
                if value:
                    print(f"  {value:8.0f}" + (f"  {value / per:6.2f}" if per else "")
                          + f"  {key}: {describe(key)}")  # fmt: skip
        for title, a, b, own, per in (
            ("first reconcile (policy → complete status)", s1, s_status, own_first, 0.0),
            ("apply phase (complete status → end)", s_status, s_end, own_apply, writes_apply),
        ):
            parts = self.apply_breakdown(a, b, background, own)
            print(f"\nAPI requests by verb/resource, {title} (all clients, background and this "
                  f"script's reads subtracted; approximate)" + (":" if not per else
                  f"; and per apply ({per:.0f}):"))  # fmt: skip
            for key, value in parts[:14]:
                print(f"  {value:8.0f}" + (f"  {value / per:6.2f}" if per else "") + f"  {key}")
        sys.stdout.flush()

    def poll_at(self, at: float) -> Poll:
        """The last poll at or before ``at`` (monotonic)."""
        return [p for p in self.polls if p.at <= at][-1]

    def progress(self, p: Poll, elapsed: float) -> None:
        back = [q for q in self.polls if q.at >= p.at - 60]
        rate = 60 * (p.writes - back[0].writes) / max(p.at - back[0].at, 1e-9)
        left = self.args.deployments - p.writes
        eta = f", ≤ {left / rate:.1f} min left at this rate" if rate > 0 and left else ""
        waiting = {r: p.skips.get(r, 0.0) for r in WAITING}
        base.log(f"  {elapsed:6.0f}s  writes {p.writes:5.0f}/{self.args.deployments}  "
                 f"{rate:6.1f}/min (last 60 s)  annotated {len(p.applied)} (last list), in "
                 f"flight {p.in_flight}  skips "
                 + ", ".join(f"{k} {v:.0f}" for k, v in waiting.items()) + eta)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0, help="days of history (default 7)")
    parser.add_argument("--max-rollouts", type=int, default=2,
                        help="the policy's update.maxConcurrentRollouts (default 2)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=20.0,
                        help="the policy's reconcileInterval, seconds (default 20)")  # fmt: skip
    parser.add_argument("--poll", type=float, default=2.0,
                        help="seconds between the operator's /metrics (default 2)")  # fmt: skip
    parser.add_argument("--list-every", type=float, default=10.0,
                        help="seconds between lists of the Deployments (default 10)")  # fmt: skip
    parser.add_argument("--progress", type=float, default=15.0,
                        help="seconds between progress lines (default 15)")  # fmt: skip
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds without a new apply, a rollout or a RolloutLimit hold "
                             "that end the run (default 30)")  # fmt: skip
    parser.add_argument("--apply-timeout", type=float, default=3600.0,
                        help="seconds after the policy's creation to stop and project "
                             "(default 3600)")  # fmt: skip
    parser.add_argument("--baseline", type=float, default=20.0,
                        help="seconds of background traffic to measure (default 20)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for a complete status (default 900)")  # fmt: skip
    parser.add_argument("--no-metrics-server", action="store_true",
                        help="no metrics-server (the policy reads Prometheus only)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()
    args.profile = None  # the base's py-spy option: not offered here
    # Own state and ports, whatever the environment says: never the base benchmark's.
    base.run_in_sandbox(ApplyBench, args, STATE_DIR, PORTS, own=True)


if __name__ == "__main__":
    main()
