"""In-place resize at scale (issue 15 item 7): opted-in Deployments × 2 pods, one
RightSizePolicy in Apply mode with ``update.method: InPlace``; then the admission webhook
under a steady stream of pod creations.

The sandbox, fleet and history of ``bench_auto_apply.py`` (whose ``ApplyBench`` this
extends), in its own state directory (``/tmp/rightsizer-bench-inplace``) and on its own
ports (the base's + 3000: 15xxx). What is real and what is emulated: the kube-apiserver
(v1.36) serves ``pods/resize`` and calls the webhook over TLS at 127.0.0.1; the kubelet's
side of a resize (copying the spec's resources into ``status.containerStatuses[].resources``)
is the project's kwok stages (tests/sandbox/kwok/pod-resize.yaml).

Phase 1, in place. Each Deployment runs 2 pods (250m / 256Mi requests, 512Mi memory
limit: Burstable). The operator runs with its webhook (the manifests'
MutatingWebhookConfiguration ``rightsizer``, its clientConfig pointed at
``https://127.0.0.1:<--webhook-port>/size-pods``). From the policy's creation:

* time to a complete status, to the first and the last pod resized. A pod is resized when
  every value of its Deployment's ``rightsizer.dev/pod-resources`` annotation equals the
  same value in the pod's ``status.containerStatuses[].resources`` (what the kubelet
  reports in force); the pods are listed every ``--poll`` s, so times are to that grain.
  The run is over when every pod of every annotated Deployment is resized and neither
  count has moved for ``--settle`` s;
* API requests of the operator's ServiceAccount, exact and by verb: one temporary
  FlowSchema per (verb, resource) it uses, matching only that ServiceAccount; per resized
  pod (this script's own requests use the admin certificate and are not counted);
* no ReplicaSet created, pod UIDs unchanged (counts), the operator's peak RSS (VmHWM).

Phase 2, admission. ``--rate`` scale-ups per second (each +1 replica of an annotated
Deployment, round robin) for ``--seconds`` s: the ReplicaSet controller creates the pods,
the API server calls the webhook. From the API server's
``apiserver_admission_webhook_admission_duration_seconds`` (the difference across the
phase): count, mean, p50/p99 (interpolated within the histogram's buckets, as
``histogram_quantile`` does), the fail-open count; the pods' actual creation rate; the
share of new pods created with the annotation's values.

    python bench/bench_inplace.py [--deployments 1000] [--days 7]
                                  [--max-per-namespace 10] [--rate 50] [--seconds 30]
                                  [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks it builds on

from kubernetes import client

import bench_auto_apply as apply_bench
import bench_operator_scale as base
from rightsizer.names import ADMISSION_ANNOTATION, POD_RESOURCES_ANNOTATION
from rightsizer.quantity import parse_quantity

STATE_DIR = "/tmp/rightsizer-bench-inplace"
#: The base benchmark's ports + 3000 (12xxx → 15xxx): no other benchmark's.
PORTS = {var: port + 3000 for var, port in base.PORTS.items()}
WEBHOOK_PORT = 15446
WEBHOOK_CONFIGURATION = "rightsizer"
REPLICAS = 2
PODS_PATH = f"/api/v1/namespaces/{base.NAMESPACE}/pods"
DURATION = "apiserver_admission_webhook_admission_duration_seconds"
FAIL_OPEN = "apiserver_admission_webhook_fail_open_count"
WEBHOOK_NAME = "pods.rightsizer.dev"
APPS = ["deployments", "statefulsets", "daemonsets"]
#: One FlowSchema per (verbs, API groups, resources) the operator uses, matching only its
#: ServiceAccount; first match wins, the catch-all last (discovery, anything unforeseen).
FLOWS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "rs-pods-resize": (["patch", "update"], [""], ["pods/resize"]),
    "rs-pods-get": (["get"], [""], ["pods"]),
    "rs-pods-list": (["list"], [""], ["pods"]),
    "rs-pods-watch": (["watch"], [""], ["pods"]),
    "rs-pods-other": (["*"], [""], ["pods", "pods/status"]),
    "rs-workloads-patch": (["patch", "update"], ["apps"], APPS),
    "rs-workloads-get": (["get"], ["apps"], APPS),
    "rs-workloads-list": (["list"], ["apps"], [*APPS, "replicasets"]),
    "rs-workloads-watch": (["watch"], ["apps"], [*APPS, "replicasets"]),
    "rs-events-create": (["create"], ["", "events.k8s.io"], ["events"]),
    "rs-events-patch": (["patch", "update"], ["", "events.k8s.io"], ["events"]),
    "rs-policy-status": (["*"], [base.GROUP], [f"{base.PLURAL}/status"]),
    "rs-policies": (["*"], [base.GROUP], [base.PLURAL]),
    "rs-recommendations-write": (["create", "patch", "update"], [base.GROUP],
                                 ["rightsizerecommendations",
                                  "rightsizerecommendations/status"]),
    "rs-recommendations-read": (["*"], [base.GROUP], ["rightsizerecommendations",
                                                      "rightsizerecommendations/status"]),
    "rs-configmaps": (["*"], [""], ["configmaps"]),
    "rs-other": (["*"], ["*"], ["*"]),
}  # fmt: skip


def quantity(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value)
    except Exception:  # a malformed value is simply "not equal"
        return None


def matches(wanted: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Every value of ``wanted`` ({requests: {cpu: …}, limits: {…}}) equals ``actual``'s."""
    for kind, values in wanted.items():
        have = actual.get(kind) or {}
        for resource, value in (values or {}).items():
            if resource not in have or quantity(have[resource]) != quantity(value):
                return False
    return True


def histogram(samples: base.Samples) -> tuple[dict[float, float], float, float]:
    """The webhook's admission duration: cumulative buckets {le: count}, count, sum."""
    buckets: dict[float, float] = defaultdict(float)
    count = total = 0.0
    for (name, labels), value in samples.items():
        lab = dict(labels)
        if lab.get("name") != WEBHOOK_NAME:
            continue
        if name == DURATION + "_bucket":
            buckets[float(lab["le"])] += value
        elif name == DURATION + "_count":
            count += value
        elif name == DURATION + "_sum":
            total += value
    return dict(buckets), count, total


def quantile(q: float, buckets: dict[float, float]) -> float:
    """histogram_quantile: linear within the bucket that holds the q-th observation."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower
            inside = buckets[le] - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = le, buckets[le]
    return lower


@dataclass(frozen=True)
class Look:
    """One list of the pods and Deployments."""

    at: float  # monotonic
    annotated: int
    pods_of_annotated: int
    resized: int
    pods: int


class InPlaceBench(apply_bench.ApplyBench):
    flow_schemas = FLOWS
    looks: list[Look]

    # ------------------------------------------------------------------ setup
    def nodes(self, deployments: int) -> None:
        extra = self.args.rate * self.args.seconds
        super().nodes(math.ceil(deployments * REPLICAS + extra * 1.1))

    def create_deployments(self, fleet: base.Fleet) -> None:
        core: Any = client.CoreV1Api(self.admin)
        apps: Any = client.AppsV1Api(self.admin)
        core.create_namespace({"metadata": {"name": base.NAMESPACE}})

        def body(i: int) -> dict[str, Any]:
            d = fleet.deployment(i)
            d["spec"]["replicas"] = REPLICAS
            [container] = d["spec"]["template"]["spec"]["containers"]
            container["resizePolicy"] = [
                {"resourceName": "cpu", "restartPolicy": "NotRequired"},
                {"resourceName": "memory", "restartPolicy": "NotRequired"},
            ]
            return d

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: apps.create_namespaced_deployment(base.NAMESPACE, body(i)),
                          range(len(fleet.names))))  # fmt: skip

        def available() -> bool:
            items = self.deployments()
            ready = sum(
                1
                for d in items
                if int((d.get("status") or {}).get("availableReplicas", 0)) >= REPLICAS
            )
            return ready >= len(fleet.names)  # fmt: skip

        base.wait_for("all Deployments available", available, 3600, interval=5)

    def webhook_configuration(self) -> None:
        """The manifests' configuration calls the operator's Service; the sandbox has no
        Service routing: call the operator at 127.0.0.1 (the operator fills in caBundle)."""
        admission: Any = client.AdmissionregistrationV1Api(self.admin)
        admission.patch_mutating_webhook_configuration(WEBHOOK_CONFIGURATION, [{
            "op": "replace", "path": "/webhooks/0/clientConfig",
            "value": {"url": f"https://127.0.0.1:{self.args.webhook_port}/size-pods"},
        }])  # fmt: skip

    def start_operator(
        self, kubeconfig: Path, env: dict[str, str] | None = None, start_timeout_s: float = 180
    ) -> None:
        webhook = {"RIGHTSIZER_WEBHOOK_PORT": str(self.args.webhook_port),
                   "RIGHTSIZER_WEBHOOK_CONFIGURATION": WEBHOOK_CONFIGURATION}  # fmt: skip
        super().start_operator(kubeconfig, {**webhook, **(env or {})}, start_timeout_s)
        admission: Any = client.AdmissionregistrationV1Api(self.admin)
        base.wait_for(
            "the operator to fill in the webhook's caBundle",
            lambda: admission.read_mutating_webhook_configuration(
                WEBHOOK_CONFIGURATION).webhooks[0].client_config.ca_bundle,
            120,
        )  # fmt: skip

    def update(self) -> dict[str, Any]:
        return {"mode": "Apply", "method": "InPlace", "cooldown": "24h",
                "inPlace": {"maxPodsPerNamespace": self.args.max_per_namespace}}  # fmt: skip

    # ------------------------------------------------------------------ watching
    def get_json(self, path: str) -> dict[str, Any]:
        req = urllib.request.Request(self.cfg.apiserver_url + path)
        with urllib.request.urlopen(req, context=self.ssl_admin, timeout=120) as resp:
            out: dict[str, Any] = json.loads(resp.read())
        return out

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get_json(PODS_PATH)["items"]
        return items

    def wanted(self) -> dict[str, dict[str, Any]]:
        """Deployment name → its pod-resources annotation's containers."""
        out: dict[str, dict[str, Any]] = {}
        for d in self.deployments():
            raw = (d["metadata"].get("annotations") or {}).get(POD_RESOURCES_ANNOTATION)
            if raw:
                out[d["metadata"]["name"]] = json.loads(raw).get("containers") or {}
        return out

    @staticmethod
    def deployment_of(pod: dict[str, Any]) -> str:
        """The pod's Deployment (its ReplicaSet's name less the template hash)."""
        refs = pod["metadata"].get("ownerReferences") or [{}]
        return str(refs[0].get("name", "")).rsplit("-", 1)[0]

    @staticmethod
    def in_force(pod: dict[str, Any], containers: dict[str, Any]) -> bool:
        statuses = {c["name"]: c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        return all(
            name in statuses and matches(values, statuses[name].get("resources") or {})
            for name, values in containers.items()
        )

    def look(self) -> Look:
        wanted = self.wanted()
        pods = self.pods()
        mine = [p for p in pods if self.deployment_of(p) in wanted]
        resized = sum(1 for p in mine if self.in_force(p, wanted[self.deployment_of(p)]))
        look = Look(time.monotonic(), len(wanted), len(mine), resized, len(pods))
        self.looks.append(look)
        return look

    def replicasets(self) -> int:
        return len(self.get_json(f"/apis/apps/v1/namespaces/{base.NAMESPACE}/replicasets")["items"])

    def scrape_admission(self) -> base.Samples:
        req = urllib.request.Request(self.cfg.apiserver_url + "/metrics")
        with urllib.request.urlopen(req, context=self.ssl_admin, timeout=30) as resp:
            text = resp.read().decode()
        return base.parse_metrics(text, [DURATION + "_bucket", DURATION + "_count",
                                         DURATION + "_sum", FAIL_OPEN])  # fmt: skip

    # ------------------------------------------------------------------ phase 1
    def run(self) -> None:
        self.looks = []
        args = self.args
        log = base.log
        t_start = time.monotonic()
        log(f"sandbox in {os.environ['RIGHTSIZER_SANDBOX_DIR']} (fresh data, ports 15xxx)")
        self.sandbox_up()
        kubeconfig = self.install()
        self.webhook_configuration()
        self.nodes(args.deployments)
        fleet = base.Fleet.make(args.deployments)
        log(f"history: {args.deployments} containers × {args.days:g} days at 1 minute …")
        self.load_history(fleet)
        log(f"creating {args.deployments} Deployments × {REPLICAS} pods …")
        t0 = time.monotonic()
        self.create_deployments(fleet)
        self.opt_in()
        log(f"  available in {time.monotonic() - t0:.0f}s; namespace opted in")
        self.operator_flows()
        log("starting the operator with its webhook (ServiceAccount token) …")
        self.start_operator(kubeconfig)
        uids = {p["metadata"]["uid"] for p in self.pods()}
        sets_before = self.replicasets()
        s0 = self.scrape()
        time.sleep(args.baseline)
        s1 = self.scrape()
        idle_sa = self.sa_requests(s1.apiserver) - self.sa_requests(s0.apiserver)
        idle_rate = idle_sa / (s1.at - s0.at)

        log(f"creating the policy (Apply, InPlace, maxPodsPerNamespace "
            f"{args.max_per_namespace}) …")  # fmt: skip
        setup_s = time.monotonic() - t_start
        proc_start = self.operator_status()
        t_policy = time.monotonic()
        self.create_policy()
        status_at: float | None = None
        s_status: base.Snapshot | None = None
        settle_from = last_log = 0.0
        timed_out = False
        while True:
            time.sleep(args.poll)
            look = self.look()
            now = time.monotonic()
            previous = self.looks[-2] if len(self.looks) > 1 else None
            if status_at is None and self.complete(args.deployments) is not None:
                status_at, s_status = now - t_policy, self.scrape()
                log(f"  complete status after {status_at:.1f}s")
            if (
                previous is None
                or (look.annotated, look.resized) != (previous.annotated, previous.resized)
                or look.resized < look.pods_of_annotated
            ):
                settle_from = now
            if now - last_log >= args.progress:
                last_log = now
                log(f"  {now - t_policy:6.0f}s  annotated {look.annotated}/{args.deployments}"
                    f"  pods resized {look.resized}/{look.pods_of_annotated}"
                    f"  (pods {look.pods})")  # fmt: skip
            if status_at is not None and look.annotated and now - settle_from >= args.settle:
                break
            if now - t_policy > args.apply_timeout:
                timed_out = True
                log(f"  --apply-timeout {args.apply_timeout:.0f}s reached: stopping early")
                break
        s_end = self.scrape()
        proc_end = self.operator_status()
        if s_status is None:
            raise SystemExit("bench: no complete status before the timeout")
        assert status_at is not None
        final = self.looks[-1]
        done_at = next(q.at for q in self.looks if q.resized == final.resized) - t_policy
        first_at = next((q.at for q in self.looks if q.resized), math.nan) - t_policy
        pods_end = self.pods()
        kept = sum(1 for p in pods_end if p["metadata"]["uid"] in uids)
        sets_after = self.replicasets()
        restarts = sum(int(c.get("restartCount", 0)) for p in pods_end
                       for c in (p.get("status") or {}).get("containerStatuses") or [])  # fmt: skip
        held, _seen, _examples = self.held_reasons(dict.fromkeys(self.wanted()))  # type: ignore[arg-type]
        writes = base.total(base.parse_metrics(self.operator_metrics(),
                                               ["rightsizer_workload_writes_total"]),
                            "rightsizer_workload_writes_total")  # fmt: skip
        ticks = os.sysconf("SC_CLK_TCK")
        per = max(final.resized, 1)
        fa, fb = self.flows(s1.apiserver), self.flows(s_end.apiserver)
        split = sorted(((k, fb[k] - fa.get(k, 0.0)) for k in fb), key=lambda kv: -kv[1])
        sa_total = sum(v for _, v in split)
        span = s_end.at - s1.at

        print(f"\nrightsizer in-place resize at scale: {args.deployments} opted-in Deployments "
              f"× {REPLICAS} pods (1 container) on kwok nodes, {args.days:g} days of 1-minute "
              f"history, Apply / InPlace, maxPodsPerWorkload 1 (default), maxPodsPerNamespace "
              f"{args.max_per_namespace}, reconcileInterval {args.interval:g}s, tick 2 s; "
              f"{os.cpu_count()} CPUs, load average at the end "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; setup {setup_s:.0f}s"
              + (f"; STOPPED at --apply-timeout {args.apply_timeout:.0f}s" if timed_out
                 else ""))  # fmt: skip
        rows = [
            ("policy created → complete status", f"{status_at:.1f} s"),
            ("policy created → first pod resized (±poll)", f"{first_at:.1f} s"),
            ("policy created → " + ("last pod resized so far" if timed_out
                                    else "every pod resized") + " (±poll)",
             f"{done_at:.1f} s ({done_at / 60:.1f} min)"),
            ("Deployments with pod-resources / held",
             f"{final.annotated} / " + (", ".join(f"{k} {v}" for k, v in held.most_common())
                                        or "none")),
            ("pods resized in place (status = annotation)",
             f"{final.resized} of {final.pods_of_annotated} (of {final.pods} pods)"),
            ("resizes per minute (first → last)",
             f"{60 * final.resized / max(done_at - first_at, 1e-9):.1f}"),
            ("pod UIDs unchanged", f"{kept} of {len(uids)} ({len(pods_end)} pods now)"),
            ("ReplicaSets before → after", f"{sets_before} → {sets_after}"),
            ("container restarts (kwok)", str(restarts)),
            ("operator workload writes (rightsizer_workload_writes_total)", f"{writes:.0f}"),
            ("API requests (operator SA), policy → end",
             f"{sa_total:.0f} in {span:.0f} s (idle rate {idle_rate:.2f}/s ≈ "
             f"{idle_rate * span:.0f})"),
            ("  per resized pod", f"{sa_total / per:.2f} "
             f"({(sa_total - idle_rate * span) / per:.2f} idle rate subtracted)"),
            ("operator peak RSS (VmHWM)", f"{proc_end['VmHWM'] / 1024:.0f} MiB"),
            ("operator RSS at policy / end",
             f"{proc_start['VmRSS'] / 1024:.0f} / {proc_end['VmRSS'] / 1024:.0f} MiB"),
            ("operator CPU s, policy → end",
             f"{(proc_end['cpu_ticks'] - proc_start['cpu_ticks']) / ticks:.1f}"),
        ]  # fmt: skip
        width = max(len(k) for k, _ in rows)
        print()
        for k, v in rows:
            print(f"{k.ljust(width)}  {v}")
        print(f"\nAPI requests of the operator (exact, by FlowSchema), policy → end; and per "
              f"resized pod ({final.resized}):")  # fmt: skip
        for key, value in split:
            if value:
                verbs, groups, resources = FLOWS.get(key, (["?"], ["?"], ["?"]))
                print(
                    f"  {value:8.0f}  {value / per:7.3f}  {key}: {'/'.join(verbs)} "
                    f"{','.join(g or 'core' for g in groups)}/{','.join(resources)}"
                )
        sys.stdout.flush()
        if args.seconds > 0:
            self.admission_phase(uids | {p["metadata"]["uid"] for p in pods_end})

    # ------------------------------------------------------------------ phase 2
    def admission_phase(self, known: set[str]) -> None:
        args = self.args
        log = base.log
        wanted = self.wanted()
        names = sorted(wanted)
        if not names:
            print("\nadmission: no Deployment carries pod-resources; skipped")
            return
        apps: Any = client.AppsV1Api(self.admin)
        replicas = {d["metadata"]["name"]: int(d["spec"]["replicas"]) for d in self.deployments()}
        n = int(args.rate * args.seconds)
        plan = [names[i % len(names)] for i in range(n)]
        lock = threading.Lock()
        errors: list[str] = []

        def scale(name: str) -> None:
            with lock:
                replicas[name] += 1
                want = replicas[name]
            try:
                apps.patch_namespaced_deployment_scale(name, base.NAMESPACE,
                                                       {"spec": {"replicas": want}})  # fmt: skip
            except Exception as exc:  # counted and reported
                errors.append(repr(exc))

        before = self.scrape_admission()
        fl0 = self.flows(self.scrape_apiserver())
        log(f"admission: {n} scale-ups at {args.rate:g}/s for {args.seconds:g} s …")
        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            for i, name in enumerate(plan):
                delay = t0 + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(scale, name)
        sent_s = time.monotonic() - t0
        expected = len(known) + n

        def created() -> list[dict[str, Any]] | None:
            pods = self.pods()
            return pods if len(pods) >= expected else None

        pods = base.wait_for(f"{expected} pods", created, 900, interval=3)
        time.sleep(5)  # the last admissions are in the histogram
        after = self.scrape_admission()
        fl1 = self.flows(self.scrape_apiserver())
        b0, c0, sum0 = histogram(before)
        b1, c1, sum1 = histogram(after)
        buckets = {le: b1.get(le, 0.0) - b0.get(le, 0.0) for le in b1}
        count, total_s = c1 - c0, sum1 - sum0
        fail_open = base.total(after, FAIL_OPEN) - base.total(before, FAIL_OPEN)
        new = [p for p in pods if p["metadata"]["uid"] not in known]
        stamps = sorted(apply_bench.seconds(p["metadata"]["creationTimestamp"]) for p in new)
        spread = stamps[-1] - stamps[0] + 1 if stamps else math.nan
        # Values in the spec / and the webhook's note says it set them (not "skipped: …"):
        # the in-place loop may have resized a pod the webhook left alone meanwhile.
        sized = marked = 0
        for p in new:
            containers = wanted.get(self.deployment_of(p), {})
            spec = {c["name"]: c.get("resources") or {} for c in p["spec"]["containers"]}
            if containers and all(k in spec and matches(v, spec[k]) for k, v in containers.items()):
                sized += 1
                note = (p["metadata"].get("annotations") or {}).get(ADMISSION_ANNOTATION, "")
                if note and not note.startswith("skipped"):
                    marked += 1
        operator_requests = sum(fl1.values()) - sum(fl0.values())
        print(
            f"\nadmission webhook at {args.rate:g} scale-ups/s for {args.seconds:g} s "
            f"({n} pods; webhook at https://127.0.0.1:{args.webhook_port}, failurePolicy "
            f"Ignore, timeout 2 s); load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        rows = [
            ("scale requests sent in", f"{sent_s:.1f} s ({len(errors)} failed)"),
            ("new pods / created over (creationTimestamp, whole s)",
             f"{len(new)} / {spread:.0f} s ≈ {len(new) / spread:.1f} pods/s"),
            ("webhook calls (apiserver histogram count)", f"{count:.0f}"),
            ("admission latency mean (sum / count)", f"{1000 * total_s / max(count, 1):.1f} ms"),
            ("admission latency p50 / p99 (bucket-interpolated)",
             f"{1000 * quantile(0.5, buckets):.1f} / {1000 * quantile(0.99, buckets):.1f} ms"),
            ("buckets (le: calls)", ", ".join(f"{le:g}: {v:.0f}" for le, v in
                                             sorted(buckets.items()) if not math.isinf(le))),
            ("fail-open (failurePolicy Ignore) calls", f"{fail_open:.0f}"),
            ("new pods with the values / of which sized by the webhook",
             f"{sized} / {marked} of {len(new)} ({100 * sized / max(len(new), 1):.1f} %)"),
            ("operator API requests during the phase", f"{operator_requests:.0f}"),
        ]  # fmt: skip
        width = max(len(k) for k, _ in rows)
        print()
        for k, v in rows:
            print(f"{k.ljust(width)}  {v}")
        if errors:
            print(f"  e.g. {errors[0][:200]}")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0, help="days of history (default 7)")
    parser.add_argument(
        "--max-per-namespace",
        type=int,
        default=10,
        help="the policy's update.inPlace.maxPodsPerNamespace (default 10)",
    )
    parser.add_argument("--interval", type=float, default=20.0,
                        help="the policy's reconcileInterval, seconds (default 20)")  # fmt: skip
    parser.add_argument("--poll", type=float, default=3.0,
                        help="seconds between lists of the pods (default 3)")  # fmt: skip
    parser.add_argument("--progress", type=float, default=15.0,
                        help="seconds between progress lines (default 15)")  # fmt: skip
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds without a new annotation or resize that end phase 1 "
                             "(default 30)")  # fmt: skip
    parser.add_argument(
        "--apply-timeout",
        type=float,
        default=3600.0,
        help="seconds after the policy's creation to stop (default 3600)",
    )
    parser.add_argument(
        "--baseline",
        type=float,
        default=15.0,
        help="seconds of idle operator traffic to measure (default 15)",
    )
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for a complete status (default 900)")  # fmt: skip
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="phase 2: scale-ups (pod creations) per second (default 50)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="phase 2: how long, seconds (default 30; 0: no phase 2)",
    )
    parser.add_argument("--webhook-port", type=int, default=WEBHOOK_PORT)
    parser.add_argument("--no-metrics-server", action="store_true",
                        help="no metrics-server (the policy reads Prometheus only)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()
    args.profile = None
    args.list_every = args.poll
    base.run_in_sandbox(InPlaceBench, args, STATE_DIR, PORTS, own=True)


if __name__ == "__main__":
    main()
