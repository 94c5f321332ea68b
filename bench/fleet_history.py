"""The scale benches' fleet and its history in Prometheus, streamed one UTC day at a time.

``Fleet`` is the benches' Deployments (one pod, one container each) with their usage
levels; ``Fleet.history`` is their per-minute usage as one samples frame (the model; the
reference for tests: it holds the whole history, so small fleets only).

``day_files`` writes the same history as OpenMetrics text, one file per UTC day, exactly
as ``rightsizer.dev.openmetrics`` renders ``Fleet.history`` (``with_cpu_counter``,
``split_days``, ``render`` with kube-state-metrics' series every 300 s): the same series,
labels, values and timestamps (tests/unit/test_bench_history.py compares the two). It
never holds more than one day: each Deployment's two random streams (CPU noise, memory
noise) are positioned at its start in one pass over the seed's draws, then each day draws
its slice of every stream; the cAdvisor CPU counter (a Kahan sum, as pandas' grouped
``cumsum``) carries over from one day to the next. The text is assembled per series with
C-level joins (values formatted with ``repr``, each series' label prefix once), and the
kube-state-metrics series, constant over a day, from one shared body per family.

``load_pipelined`` runs the writer in a thread while the caller loads the file before
(promtool, one file per day), so at most two day files are on disk at once.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any, TextIO

import numpy as np
import pandas as pd

from rightsizer.dev.openmetrics import (
    NODE,
    cadvisor_labels,
    ksm_container_labels,
    ksm_labels,
    pod_uid,
    replicaset_name,
)
from rightsizer.quantity import DAY_S

NAMESPACE = "bench"
SAFE = "bcdfghjklmnpqrstvwxz2456789"
MI = 2**20
CONTAINER = "app"
CPU_REQUEST, MEMORY_REQUEST, MEMORY_LIMIT = 0.25, 256.0 * MI, 512.0 * MI
#: kube-state-metrics' series: at most one sample per this many seconds (a KSM scrape).
STATE_INTERVAL_S = 300.0
#: The RNG seed of the usage noise and pod names.
HISTORY_SEED = 7


@dataclass(frozen=True)
class Fleet:
    """The benchmark's Deployments: one pod, one container each, with usage levels."""

    names: list[str]
    cpu_cores: np.ndarray
    memory_bytes: np.ndarray
    #: Each Deployment's namespace (all in NAMESPACE unless ``make`` spreads them).
    namespaces: list[str]

    @staticmethod
    def make(count: int, seed: int = 5, spaces: int = 1) -> Fleet:
        """``spaces`` > 1: Deployment i in namespace ``bench-{i % spaces:02d}``."""
        rng = np.random.default_rng(seed)
        width = len(str(count - 1))
        return Fleet(
            names=[f"svc-{i:0{width}d}" for i in range(count)],
            cpu_cores=rng.lognormal(-2.3, 0.8, count),
            memory_bytes=rng.lognormal(np.log(200e6), 0.6, count),
            namespaces=[
                NAMESPACE if spaces == 1 else f"{NAMESPACE}-{i % spaces:02d}" for i in range(count)
            ],
        )

    def deployment(self, i: int) -> dict[str, Any]:
        name = self.names[i]
        cpu_m = max(1, round(self.cpu_cores[i] * 1000))
        mem_mi = round(self.memory_bytes[i] / MI)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespaces[i], "labels": {"app": name}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {
                        "labels": {"app": name},
                        "annotations": {
                            "kwok.x-k8s.io/usage-cpu": f"{cpu_m}m",
                            "kwok.x-k8s.io/usage-memory": f"{mem_mi}Mi",
                        },
                    },
                    "spec": {
                        "containers": [{
                            "name": CONTAINER, "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                          "limits": {"memory": "512Mi"}},
                        }],
                        "terminationGracePeriodSeconds": 1,
                    },
                },
            },
        }  # fmt: skip

    def history(self, days: float, end_s: float, step_s: float = 60.0) -> pd.DataFrame:
        """Per-minute usage of each Deployment's pod (daily cycle, noise), ending at end_s;
        pod names as the ReplicaSet controller makes them, so kube-state-metrics' owner
        series lead to exactly these Deployments. The whole history in one frame: the
        model ``day_files`` streams, for small fleets (tests) only."""
        rng = np.random.default_rng(HISTORY_SEED)
        t, phase = clock(days, end_s, step_s)
        n = t.shape[0]
        frames = []
        for i, name in enumerate(self.names):
            ns = self.namespaces[i]
            pod = pod_name(rng, ns, name)
            cpu = self.cpu_cores[i] * (1 + 0.5 * phase) * rng.lognormal(0, 0.25, n)
            mem = self.memory_bytes[i] * (1 + 0.05 * phase) * rng.normal(1, 0.01, n)
            frames.append(pd.DataFrame({
                "timestamp": t, "namespace": ns, "workload": f"Deployment/{name}",
                "pod": pod, "container": CONTAINER, "cpu": np.round(np.clip(cpu, 0, None), 5),
                "memory": np.round(mem), "cpu_request": CPU_REQUEST, "cpu_limit": np.nan,
                "memory_request": MEMORY_REQUEST, "memory_limit": MEMORY_LIMIT, "oom": False,
            }))  # fmt: skip
        return pd.concat(frames, ignore_index=True)


def clock(days: float, end_s: float, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The sample times of a history ending at end_s, and the daily cycle's phase."""
    n = int(days * 86400 / step_s)
    t = end_s - (n - 1 - np.arange(n)) * step_s
    return t, np.sin(2 * np.pi * (t % 86400) / 86400)


def pod_name(rng: np.random.Generator, namespace: str, deployment: str) -> str:
    return f"{replicaset_name(namespace, deployment)}-" + "".join(rng.choice(list(SAFE), 5))


def _fork(rng: np.random.Generator) -> np.random.Generator:
    """A generator that draws what rng would draw next."""
    copy = np.random.Generator(np.random.PCG64(0))
    copy.bit_generator.state = rng.bit_generator.state
    return copy


@dataclass
class _Streams:
    """Each Deployment's pod name and its two noise streams, positioned at their start."""

    pods: list[str]
    cpu: list[np.random.Generator]
    memory: list[np.random.Generator]

    @staticmethod
    def start(fleet: Fleet, n: int) -> _Streams:
        """One pass over the seed's draws in ``Fleet.history``'s order: the CPU noise of a
        Deployment is its n lognormal draws, its memory noise the n normal ones after."""
        rng = np.random.default_rng(HISTORY_SEED)
        streams = _Streams([], [], [])
        for ns, name in zip(fleet.namespaces, fleet.names, strict=True):
            streams.pods.append(pod_name(rng, ns, name))
            streams.cpu.append(_fork(rng))
            rng.lognormal(0, 0.25, n)
            streams.memory.append(_fork(rng))
            rng.normal(1, 0.01, n)
        return streams


def _thin(ts: np.ndarray, interval_s: float) -> np.ndarray:
    """At most one time per interval (the first of each), plus the last (as render)."""
    if ts.shape[0] < 2:
        return ts
    bucket = np.floor(ts / interval_s)
    keep = np.concatenate([[True], bucket[1:] != bucket[:-1]])
    keep[-1] = True
    return ts[keep]


def _stamps(ts: np.ndarray) -> list[str]:
    """`` <timestamp>\\n`` line ends, the timestamps as render writes them."""
    return [f" {s!r}\n" for s in np.round(ts, 3).tolist()]


def _body(values: np.ndarray, ends: list[str]) -> list[str]:
    """``value ts\\n`` per sample, the values as ``repr`` writes them."""
    if values.size and (values == np.rint(values)).all() and (np.abs(values) < 1e15).all():
        # Whole numbers (bytes): an int's str is cheaper than a float's repr, the same text.
        ends = [".0" + e for e in ends]
        return list(map(str.__add__, map(str, values.astype(np.int64).tolist()), ends))
    return list(map(str.__add__, map(repr, values.tolist()), ends))


def _series(prefix: str, body: list[str]) -> str:
    """One series' lines: ``prefix`` (name, labels, space) before each ``value ts\\n``."""
    return prefix + prefix.join(body) if body else ""


def _kahan_cumsum(x: np.ndarray, acc: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """Running sums along axis 1 from (acc, comp), which are updated: pandas' grouped
    ``cumsum`` (Kahan-compensated), one row per series, bit for bit."""
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        y = x[:, j] - comp
        s = acc + y
        comp[:] = (s - acc) - y
        acc[:] = s
        out[:, j] = s
    return out


@dataclass
class _Prefixes:
    """Each container's series prefixes (name, labels, a space), in render's order."""

    cpu: list[str] = field(default_factory=list)
    memory: list[str] = field(default_factory=list)
    pod_owner: list[str] = field(default_factory=list)
    replicaset_owner: list[str] = field(default_factory=list)
    cpu_request: list[str] = field(default_factory=list)
    memory_request: list[str] = field(default_factory=list)
    memory_limit: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)

    @staticmethod
    def of(fleet: Fleet, pods: list[str], order: list[int]) -> _Prefixes:
        p = _Prefixes()
        for i in order:
            ns, name, pod = fleet.namespaces[i], fleet.names[i], pods[i]
            cadvisor = cadvisor_labels(ns, pod, CONTAINER)
            p.cpu.append(f"container_cpu_usage_seconds_total{cadvisor} ")
            p.memory.append(f"container_memory_working_set_bytes{cadvisor} ")
            rs = replicaset_name(ns, name)
            owner = ksm_labels(namespace=ns, owner_is_controller="true", owner_kind="ReplicaSet",
                               owner_name=rs, pod=pod, uid=pod_uid(ns, pod))  # fmt: skip
            p.pod_owner.append(f"kube_pod_owner{owner} ")
            rs_owner = ksm_labels(namespace=ns, owner_is_controller="true",
                                  owner_kind="Deployment", owner_name=name,
                                  replicaset=rs)  # fmt: skip
            p.replicaset_owner.append(f"kube_replicaset_owner{rs_owner} ")
            for target, family, resource_, unit in (
                (p.cpu_request, "kube_pod_container_resource_requests", "cpu", "core"),
                (p.memory_request, "kube_pod_container_resource_requests", "memory", "byte"),
                (p.memory_limit, "kube_pod_container_resource_limits", "memory", "byte"),
            ):
                labels = ksm_container_labels(ns, pod, CONTAINER, node=NODE,
                                              resource=resource_, unit=unit)  # fmt: skip
                target.append(f"{family}{labels} ")
            restarts = ksm_container_labels(ns, pod, CONTAINER)
            p.restarts.append(f"kube_pod_container_status_restarts_total{restarts} ")
        return p


def day_files(
    fleet: Fleet, days: float, end_s: float, out: Path, step_s: float = 60.0
) -> Iterator[Path]:
    """``Fleet.history(days, end_s, step_s)`` as OpenMetrics files, one per UTC day, in
    order, each written before it is yielded; render's text with kube-state-metrics'
    series every ``STATE_INTERVAL_S``."""
    out.mkdir(parents=True, exist_ok=True)
    t, phase = clock(days, end_s, step_s)
    n = t.shape[0]
    if n == 0:
        return
    streams = _Streams.start(fleet, n)
    # render's order: by namespace, workload, pod (one container each).
    order = sorted(range(len(fleet.names)),
                   key=lambda i: (fleet.namespaces[i], f"Deployment/{fleet.names[i]}",
                                  streams.pods[i]))  # fmt: skip
    prefixes = _Prefixes.of(fleet, streams.pods, order)
    cores = fleet.cpu_cores[order][:, None]
    memory = fleet.memory_bytes[order][:, None]
    # with_cpu_counter: each rate over the interval it ends, the first over the median step.
    steps = np.diff(t)
    dt = np.concatenate([[float(np.median(steps)) if steps.size else 60.0], steps])
    acc, comp = np.zeros(len(order)), np.zeros(len(order))
    day = np.floor(t / DAY_S)
    cuts = [0, *(np.flatnonzero(day[1:] != day[:-1]) + 1).tolist(), n]
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        path = out / f"day-{k:02d}.om"
        ends = _stamps(t[a:b])
        with path.open("w", buffering=1 << 22) as fh:
            noise = np.stack([streams.cpu[i].lognormal(0, 0.25, b - a) for i in order])
            cpu = np.round(np.clip(cores * (1 + 0.5 * phase[a:b]) * noise, 0, None), 5)
            del noise
            counter = _kahan_cumsum(cpu * dt[a:b], acc, comp)
            del cpu
            # The counter's 0 one interval before its first sample (first day only).
            first = [f"0.0 {float(np.round(t[0] - dt[0], 3))!r}\n"] if k == 0 else []
            fh.write("# TYPE container_cpu_usage_seconds counter\n")
            for row, prefix in enumerate(prefixes.cpu):
                fh.write(_series(prefix, first + _body(counter[row], ends)))
            del counter
            noise = np.stack([streams.memory[i].normal(1, 0.01, b - a) for i in order])
            mem = np.round(memory * (1 + 0.05 * phase[a:b]) * noise)
            del noise
            fh.write("# TYPE container_memory_working_set_bytes gauge\n")
            for row, prefix in enumerate(prefixes.memory):
                fh.write(_series(prefix, _body(mem[row], ends)))
            del mem
            _write_state(fh, prefixes, _thin(t[a:b], STATE_INTERVAL_S))
            fh.write("# EOF\n")
        yield path


def _write_state(fh: TextIO, p: _Prefixes, ts: np.ndarray) -> None:
    """kube-state-metrics' families: the same values at the same times for every container."""
    ends = _stamps(ts)

    def each(prefixes: list[str], value: float) -> Iterator[str]:
        body = _body(np.full(len(ends), value), ends)
        return (_series(prefix, body) for prefix in prefixes)

    fh.write("# TYPE kube_pod_owner gauge\n")
    fh.writelines(each(p.pod_owner, 1.0))
    fh.write("# TYPE kube_replicaset_owner gauge\n")
    fh.writelines(each(p.replicaset_owner, 1.0))
    fh.write("# TYPE kube_pod_container_resource_requests gauge\n")
    cpu, mem = (
        _body(np.full(len(ends), CPU_REQUEST), ends),
        _body(np.full(len(ends), MEMORY_REQUEST), ends),
    )
    for cpu_prefix, mem_prefix in zip(p.cpu_request, p.memory_request, strict=True):
        fh.write(_series(cpu_prefix, cpu))
        fh.write(_series(mem_prefix, mem))
    fh.write("# TYPE kube_pod_container_resource_limits gauge\n")
    fh.writelines(each(p.memory_limit, MEMORY_LIMIT))
    fh.write("# TYPE kube_pod_container_status_last_terminated_reason gauge\n")
    fh.write("# TYPE kube_pod_container_status_restarts counter\n")
    fh.writelines(each(p.restarts, 0.0))


# ------------------------------------------------------------------ writing while loading
@dataclass
class Pipeline:
    """What ``load_pipelined`` measured."""

    files: int = 0
    bytes: int = 0
    #: Seconds the writer spent on the files, and the loader (wall).
    write_s: float = 0.0
    load_s: float = 0.0
    #: CPU seconds of the writer thread, and of the loader's child processes (promtool).
    write_cpu_s: float = 0.0
    load_cpu_s: float = 0.0
    wall_s: float = 0.0
    #: Peak RSS of this process (``ru_maxrss``) when done, MiB.
    peak_rss_mib: float = 0.0
    #: The history's last sample time (set by the caller).
    end_s: float = 0.0


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished (waited for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_pipelined(
    files: Iterator[Path], load: Callable[[Path], object], on_disk: int = 2,
    log: Callable[[str], None] | None = None,
) -> Pipeline:  # fmt: skip
    """Load each file of ``files`` (in order) and delete it, the next one being written by
    a thread meanwhile; at most ``on_disk`` files exist at once."""
    stats = Pipeline()
    slots = threading.Semaphore(on_disk)
    ready: Queue[Path | BaseException | None] = Queue()
    stop = threading.Event()

    def write() -> None:
        try:
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                t0, cpu0 = time.monotonic(), time.thread_time()
                path = next(files, None)
                stats.write_s += time.monotonic() - t0
                stats.write_cpu_s += time.thread_time() - cpu0
                ready.put(path)
                if path is None:
                    return
        except BaseException as exc:  # handed to the loading thread
            ready.put(exc)

    t_start = time.monotonic()
    writer = threading.Thread(target=write, name="history-writer", daemon=True)
    writer.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            t0, children0 = time.monotonic(), _children_cpu_s()
            size = item.stat().st_size
            load(item)
            stats.load_s += time.monotonic() - t0
            stats.load_cpu_s += _children_cpu_s() - children0
            stats.files += 1
            stats.bytes += size
            item.unlink()
            slots.release()
            if log is not None:
                log(f"  {item.name}: {size / 2**30:.2f} GiB loaded in {time.monotonic() - t0:.0f}s"
                    f" (so far: writing {stats.write_s:.0f}s, {stats.write_cpu_s:.0f}s CPU; "
                    f"loading {stats.load_s:.0f}s, {stats.load_cpu_s:.0f}s CPU)")  # fmt: skip
    finally:
        stop.set()
        slots.release()
        writer.join()
    stats.wall_s = time.monotonic() - t_start
    stats.peak_rss_mib = peak_rss_mib()
    return stats
