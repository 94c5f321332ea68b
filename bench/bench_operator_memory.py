"""What the operator keeps per container, without a cluster (issue 14 item 7, memory).

Runs the operator's reconcile path offline: N containers (one per Deployment, ``--per-policy``
per namespace, one policy per namespace), a fake Prometheus in a child process that answers
the history's range queries with synthetic usage (1-minute steps, the JSON Prometheus
writes), the real ``reconcile`` (HTTP reads, matrix decoding, the strategy's state,
assessment) from ``--workers`` threads at once as the operator's reconcile pool does, then
what the handler does with the result: the policy's recommendation series
(``observability.publish``), the desired recommendation objects and their projections as
the watch cache keeps them (``status.recommendation.seen``). Prints:

* RSS (``VmRSS``, peak ``VmHWM``) before the first reconciles, after them, after a
  steady round (two more minutes of history), each also after ``malloc_trim(0)``;
* with ``--trace``: Python allocations alive after the first round (tracemalloc), per
  container, by the file that allocated them, and the peak traced during the round;
  NumPy arrays held by the strategies' state (``nbytes``).

Levers are measured one at a time by the caller: ``MALLOC_ARENA_MAX=2 python …`` for
glibc's arenas (the operator sets the same limit with ``mallopt`` at start,
``heap.py``), ``--trim`` for ``malloc_trim(0)`` after each reconcile (what the
operator does after each reconcile), ``--workers`` for the pool size. To compare with an
older version of the operator, run this file with ``PYTHONPATH`` pointing at that
version's ``operator/`` directory (e.g. from ``git archive``).

    python bench/bench_operator_memory.py [--containers 2000] [--per-policy 500]
        [--workers 8] [--days 1] [--trace] [--trim]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from rightsizer.controller import observability as obs  # noqa: E402
from rightsizer.controller.reconcile import Ports, ReconcileInput, reconcile  # noqa: E402
from rightsizer.controller.runtime import PolicyRuntime  # noqa: E402
from rightsizer.dev.openmetrics import replicaset_name  # noqa: E402
from rightsizer.model.workloads import PolicyInfo, WorkloadInfo, workload_info  # noqa: E402
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig  # noqa: E402
from rightsizer.sources.prometheus_history import PrometheusHistory  # noqa: E402
from rightsizer.status.recommendation import PolicyRef, Seen, desired_objects, seen  # noqa: E402

MI = 2**20
SAFE = "bcdfghjklmnpqrstvwxz2456789"
NOW = 1_800_000_000.0


# ------------------------------------------------------------------ the fake Prometheus
def pod_name(ns: str, name: str) -> str:
    digest = hashlib.sha1(f"pod/{ns}/{name}".encode()).digest()
    return f"{replicaset_name(ns, name)}-" + "".join(SAFE[b % len(SAFE)] for b in digest[:5])


def level(ns: str, name: str) -> tuple[float, float]:
    """A container's CPU cores and memory bytes (lognormal, as the scale bench's fleet)."""
    seed = int.from_bytes(hashlib.sha1(f"{ns}/{name}".encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    return float(rng.lognormal(-2.3, 0.8)), float(rng.lognormal(np.log(200e6), 0.6))


def matrix(ns: str, names: list[str], kind: str, start: float, end: float, step: float) -> bytes:
    t = np.arange(start, end + step / 2, step)
    phase = np.sin(2 * np.pi * (t % 86400) / 86400)
    series = []
    for name in names:
        cpu, mem = level(ns, name)
        # Noise from the sample's time and the series alone (not the query's range), so
        # any split of the history into queries reads the same samples.
        seed = int.from_bytes(hashlib.sha1(name.encode()).digest()[:2], "little")
        u = np.modf(np.abs(np.sin(t * 12.9898 + seed * 78.233)) * 43758.5453)[0]
        if kind == "cpu":
            v = np.round(cpu * (1 + 0.5 * phase) * np.exp(0.87 * (u - 0.5)), 5)
        else:
            v = np.round(mem * (1 + 0.05 * phase) * (1 + 0.035 * (u - 0.5)))
        values = ",".join(f'[{a:.0f},"{b:g}"]' for a, b in zip(t.tolist(), v.tolist(), strict=True))
        metric = json.dumps({"container": "app", "namespace": ns, "pod": pod_name(ns, name)},
                            separators=(",", ":"))  # fmt: skip
        series.append(f'{{"metric":{metric},"values":[{values}]}}')
    body = '{"status":"success","data":{"resultType":"matrix","result":[' + ",".join(series)
    return (body + "]}}").encode()


def serve(port_file: str, per_policy: int) -> None:
    """The fake Prometheus (a child process): range queries of CPU and memory answer
    every Deployment of the namespace; everything else answers empty."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            form = urllib.parse.parse_qs(
                self.rfile.read(int(self.headers["Content-Length"])).decode()
            )
            query = form.get("query", [""])[0]
            found = re.search(r'namespace="([^"]+)"', query)
            ns = found[1] if found else ""
            names = [f"svc-{i:05d}" for i in range(per_policy)]
            if self.path.endswith("query_range") and "container_cpu_usage" in query:
                kind = "cpu"
            elif self.path.endswith("query_range") and "working_set" in query:
                kind = "memory"
            else:
                kind = ""
            if kind:
                body = matrix(ns, names, kind, *(float(form[k][0]) for k in ("start", "end",
                                                                            "step")))  # fmt: skip
            else:
                rtype = "matrix" if self.path.endswith("query_range") else "vector"
                body = json.dumps(
                    {"status": "success", "data": {"resultType": rtype, "result": []}}
                ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# ------------------------------------------------------------------ the operator's side
def proc_status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


LIBC = ctypes.CDLL("libc.so.6")


def trim() -> None:
    LIBC.malloc_trim(0)


def deployment(ns: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}",
                     "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                     "name": "app", "image": "registry.k8s.io/pause:3.10",
                     "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                   "limits": {"memory": "512Mi"}}}]}}},
        "status": {"replicas": 1, "availableReplicas": 1},
    }  # fmt: skip


class Operator:
    """The reconcile side of the handler, for many policies, without the API server."""

    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.spaces = [f"bench-{j:02d}" for j in range(args.containers // args.per_policy)]
        self.workloads: dict[str, list[WorkloadInfo]] = {
            ns: [workload_info("Deployment", deployment(ns, f"svc-{i:05d}"))
                 for i in range(args.per_policy)]
            for ns in self.spaces
        }  # fmt: skip
        self.runtimes: dict[str, PolicyRuntime | None] = dict.fromkeys(self.spaces)
        #: The watch cache's projections of the recommendation objects.
        self.cache: dict[str, list[Seen]] = {}
        self.peak_traced = 0

    def policy(self, ns: str) -> PolicyInfo:
        spec = {"targets": {"kinds": ["Deployment"]},
                "source": {"prometheus": {"url": self.url, "history": f"{self.args.days:g}d",
                                          "step": "1m"},
                           "metricsServer": {"enabled": False}},
                "update": {"mode": "Recommend"}}  # fmt: skip
        return PolicyInfo(ns, "bench", f"uid-{ns}", "2026-11-30T00:00:00Z", spec)

    def history(self, src: Any, ns: str) -> PrometheusHistory:
        cfg = PrometheusConfig(url=self.url, retries=0, trust_env=False)
        return PrometheusHistory(PrometheusClient(cfg))

    def one(self, ns: str, now_s: float) -> None:
        policy = self.policy(ns)
        given = ReconcileInput(policy, 1, {}, self.workloads[ns], [], [policy], now_s)
        outcome, runtime = reconcile(given, self.runtimes[ns], Ports(prometheus=self.history))
        assert runtime is not None and outcome.source_error is None, outcome.source_error
        self.runtimes[ns] = runtime
        obs.publish(ns, "bench", outcome.rows)
        ref = PolicyRef(ns, "bench", policy.uid)
        owned = [w for w in self.workloads[ns] if w.ref in set(runtime.owned)]
        desired = desired_objects(ref, owned, runtime.rows, {}, runtime.read_until_s, now_s)
        # As the watch delivers each written object: the API server's body, projected.
        self.cache[ns] = [seen({**body, "metadata": {**body["metadata"], "uid": "x",
                                                     "resourceVersion": "1"}})
                          for body in desired]  # fmt: skip
        if self.args.trim:
            trim()

    def round(self, now_s: float) -> float:
        t0 = time.monotonic()
        with ThreadPoolExecutor(self.args.workers, thread_name_prefix="reconcile") as pool:
            list(pool.map(lambda ns: self.one(ns, now_s), self.spaces))
        return time.monotonic() - t0


def nbytes(obj: Any, seen_ids: set[int] | None = None) -> int:
    """NumPy arrays reachable through an object's attributes (the strategy's state)."""
    seen_ids = seen_ids if seen_ids is not None else set()
    if id(obj) in seen_ids:
        return 0
    seen_ids.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(nbytes(v, seen_ids) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(nbytes(v, seen_ids) for v in obj)
    if hasattr(obj, "__dict__"):
        return sum(nbytes(v, seen_ids) for v in vars(obj).values())
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--containers", type=int, default=2000)
    parser.add_argument("--per-policy", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--trace", action="store_true", help="tracemalloc (slower)")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after each reconcile")
    parser.add_argument(
        "--chunk-hours", type=float, default=0.0,
        help="query chunks of this many hours whatever the series (0: the operator's choice)",
    )  # fmt: skip
    parser.add_argument("--serve", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.per_policy)
        return
    port_file = Path(f"/tmp/bench-operator-memory-{os.getpid()}.port")
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file),
                               "--per-policy", str(args.per_policy)])  # fmt: skip
    try:
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None:
                raise SystemExit("bench: the fake Prometheus exited")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        run(args, url)
    finally:
        server.terminate()
        server.wait()
        port_file.unlink(missing_ok=True)


def run(args: argparse.Namespace, url: str) -> None:
    if args.chunk_hours:
        from rightsizer.controller import reconcile as module

        fixed = args.chunk_hours * 3600.0
        setattr(module, "chunk_for", lambda step_s, series: fixed)  # noqa: B010
    op = Operator(args, url)
    n = len(op.spaces) * args.per_policy
    gc.collect()
    rows: list[tuple[str, str]] = []

    def mark(what: str) -> int:
        gc.collect()
        before = proc_status()
        trim()
        after = proc_status()
        rss, trimmed, peak = (before["VmRSS"] / 1024, after["VmRSS"] / 1024,
                              after["VmHWM"] / 1024)  # fmt: skip
        rows.append((what, f"RSS {rss:6.0f} MiB, after malloc_trim {trimmed:6.0f} MiB; "
                           f"peak {peak:6.0f} MiB"))  # fmt: skip
        return before["VmRSS"]

    if args.trace:
        tracemalloc.start(1)
    base = mark("before (imports, workloads)")
    base_snap = tracemalloc.take_snapshot() if args.trace else None
    if args.trace:
        tracemalloc.reset_peak()
    first_s = op.round(NOW)
    first = mark(f"after first contact ({first_s:.1f} s)")
    traced_peak = tracemalloc.get_traced_memory()[1] if args.trace else 0
    snap = tracemalloc.take_snapshot() if args.trace else None
    steady_s = op.round(NOW + 120)
    steady = mark(f"after a steady round ({steady_s:.1f} s)")
    print(f"\n{n} containers, {len(op.spaces)} policies × {args.per_policy}, {args.workers} "
          f"threads, {args.days:g} day(s) at 1 min; MALLOC_ARENA_MAX="
          f"{os.environ.get('MALLOC_ARENA_MAX', 'unset')}, trim after reconcile: "
          f"{args.trim}, query chunks: "
          f"{f'{args.chunk_hours:g} h' if args.chunk_hours else 'by series'}")  # fmt: skip
    for what, text in rows:
        print(f"  {what:38s} {text}")
    print(f"  RSS growth per container: first contact {(first - base) * 1024 / n / 1024:.1f} "
          f"KiB, after steady {(steady - base) * 1024 / n / 1024:.1f} KiB")  # fmt: skip
    states = sum(nbytes(r.state) for r in op.runtimes.values() if r is not None)
    print(f"  strategy state (NumPy arrays): {states / n / 1024:.2f} KiB per container")
    if snap is not None and base_snap is not None:
        stats = snap.compare_to(base_snap, "filename")
        total = sum(s.size_diff for s in stats)
        print(f"  Python allocations alive after first contact: {total / n / 1024:.2f} KiB per "
              f"container; peak traced during it {traced_peak / MI:.0f} MiB")  # fmt: skip
        by: Counter[str] = Counter()
        for s in stats:
            name = re.sub(r"^.*?(site-packages/|/operator/|/lib/python3\.\d+/)", "",
                          s.traceback[0].filename)  # fmt: skip
            by[name] += s.size_diff
        for name, size in by.most_common(14):
            print(f"    {size / n:9.0f} B/container  {name}")
        lines = snap.compare_to(base_snap, "lineno")
        print("  top lines:")
        for s in lines[:14]:
            frame = s.traceback[0]
            name = re.sub(r"^.*?(site-packages/|/operator/|/lib/python3\.\d+/)", "",
                          frame.filename)  # fmt: skip
            print(f"    {s.size_diff / n:9.0f} B/container  {name}:{frame.lineno}")


if __name__ == "__main__":
    socket.setdefaulttimeout(120)
    threading.stack_size(0)
    main()
