"""Synthetic usage: realistic-looking daily cycles with noise and spikes, seeded.

Used for the bundled example file, the benchmarks and tests. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rightsizer.engine.usage import UsageChunk
from rightsizer.quantity import DAY_S


@dataclass(frozen=True)
class ContainerProfile:
    namespace: str
    workload: str
    pods: int
    container: str
    cpu_base_cores: float
    cpu_daily_amplitude: float
    memory_base_bytes: float
    memory_growth_per_day: float
    cpu_request: float
    cpu_limit: float | None
    memory_request: float
    memory_limit: float | None
    spike_probability: float = 0.002


MI = 2**20
EXAMPLE_PROFILES = (
    ContainerProfile("shop", "Deployment/web", 2, "app", 0.12, 0.08, 180 * MI, 4 * MI,
                     0.5, 1.0, 512 * MI, 512 * MI),
    ContainerProfile("shop", "Deployment/web", 2, "istio-proxy", 0.02, 0.01, 60 * MI, 0,
                     0.1, None, 128 * MI, 256 * MI),
    ContainerProfile("shop", "StatefulSet/db", 1, "postgres", 0.3, 0.1, 900 * MI, 20 * MI,
                     0.25, None, 1024 * MI, 1024 * MI, spike_probability=0.01),
    ContainerProfile("batch", "Deployment/worker", 2, "worker", 0.6, 0.5, 350 * MI, 0,
                     2.0, 4.0, 2048 * MI, 2048 * MI, spike_probability=0.02),
)  # fmt: skip


def profile_frame(
    profiles: tuple[ContainerProfile, ...],
    *,
    start_s: float,
    days: float,
    step_s: float,
    seed: int = 1,
) -> pd.DataFrame:
    """A samples frame for ``profiles`` from ``start_s``, one row per pod and step."""
    rng = np.random.default_rng(seed)
    times = start_s + np.arange(step_s, days * DAY_S + step_s / 2, step_s)
    phase = 2 * np.pi * ((times % DAY_S) / DAY_S - 0.25)
    frames = []
    for p in profiles:
        for pod in range(p.pods):
            n = times.shape[0]
            daily = np.maximum(np.sin(phase), -0.3)
            cpu = p.cpu_base_cores + p.cpu_daily_amplitude * daily
            cpu = cpu * rng.lognormal(0.0, 0.15, n)
            spikes = np.asarray(rng.random(n) < p.spike_probability, dtype=bool)
            cpu[spikes] *= rng.uniform(2.0, 4.0, int(spikes.sum()))
            mem = p.memory_base_bytes + p.memory_growth_per_day * (times - start_s) / DAY_S
            mem = mem * (1 + 0.05 * daily) * rng.normal(1.0, 0.01, n)
            pod_name = f"{p.workload.split('/')[1]}-{pod}"
            frames.append(
                pd.DataFrame(
                    {
                        "timestamp": times.astype(np.int64),
                        "namespace": p.namespace,
                        "workload": p.workload,
                        "pod": pod_name,
                        "container": p.container,
                        "cpu": np.round(np.maximum(cpu, 0.0), 4),
                        "memory": np.round(np.maximum(mem, 0.0)).astype(np.int64),
                        "cpu_request": p.cpu_request,
                        "cpu_limit": p.cpu_limit,
                        "memory_request": p.memory_request,
                        "memory_limit": p.memory_limit,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def synthetic_chunks(
    containers: int,
    *,
    days: float,
    step_s: float = 60.0,
    chunk_steps: int = 60,
    start_s: float = 1_700_000_000.0,
    seed: int = 7,
) -> Iterator[UsageChunk]:
    """Time-ordered chunks for ``containers`` single-pod containers (benchmarks).

    Each chunk holds ``chunk_steps`` time steps × all containers, generated on the fly,
    so the whole history never exists in memory at once.
    """
    rng = np.random.default_rng(seed)
    base_cpu = rng.lognormal(-2.0, 1.0, containers)
    amp = base_cpu * rng.uniform(0.1, 1.0, containers)
    base_mem = rng.lognormal(np.log(300 * MI), 0.8, containers)
    ids = np.arange(containers, dtype=np.int64)
    total_steps = int(days * DAY_S / step_s)
    for first in range(0, total_steps, chunk_steps):
        steps = min(chunk_steps, total_steps - first)
        t = start_s + (first + np.arange(steps)) * step_s
        phase = np.sin(2 * np.pi * (t % DAY_S) / DAY_S)
        cpu = (base_cpu[None, :] + amp[None, :] * phase[:, None]).clip(0.0)
        cpu *= rng.lognormal(0.0, 0.2, (steps, containers))
        mem = base_mem[None, :] * (1 + 0.05 * phase[:, None])
        n = steps * containers
        yield UsageChunk(
            container_id=np.tile(ids, steps),
            instance_id=np.tile(ids, steps),
            timestamp_s=np.repeat(t, containers),
            cpu_cores=cpu.reshape(n),
            memory_bytes=mem.reshape(n),
            oom=np.zeros(n, dtype=bool),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the bundled example samples (CSV).")
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--step", type=float, default=300.0, help="seconds between samples")
    parser.add_argument("--start", type=float, default=1_763_251_200.0, help="Unix seconds")
    args = parser.parse_args()
    frame = profile_frame(EXAMPLE_PROFILES, start_s=args.start, days=args.days, step_s=args.step)
    frame.to_csv(sys.stdout, index=False)


if __name__ == "__main__":
    main()
