"""``rightsizer report`` side by side with KRR (issue 17), wrapping the kit in
``../shared/bench/krr`` (its generator, TSDB builder and runner; KRR in library mode).

Everything heavy is built once into a cache directory outside the repository
(``$RIGHTSIZER_BENCH_KRR_DIR``, default ``~/.cache/rightsizer/bench-krr``):

* ``krr/``: KRR's source and its own venv;
* ``data-<N>c-<D>d/``: the synthetic TSDB (and the generator's truth file). The data runs
  to "build time + 6 h" so that "now" sees a full window; it is rebuilt when that end
  comes closer than one hour.

Then, for each round, KRR and every ``report`` variant are run alternately, Prometheus
restarted before each run (the kit's ``bench.py run``), and the medians are printed with
their ratios to KRR's. A variant is a name and extra ``report`` arguments, e.g.
``--variant 'gzip=--compress'`` or ``--variant 'before=bin:/path/to/rightsizer'``; the
default variant adds nothing.

    python bench/bench_vs_krr.py [--containers 1000] [--days 7] [--rounds 3]
        [--variant NAME=ARGS ...] [--no-krr] [--kit DIR]

The machine is shared and noisy: only ratios from one run mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("PROM_PORT", "19190"))
METRICS = (
    ("wall s", "wall_s", "{:.1f}"),
    ("PromQL requests", "queries", "{:,.0f}"),
    ("Prometheus CPU s", "prom_cpu_s", "{:.1f}"),
    ("client CPU s", "client_cpu_s", "{:.1f}"),
    ("client peak RSS MiB", "client_maxrss_mib", "{:.0f}"),
)


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "rightsizer" / "bench-krr"
    return Path(os.environ.get("RIGHTSIZER_BENCH_KRR_DIR", default))


def sh(cmd: list[str], **kw: object) -> None:
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def ensure_krr(kit: Path, cache: Path) -> Path:
    krr = cache / "krr"
    if not (krr / "robusta_krr").is_dir():
        krr.mkdir(parents=True, exist_ok=True)
        sh(["tar", "-xJf", str(kit / "krr-src.tar.xz"), "-C", str(krr)])
    if not (krr / "venv" / ".installed").exists():
        sh([sys.executable, "-m", "venv", str(krr / "venv")])
        sh([str(krr / "venv/bin/pip"), "install", "-q", "-r", str(kit / "requirements.txt")])
        (krr / "venv" / ".installed").write_text("ok\n")
    return krr


def build_in_windows(kit: Path, data: Path, containers: int, start: int, end: int,
                     window_h: int) -> None:  # fmt: skip
    """The kit's build with ``window_h``-hour blocks, one window at a time: promtool holds
    one block in memory (≈ 3.1 GiB for 1,000 containers × 54 h), so a large fleet needs
    shorter blocks (6 h: ≈ 1.8 GiB at 5,000 containers). Prometheus compacts them into
    its own ranges at its first start, which the runner's first start absorbs."""
    om, tsdb = data / "om", data / "tsdb"
    om.mkdir(parents=True, exist_ok=True)
    tsdb.mkdir(parents=True, exist_ok=True)
    gen = [sys.executable, str(kit / "gen.py"), str(om / "om"), str(containers), str(start),
           str(end), "--window-h", str(window_h)]  # fmt: skip
    sh([*gen, "--truth", "--windows", "99999"])
    width = window_h * 3600
    first, last = (start - start % 60) // width, (end - 1) // width
    for k in range(last - first + 1):
        sh([*gen, "--windows", str(k)])
        part = om / f"om.{k:02d}"
        sh(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
            f"--max-block-duration={window_h}h", str(part), str(tsdb)],
           stdout=subprocess.DEVNULL)  # fmt: skip
        part.unlink()
        print(f"window {k + 1} of {last - first + 1} backfilled", flush=True)


def ensure_data(kit: Path, cache: Path, containers: int, days: int, window_h: int = 54) -> Path:
    data = cache / f"data-{containers}c-{days}d"
    meta_path = data / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["end"] - time.time() > 3600:
            return data
        print(f"{data}: its data ends too soon, rebuilding", flush=True)
    sh(["rm", "-rf", str(data)])
    now = int(time.time())
    start, end = now - days * 86400 - 1800, now + 6 * 3600
    t0 = time.monotonic()
    if window_h == 54:
        sh(["bash", str(kit / "build_tsdb.sh"), str(kit / "gen.py"), str(data / "om"),
            str(data / "tsdb"), str(containers), str(start), str(end)])  # fmt: skip
    else:
        build_in_windows(kit, data, containers, start, end, window_h)
    built = {"start": start, "end": end, "build_s": round(time.monotonic() - t0, 1)}
    meta_path.write_text(json.dumps(built) + "\n")
    return data


def rs_wrapper(outdir: Path, name: str, extra: str) -> Path:
    """The kit's runner calls ``$RS_BIN report …``: a variant's arguments ride on a wrapper.
    ``extra`` may start with ``bin:PATH`` to run another build (e.g. the main branch's)."""
    path = outdir / f"rs-{name}.sh"
    rs = ROOT / ".venv" / "bin" / "rightsizer"
    if extra.startswith("bin:"):
        binary, _, extra = extra[4:].partition(" ")
        rs = Path(binary)
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(str(rs))} "$@" {extra}\n')
    path.chmod(0o755)
    return path


def run_one(kit: Path, env: dict[str, str], outdir: Path, truth: Path, label: str,
            kind: str) -> dict:  # type: ignore[type-arg]  # fmt: skip
    sh([sys.executable, str(kit / "bench.py"), "run", str(outdir), str(truth), label, kind],
       env=env)  # fmt: skip
    rec: dict = json.loads((outdir / f"{label}.{kind}.run.json").read_text())  # type: ignore[type-arg]
    rec["client_cpu_s"] = rec.get("client_user_s", 0.0) + rec.get("client_sys_s", 0.0)
    return rec


def targets(path: Path) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(namespace, workload, container) → (CPU cores, memory bytes) of a report's JSON."""
    doc = json.loads(path.read_text())
    out = {}
    for r in doc["recommendations"]:
        cpu, mem = r["target"].get("cpu"), r["target"].get("memory")
        if cpu is None or mem is None:
            continue
        cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        out[(r["namespace"], r["workload"], r["container"])] = (cores, float(mem))
    return out


def largest_difference(a: Path, b: Path) -> tuple[float, float, int]:
    """Largest relative CPU and memory target difference of ``b`` from ``a``; keys compared."""
    ta, tb = targets(a), targets(b)
    common = ta.keys() & tb.keys()
    cpu = max((abs(tb[k][0] - ta[k][0]) / ta[k][0] for k in common if ta[k][0]), default=0.0)
    mem = max((abs(tb[k][1] - ta[k][1]) / ta[k][1] for k in common if ta[k][1]), default=0.0)
    return cpu, mem, len(common)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--containers", type=int, default=1000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS")
    p.add_argument("--no-krr", action="store_true", help="report variants only")
    p.add_argument("--kit", type=Path, default=ROOT.parent / "shared" / "bench" / "krr")
    p.add_argument("--out", type=Path, help="run records (default: a new folder in the cache)")
    p.add_argument("--window-h", type=int, default=54,
                   help="hours per backfilled block (6 keeps promtool under 2 GiB at 5,000 "
                        "containers; the kit's own builder is used at 54)")  # fmt: skip
    p.add_argument("--build-only", action="store_true", help="build KRR and the data, run nothing")
    args = p.parse_args()
    kit, cache = args.kit.resolve(), cache_dir()
    variants = [v.partition("=")[::2] for v in args.variant] or [("default", "")]
    krr = None if args.no_krr else ensure_krr(kit, cache)
    data = ensure_data(kit, cache, args.containers, args.days, args.window_h)
    if args.build_only:
        return 0
    outdir = args.out or cache / "runs" / time.strftime("%Y%m%dT%H%M%S")
    outdir.mkdir(parents=True, exist_ok=True)
    config = cache / "prometheus.yml"
    config.write_text("global: {}\nscrape_configs: []\n")
    env = {**os.environ, "PROM_DATA": str(data / "tsdb"), "PROM_CONFIG": str(config),
           "PROM_PORT": str(PORT)}  # fmt: skip
    if krr is not None:
        env.update(KRR_SRC=str(krr), KRR_PY=str(krr / "venv/bin/python"),
                   KRR_DRIVER=str(kit / "krr_lib_bench.py"))  # fmt: skip
    truth = data / "om" / "om.truth.json"
    runs: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for r in range(1, args.rounds + 1):
        if krr is not None:
            runs.setdefault("KRR simple", []).append(
                run_one(kit, env, outdir, truth, f"r{r}", "krr")
            )
        for name, extra in variants:
            env["RS_BIN"] = str(rs_wrapper(outdir, name, extra))
            rec = run_one(kit, env, outdir, truth, f"r{r}-{name}", "rs-default")
            runs.setdefault(f"report {name}", []).append(rec)
    summary = summarize(runs, args.rounds, args.containers, args.days)
    if len(variants) > 1:
        first = outdir / f"r1-{variants[0][0]}.rs-default.result.json"
        for name, _ in variants[1:]:
            cpu, mem, n = largest_difference(first, outdir / f"r1-{name}.rs-default.result.json")
            summary += (f"\n`{name}` vs `{variants[0][0]}`: largest target difference CPU "
                        f"{cpu:.1%}, memory {mem:.1%} ({n} containers)")  # fmt: skip
    print(summary)
    (outdir / "summary.md").write_text(summary + "\n")
    print(f"\nrecords: {outdir}")
    return 0


def summarize(runs: dict[str, list[dict]], rounds: int, containers: int, days: int) -> str:  # type: ignore[type-arg]
    names = list(runs)
    med = {n: {k: statistics.median(r[k] for r in runs[n]) for _, k, _ in METRICS} for n in names}
    failed = {n: [r["rc"] for r in runs[n] if r["rc"]] for n in names}
    lines = [
        f"{containers:,} containers × {days} d at 1 min, median of {rounds} "
        "(Prometheus restarted before each run, runs alternated)",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for title, key, fmt in METRICS:
        lines.append(f"| {title} | " + " | ".join(fmt.format(med[n][key]) for n in names) + " |")
    if "KRR simple" in med:
        ref = med["KRR simple"]
        for title, key, _ in METRICS:
            cells = [f"{med[n][key] / ref[key]:.2f}" if ref[key] else "–" for n in names]
            lines.append(f"| {title} ÷ KRR | " + " | ".join(cells) + " |")
    bad = {n: rc for n, rc in failed.items() if rc}
    if bad:
        lines.append(f"\nruns that failed (exit codes): {bad}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
