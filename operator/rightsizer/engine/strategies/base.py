"""What every strategy shares: the context it sizes in, and the final assembly step."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rightsizer.engine.buckets import FloatArray, IntArray
from rightsizer.engine.estimators import Estimates
from rightsizer.engine.policy import LimitRangeItem, SizingPolicy, merge_items
from rightsizer.engine.postprocess import Amount, Sized, apply_pod_limit_range, size_resource
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.usage import ContainerKey, ContainerRegistry, UsageChunk


class UsageState(Protocol):
    """What a strategy accumulates from samples; fed chunk by chunk, in time order."""

    def add(self, chunk: UsageChunk) -> None: ...


@dataclass(frozen=True)
class SizingContext:
    """What a recommendation is sized against besides usage."""

    policy: SizingPolicy = field(default_factory=SizingPolicy)
    current_requests: Mapping[ContainerKey, Resources] = field(default_factory=dict)
    current_limits: Mapping[ContainerKey, Resources] = field(default_factory=dict)
    limit_ranges: Mapping[str, list[LimitRangeItem]] = field(default_factory=dict)
    """LimitRange items per namespace; items under ``"*"`` apply in every namespace."""

    def limit_range_items(self, namespace: str) -> list[LimitRangeItem]:
        return [*self.limit_ranges.get("*", []), *self.limit_ranges.get(namespace, [])]


Arrays = Mapping[str, npt.NDArray[np.generic]]


@runtime_checkable
class SnapshotState(UsageState, Protocol):
    """A state that checkpoints as named arrays; ``KIND`` names its format."""

    KIND: ClassVar[str]

    def snapshot(self) -> dict[str, npt.NDArray[np.generic]]: ...


class SnapshotKindError(ValueError):
    """A snapshot of another kind of state than the strategy's own."""


@runtime_checkable
class RestoresSnapshots(Protocol):
    """A strategy whose state is a ``SnapshotState``: it rebuilds it from its arrays
    (raising ``SnapshotKindError`` for a snapshot of another kind)."""

    def restore_state(self, kind: str, arrays: Arrays) -> UsageState: ...


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def new_state(self) -> UsageState: ...

    def recommend(
        self, state: UsageState, registry: ContainerRegistry, context: SizingContext
    ) -> list[ContainerRecommendation]: ...


def containers_per_workload(registry: ContainerRegistry) -> IntArray:
    """For each container, how many containers its workload has (for per-pod minimums)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for ns, wl, _ in registry.containers:
        counts[(ns, wl)] += 1
    return np.asarray([counts[(ns, wl)] for ns, wl, _ in registry.containers], dtype=np.int64)


@dataclass(frozen=True)
class RawRecommendations:
    """A strategy's estimates for every registered container, before post-processing."""

    cpu: Estimates
    memory: Estimates
    cpu_samples: IntArray
    memory_samples: IntArray
    confidence: FloatArray
    peak_memory_bytes: FloatArray
    oom_kills: IntArray
    history_span_s: FloatArray | None = None
    unfloored_target: tuple[IntArray, IntArray] | None = None
    """(CPU millicores, memory bytes): the targets before the strategy's own floors (its
    minimum request or per-pod minimum), to count what floors cost; None: no floors."""


def finalize(
    raw: RawRecommendations, registry: ContainerRegistry, context: SizingContext
) -> list[ContainerRecommendation]:
    """Round, cap, apply LimitRanges and limit policies; one entry per container with
    samples, sorted by (namespace, workload, container)."""
    by_workload: dict[tuple[str, str], list[ContainerRecommendation]] = defaultdict(list)
    for cid, key in enumerate(registry.containers):
        if raw.cpu_samples[cid] == 0 and raw.memory_samples[cid] == 0 and raw.oom_kills[cid] == 0:
            continue
        by_workload[(key[0], key[1])].append(_container(raw, cid, key, context))
    result: list[ContainerRecommendation] = []
    for (ns, _), recs in by_workload.items():
        result.extend(_within_pod_limit_range(recs, context.limit_range_items(ns)))
    result.sort(key=lambda r: r.key)
    return result


def _container(
    raw: RawRecommendations, cid: int, key: tuple[str, str, str], context: SizingContext
) -> ContainerRecommendation:
    ns, workload, container = key
    container_lr = merge_items(context.limit_range_items(ns), "Container")
    req = context.current_requests.get(key, Resources())
    lim = context.current_limits.get(key, Resources())

    def sized(resource: str, est: Estimates, current: tuple[Amount, Amount]) -> Sized:
        estimate = (int(est.target[cid]), int(est.lower_bound[cid]), int(est.upper_bound[cid]))
        return size_resource(resource, estimate, current, context.policy, container_lr)

    cpu = sized("cpu", raw.cpu, (req.cpu_millicores, lim.cpu_millicores))
    mem = sized("memory", raw.memory, (req.memory_bytes, lim.memory_bytes))
    span = raw.history_span_s
    floor_added = Resources(0, 0)
    if raw.unfloored_target is not None:
        free_cpu, free_mem = raw.unfloored_target
        floor_added = Resources(
            max(0, int(raw.cpu.target[cid]) - int(free_cpu[cid])),
            max(0, int(raw.memory.target[cid]) - int(free_mem[cid])),
        )
    return ContainerRecommendation(
        namespace=ns, workload=workload, container=container,
        target=Resources(cpu.target, mem.target),
        lower_bound=Resources(cpu.lower_bound, mem.lower_bound),
        upper_bound=Resources(cpu.upper_bound, mem.upper_bound),
        uncapped_target=Resources(cpu.uncapped_target, mem.uncapped_target),
        limits=Resources(cpu.limit, mem.limit),
        cpu_samples=int(raw.cpu_samples[cid]), memory_samples=int(raw.memory_samples[cid]),
        confidence=float(raw.confidence[cid]), current_requests=req, current_limits=lim,
        peak_memory_bytes=float(raw.peak_memory_bytes[cid]), oom_kills=int(raw.oom_kills[cid]),
        history_span_s=0.0 if span is None else float(span[cid]), floor_added=floor_added,
    )  # fmt: skip


def _within_pod_limit_range(
    recs: list[ContainerRecommendation], items: list[LimitRangeItem]
) -> list[ContainerRecommendation]:
    """A workload's containers, their targets and limits scaled into a Pod LimitRange."""
    pod_lr = merge_items(items, "Pod")
    if pod_lr is None:
        return recs
    targets, limits = apply_pod_limit_range(
        [r.target for r in recs], [r.limits for r in recs], pod_lr
    )
    return [
        replace(r, target=t, limits=lim) for r, t, lim in zip(recs, targets, limits, strict=True)
    ]
