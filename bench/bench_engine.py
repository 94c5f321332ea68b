"""Engine benchmark: containers × 14 days at 1-minute resolution, CPU and memory.

Synthetic samples are generated chunk by chunk in memory (never all at once), fed to a
strategy's state, and recommendations computed at the end. Each configuration runs in its
own process so that peak RSS is its own. Prints wall time, samples/s and peak RSS; the
time spent generating samples is shown separately (it is not engine work).

    python bench/bench_engine.py                      # 1,000 and 10,000 containers, vpa
    python bench/bench_engine.py --containers 1000 --strategy percentile
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_one(containers: int, days: float, strategy_name: str) -> dict[str, float]:
    from rightsizer.dev.synthetic import synthetic_chunks
    from rightsizer.engine.strategies import SizingContext, build_strategy
    from rightsizer.engine.usage import ContainerRegistry

    registry = ContainerRegistry()
    for i in range(containers):
        registry.instance_id(("bench", f"Deployment/w{i}", f"w{i}-0", "app"))
    strategy, policy = build_strategy(strategy_name)
    state = strategy.new_state()
    gen_s = engine_s = 0.0
    samples = 0
    t_start = time.perf_counter()
    chunks = synthetic_chunks(containers, days=days, chunk_steps=60)
    tty = sys.stderr.isatty()
    steps = int(days * 1440 / 60)
    for i in range(steps):
        t0 = time.perf_counter()
        chunk = next(chunks)
        t1 = time.perf_counter()
        state.add(chunk)
        t2 = time.perf_counter()
        gen_s += t1 - t0
        engine_s += t2 - t1
        samples += 2 * len(chunk)  # one CPU and one memory sample per row
        if tty and i % 10 == 0:
            print(f"\r  {containers} containers: {100 * (i + 1) / steps:5.1f} %", end="",
                  file=sys.stderr)  # fmt: skip
    t3 = time.perf_counter()
    recs = strategy.recommend(state, registry, SizingContext(policy=policy))
    recommend_s = time.perf_counter() - t3
    if tty:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    assert len(recs) == containers
    wall = time.perf_counter() - t_start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "containers": containers,
        "days": days,
        "samples": samples,
        "wall_s": wall,
        "generate_s": gen_s,
        "engine_s": engine_s + recommend_s,
        "recommend_s": recommend_s,
        "engine_samples_per_s": samples / (engine_s + recommend_s),
        "peak_rss_mib": rss_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--containers", type=int, action="append")
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--strategy", default="vpa")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.containers or [1000, 10000]
    if args.one:
        print(json.dumps(run_one(sizes[0], args.days, args.strategy)))
        return
    print(f"strategy={args.strategy}, {args.days:g} days at 1-minute resolution, CPU + memory")
    header = f"{'containers':>10} {'samples':>12} {'wall s':>8} {'engine s':>9} " \
             f"{'gen s':>7} {'engine samples/s':>17} {'peak RSS MiB':>13}"  # fmt: skip
    print(header)
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", "--containers", str(n), "--days",
             str(args.days), "--strategy", args.strategy],
            check=True, stdout=subprocess.PIPE, text=True,
        ).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['containers']:>10,} {r['samples']:>12,} {r['wall_s']:>8.1f} "
            f"{r['engine_s']:>9.1f} {r['generate_s']:>7.1f} "
            f"{r['engine_samples_per_s']:>17,.0f} {r['peak_rss_mib']:>13.0f}"
        )


if __name__ == "__main__":
    main()
