"""Synthetic pod churn for tests and the soak benchmark (pure, deterministic).

A Deployment of ``replicas`` pods whose pods are all replaced once a day (a rollout: new
pod names every day), and a CronJob-like workload whose short pods (``job_run_s`` long)
start every ``job_every_s``. Usage is a function of the pod and the time alone, so the
same time range always gives the same samples however it is cut into chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.quantity import DAY_S
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.prometheus_history import HistoryWindow, plan_chunks

MIB = 2.0**20


@dataclass(frozen=True)
class Churn:
    namespace: str = "shop"
    deployment: str = "web"
    replicas: int = 20
    rollout_offset_s: float = 10 * 3600.0
    """Rollouts happen at this time of each (simulated) day."""
    cronjob: str = "backup"
    job_every_s: float = 900.0
    job_run_s: float = 300.0
    step_s: float = 60.0

    @property
    def deployment_ref(self) -> str:
        return f"Deployment/{self.deployment}"

    @property
    def cronjob_ref(self) -> str:
        return f"CronJob/{self.cronjob}"

    def rollout(self, t_s: float) -> int:
        """Which rollout (pod generation) of the Deployment runs at ``t_s``."""
        return int(np.floor((t_s - self.rollout_offset_s) / DAY_S))

    def live_pods(self, t_s: float) -> set[tuple[str, str]]:
        """(namespace, pod) of the pods running at ``t_s``."""
        gen = self.rollout(t_s)
        pods = {(self.namespace, self._web_pod(gen, i)) for i in range(self.replicas)}
        run = int(np.floor(t_s / self.job_every_s))
        if t_s - run * self.job_every_s < self.job_run_s:
            pods.add((self.namespace, self._job_pod(run)))
        return pods

    def _web_pod(self, gen: int, i: int) -> str:
        return f"{self.deployment}-{gen:07d}-{i:03d}"

    def _job_pod(self, run: int) -> str:
        return f"{self.cronjob}-{run:09d}"

    def chunk(self, registry: ContainerRegistry, start_s: float, end_s: float) -> UsageChunk:
        """Samples on the ``step_s`` grid in ``(start_s, end_s]``, registering new pods."""
        first = np.floor(start_s / self.step_s) + 1
        times = np.arange(first, np.floor(end_s / self.step_s) + 1) * self.step_s
        inst: list[int] = []
        ts: list[float] = []
        cpu: list[float] = []
        mem: list[float] = []
        ns = self.namespace
        for t in times.tolist():
            gen = self.rollout(t)
            for i in range(self.replicas):
                key = (ns, self.deployment_ref, self._web_pod(gen, i), "app")
                inst.append(registry.instance_id(key))
                ts.append(t)
                cpu.append(_cpu_cores(t, i))
                mem.append(_memory_bytes(t, gen, i))
            run = int(np.floor(t / self.job_every_s))
            if t - run * self.job_every_s < self.job_run_s:
                key = (ns, self.cronjob_ref, self._job_pod(run), "job")
                inst.append(registry.instance_id(key))
                ts.append(t)
                cpu.append(0.5 + 0.3 * _noise(t, 1000 + run % 7))
                mem.append((300 + 40 * (run % 5)) * MIB)
        n = len(inst)
        instances = np.asarray(inst, dtype=np.int64)
        containers = np.asarray(registry.instance_container, dtype=np.int64)
        return UsageChunk(
            containers[instances] if n else np.zeros(0, dtype=np.int64),
            instances,
            np.asarray(ts, dtype=np.float64),
            np.asarray(cpu, dtype=np.float64),
            np.asarray(mem, dtype=np.float64),
            np.zeros(n, dtype=bool),
        )


def _noise(t_s: float, salt: int) -> float:
    """A deterministic value in [0, 1) from the time and a salt."""
    x = np.sin(t_s * 12.9898e-3 + salt * 78.233) * 43758.5453
    return float(x - np.floor(x))


def _cpu_cores(t_s: float, i: int) -> float:
    daily = 0.5 + 0.5 * np.sin(2 * np.pi * t_s / DAY_S)
    return float(0.05 + 0.25 * daily + 0.1 * _noise(t_s, i))


def _memory_bytes(t_s: float, gen: int, i: int) -> float:
    """Grows through a pod's life; some generations spike (a peak to remember)."""
    age_s = (t_s % DAY_S) / DAY_S
    spike = 150.0 if (gen * 7 + i) % 11 == 0 and age_s > 0.9 else 0.0
    return (250.0 + 100.0 * age_s + 5.0 * (i % 4) + spike) * MIB


class ChurnHistory:
    """A Prometheus history port (what ``reconcile`` reads through) serving ``Churn``'s
    samples, chunk by chunk as ``plan_chunks`` cuts the window: the operator's own read
    loop, without an HTTP server."""

    def __init__(self, churn: Churn) -> None:
        self.churn = churn
        self.client = _NoClient()

    def resolver(self, *_: object, **__: object) -> WorkloadResolver:
        return WorkloadResolver()

    def chunks(
        self, ns: str, window: HistoryWindow, registry: ContainerRegistry, *_: object
    ) -> Iterator[UsageChunk]:
        for a, b in plan_chunks(window):
            yield self.churn.chunk(registry, a - window.step_s, b)


class _NoClient:
    def check(self) -> None:
        return None

    def close(self) -> None:
        return None
