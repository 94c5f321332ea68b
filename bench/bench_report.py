"""``rightsizer report`` against a real Prometheus holding 1,000 containers × 7 days at
1-minute resolution: wall time, peak RSS and queries, side by side with the bare PromQL
fetches of the same queries (the floor: HTTP + JSON decoding, nothing else).

The TSDB is built once (synthetic usage → OpenMetrics → promtool) and cached under
``$RIGHTSIZER_CACHE/bench-report-…``; its own Prometheus runs on 127.0.0.1:39191.

    python bench/bench_report.py [--containers 1000] [--days 7] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

ROOT = Path(__file__).resolve().parents[1]
END_S = 1_795_000_200.0  # fixed, so the cached TSDB stays valid; a multiple of 60
PORT = 39191
SAFE = "bcdfghjklmnpqrstvwxz2456789"


def cache_root() -> Path:
    return Path(os.environ.get("RIGHTSIZER_CACHE", Path.home() / ".cache" / "rightsizer"))


def synthetic_frame(containers: int, days: float, step_s: float, seed: int = 3) -> pd.DataFrame:
    """10 namespaces × deployments with an app and a sidecar container, one pod each."""
    rng = np.random.default_rng(seed)
    namespaces = 10
    per_ns = max(1, containers // (2 * namespaces))
    n_steps = int(days * 86400 / step_s)
    t = END_S - (n_steps - 1 - np.arange(n_steps)) * step_s
    phase = np.sin(2 * np.pi * (t % 86400) / 86400)
    frames = []
    for ns in range(namespaces):
        for d in range(per_ns):
            rs = "".join(rng.choice(list(SAFE), 9))
            pod = f"svc{d}-{rs}-" + "".join(rng.choice(list(SAFE), 5))
            for container, scale in (("app", 1.0), ("proxy", 0.1)):
                base = rng.lognormal(-2.0, 0.8) * scale
                cpu = np.clip(base * (1 + 0.6 * phase) * rng.lognormal(0, 0.25, n_steps), 0, None)
                mem = rng.lognormal(np.log(200e6), 0.6) * scale * (1 + 0.05 * phase)
                frames.append(pd.DataFrame({
                    "timestamp": t, "namespace": f"team-{ns}", "workload": f"Deployment/svc{d}",
                    "pod": pod, "container": container, "cpu": np.round(cpu, 5),
                    "memory": np.round(mem), "cpu_request": 0.5 * scale, "cpu_limit": np.nan,
                    "memory_request": 512e6 * scale, "memory_limit": 512e6 * scale,
                    "oom": False,
                }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def build_tsdb(state: Path, containers: int, days: float) -> None:
    from rightsizer.dev.openmetrics import render, split_days, with_cpu_counter
    from tests.sandbox import Prometheus, Sandbox

    om_dir = state / "openmetrics"
    om_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    frame = with_cpu_counter(synthetic_frame(containers, days, 60.0))
    files = []
    for i, day in enumerate(split_days(frame)):
        path = om_dir / f"day-{i:02d}.om"
        with path.open("w") as fh:
            fh.writelines(render(day, 0.0, state_interval_s=300.0))
        files.append(path)
        print(f"  wrote {path.name} ({path.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
    del frame
    t1 = time.perf_counter()
    sandbox = Sandbox()
    sandbox.up(["prometheus"], keep_data=False)
    Prometheus(sandbox).load_openmetrics(files, restart=True)
    for f in files:
        f.unlink()
    (state / "READY").write_text(json.dumps({"containers": containers, "days": days}))
    print(f"  generated in {t1 - t0:.0f} s, loaded in {time.perf_counter() - t1:.0f} s",
          file=sys.stderr)  # fmt: skip


def bare_fetch(url: str, queries: list[tuple[str, dict[str, str]]]) -> float:
    session = requests.Session()
    t0 = time.perf_counter()
    for path, data in queries:
        resp = session.post(url + path, data=data, timeout=300)
        resp.raise_for_status()
        json.loads(resp.content)
    return time.perf_counter() - t0


def report_queries(url: str, history_s: float, step_s: float) -> list[tuple[str, dict[str, str]]]:
    """The exact queries ``rightsizer report`` sends, in order."""
    from rightsizer.sources import promql
    from rightsizer.sources.prometheus_history import HistoryWindow, plan_chunks

    window = HistoryWindow(END_S - history_s, END_S, step_s)
    at = {"time": repr(END_S)}
    namespaces_q = promql.namespaces(history_s)
    body = requests.post(url + "/api/v1/query", data={"query": namespaces_q, **at}, timeout=60)
    namespaces = sorted(r["metric"]["namespace"] for r in body.json()["data"]["result"])
    out: list[tuple[str, dict[str, str]]] = [
        ("/api/v1/query", {"query": "vector(1)", "time": "0.0"}),
        ("/api/v1/query", {"query": namespaces_q, **at}),
    ]
    for ns in namespaces:
        for q in (promql.pod_owners(ns, history_s), promql.replicaset_owners(ns, history_s),
                  promql.resources("requests", ns), promql.resources("limits", ns)):  # fmt: skip
            out.append(("/api/v1/query", {"query": q, **at}))
        for start, end in plan_chunks(window):
            rng = {"start": repr(start), "end": repr(end), "step": repr(step_s)}
            for q in (promql.cpu_usage(ns, window.rate_window), promql.memory_usage(ns, step_s),
                      promql.oom_kills(ns, step_s)):  # fmt: skip
                out.append(("/api/v1/query_range", {"query": q, **rng}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    state = cache_root() / f"bench-report-{args.containers}x{args.days:g}d-v1"
    os.environ["RIGHTSIZER_SANDBOX_DIR"] = str(state)
    os.environ["RIGHTSIZER_SANDBOX_PROMETHEUS_PORT"] = str(PORT)
    sys.path.insert(0, str(ROOT))
    from tests.sandbox import Sandbox

    if not (state / "READY").exists():
        print(f"building the benchmark TSDB in {state} (once) …", file=sys.stderr)
        build_tsdb(state, args.containers, args.days)
    sandbox = Sandbox()
    sandbox.up(["prometheus"], keep_data=True)
    url = f"http://127.0.0.1:{PORT}"
    history_s = args.days * 86400
    queries = report_queries(url, history_s, 60.0)
    cmd = [sys.executable, "-m", "rightsizer.cli.main", "report", "--prometheus", url,
           "--history", f"{history_s:g}s", "--step", "60s", "--end", repr(END_S),
           "--format", "json", "--timeout", "300s"]  # fmt: skip
    print(f"{args.containers} containers × {args.days:g} days at 1 minute; "
          f"{len(queries)} queries per report")  # fmt: skip
    print(f"{'round':>5} {'bare fetch s':>13} {'report s':>9} {'ratio':>6} "
          f"{'report peak RSS MiB':>20} {'queries':>8} {'containers':>11}")  # fmt: skip
    for r in range(1, args.rounds + 1):
        floor_s = bare_fetch(url, queries)
        t0 = time.perf_counter()
        out_path = state / "report.json"
        with out_path.open("w") as out:
            env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
            proc = subprocess.Popen(cmd, stdout=out, env=env)
            # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would include promtool)
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if status != 0:
            raise SystemExit(f"rightsizer report failed with status {status}")
        rss = usage.ru_maxrss / 1024
        doc = json.loads(out_path.read_text())
        print(f"{r:>5} {floor_s:>13.1f} {wall:>9.1f} {wall / floor_s:>6.2f} {rss:>20.0f} "
              f"{doc['source']['queries']:>8} {len(doc['recommendations']):>11}")  # fmt: skip
    sandbox.down(["prometheus"])


if __name__ == "__main__":
    main()
