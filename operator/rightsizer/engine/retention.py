"""Forgetting pods and containers that are gone, so that state stays bounded under churn.

Upstream VPA forgets a pod's state when the pod is deleted, keeps what it contributed in
the per-container aggregate, and garbage-collects an aggregate once its last sample is
``memory-aggregation-interval × count`` old (``vpa-algorithm.md`` §1 "Loop", §1.3).
rightsizer does the same on its integer ids:

* a **pod** (an instance: pod × container) is forgotten when it has had no sample for
  ``pod_idle_s``, or when it is no longer in the cluster and has had no sample for
  ``gone_grace_s``. What it contributed stays: the ``vpa`` state closes its open memory
  window into the histogram first (``UsageAggregates.close_windows``); the other
  strategies keep nothing per pod;
* a **container** that no workload template has any more is forgotten once its last
  sample is ``container_expiry_s`` old — with everything it learnt, as upstream drops an
  expired aggregate.

Forgetting renumbers the ids (the registry and the state keep the survivors in order), so
arrays shrink. Times are the data's, never the clock's: "now" is how far usage has been
read. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from rightsizer.engine.aggregation import AggregationSettings
from rightsizer.engine.buckets import FloatArray, IntArray
from rightsizer.engine.strategies.vpa import VpaStrategy
from rightsizer.engine.usage import ContainerKey, ContainerRegistry, UsageChunk
from rightsizer.quantity import DAY_S


@dataclass(frozen=True)
class RetentionSettings:
    """When pods and containers are forgotten."""

    pod_idle_s: float = DAY_S
    """A pod without samples for this long is forgotten. At least one memory aggregation
    interval (24 h), so forgetting never changes a recommendation: a later sample would
    open a new memory window anyway."""
    gone_grace_s: float = 900.0
    """A pod no longer in the cluster is forgotten once it has had no sample for this long
    (longer than a scrape interval and a read's lag, so no sample of it is still unread)."""
    container_expiry_s: float = 8 * DAY_S
    """A container no workload template has is forgotten once its last sample is this old
    (upstream: memory-aggregation-interval × count = 24 h × 8)."""

    def __post_init__(self) -> None:
        if min(self.pod_idle_s, self.gone_grace_s, self.container_expiry_s) <= 0:
            raise ValueError("retention times must be positive")

    @classmethod
    def of(cls, strategy: object) -> RetentionSettings:
        """The ``vpa`` strategy's own aggregation settings say when (as upstream's flags);
        the defaults for the others."""
        if isinstance(strategy, VpaStrategy):
            return cls.of_aggregation(strategy.aggregation)
        return cls()

    @classmethod
    def of_aggregation(cls, aggregation: AggregationSettings) -> RetentionSettings:
        interval = aggregation.memory_aggregation_interval_s
        return cls(
            pod_idle_s=interval,
            container_expiry_s=interval * aggregation.memory_aggregation_interval_count,
        )


@runtime_checkable
class ForgettingState(Protocol):
    """A usage state that can drop containers and instances."""

    def keep(
        self, containers: IntArray, instances: IntArray, instance_container: IntArray
    ) -> None: ...


def _grown(array: FloatArray, size: int) -> FloatArray:
    if array.shape[0] >= size:
        return array
    grown: FloatArray = np.concatenate([array, np.full(size - array.shape[0], np.nan)])
    return grown


@dataclass
class LastSeen:
    """When each container and each instance last had a sample (NaN: not yet)."""

    container_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    instance_s: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def assumed(cls, registry: ContainerRegistry, seen_s: float) -> LastSeen:
        """After a restore: everything counts as seen at ``seen_s`` (how far usage was read)."""
        return cls(
            np.full(len(registry.containers), seen_s), np.full(len(registry.instances), seen_s)
        )

    def cover(self, containers: int, instances: int, seen_s: float) -> None:
        """Ids registered without a sample yet count as seen at ``seen_s`` from now on."""
        self.container_s = np.nan_to_num(_grown(self.container_s, containers), nan=seen_s)
        self.instance_s = np.nan_to_num(_grown(self.instance_s, instances), nan=seen_s)

    def note(self, chunk: UsageChunk) -> None:
        if len(chunk) == 0:
            return
        self.container_s = _grown(self.container_s, int(chunk.container_id.max()) + 1)
        self.instance_s = _grown(self.instance_s, int(chunk.instance_id.max()) + 1)
        np.fmax.at(self.container_s, chunk.container_id, chunk.timestamp_s)
        np.fmax.at(self.instance_s, chunk.instance_id, chunk.timestamp_s)


@dataclass(frozen=True)
class Forgetting:
    """Which ids survive (old ids, ascending) and how many go."""

    containers: IntArray
    instances: IntArray
    dropped_containers: int
    dropped_instances: int

    @property
    def anything(self) -> bool:
        return self.dropped_containers > 0 or self.dropped_instances > 0


@dataclass(frozen=True)
class Present:
    """What exists in the cluster now."""

    template_containers: Collection[ContainerKey]
    """The containers that workload templates have now."""
    live_pods: Collection[tuple[str, str]] | None
    """(namespace, pod) of the pods in the cluster; ``None`` when unknown (then only
    idleness counts)."""


def plan(
    registry: ContainerRegistry,
    seen: LastSeen,
    now_s: float,
    present: Present,
    settings: RetentionSettings,
) -> Forgetting:
    """What to forget at ``now_s`` (how far usage has been read), given what is
    ``present``. Ids without a time in ``seen`` are kept.
    """
    n_c, n_i = len(registry.containers), len(registry.instances)
    container_s = np.nan_to_num(_grown(seen.container_s, n_c)[:n_c], nan=now_s)
    instance_s = np.nan_to_num(_grown(seen.instance_s, n_i)[:n_i], nan=now_s)
    in_template = np.fromiter(
        (key in present.template_containers for key in registry.containers), dtype=bool, count=n_c
    )
    keep_c = in_template | (now_s - container_s < settings.container_expiry_s)
    keep_i = now_s - instance_s < settings.pod_idle_s
    live_pods = present.live_pods
    if live_pods is not None:
        live = np.fromiter(
            ((ns, pod) in live_pods for ns, _, pod, _ in registry.instances), dtype=bool, count=n_i
        )
        keep_i &= live | (now_s - instance_s < settings.gone_grace_s)
    owner = np.asarray(registry.instance_container, dtype=np.int64)
    if n_i:
        keep_i &= keep_c[owner]
    return Forgetting(
        np.flatnonzero(keep_c), np.flatnonzero(keep_i), int(n_c - keep_c.sum()),
        int(n_i - keep_i.sum()),
    )  # fmt: skip


def forget(
    registry: ContainerRegistry, state: object, seen: LastSeen, forgetting: Forgetting
) -> ContainerRegistry:
    """Apply ``forgetting`` to ``state`` and ``seen`` (in place); returns the new registry
    (the same one, untouched, for a state that cannot forget)."""
    if not isinstance(state, ForgettingState):
        return registry
    kept = ContainerRegistry()
    for cid in forgetting.containers.tolist():
        kept.container_id(registry.containers[cid])
    for iid in forgetting.instances.tolist():
        kept.instance_id(registry.instances[iid])
    state.keep(
        forgetting.containers,
        forgetting.instances,
        np.asarray(kept.instance_container, dtype=np.int64),
    )
    n_c, n_i = len(registry.containers), len(registry.instances)
    seen.container_s = _grown(seen.container_s, n_c)[forgetting.containers]
    seen.instance_s = _grown(seen.instance_s, n_i)[forgetting.instances]
    return kept


def collect_garbage(
    registry: ContainerRegistry,
    state: object,
    seen: LastSeen,
    now_s: float,
    present: Present,
    settings: RetentionSettings,
) -> tuple[ContainerRegistry, Forgetting]:
    """Plan and forget in one step; returns the registry to use from now on."""
    seen.cover(len(registry.containers), len(registry.instances), now_s)
    forgetting = plan(registry, seen, now_s, present, settings)
    if forgetting.anything:
        registry = forget(registry, state, seen, forgetting)
    return registry, forgetting
