"""Usage chunks: the engine's columnar, integer-keyed view of samples.

Sources and the samples layer turn text keys into integer ids once (``ContainerRegistry``);
the engine then works on plain arrays. A chunk holds samples of many containers; chunks
are fed in time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rightsizer.engine.buckets import BoolArray, FloatArray, IntArray

#: (namespace, "Kind/name", container) — what a recommendation is made for.
ContainerKey = tuple[str, str, str]
#: (namespace, "Kind/name", pod, container) — one running instance of a container.
InstanceKey = tuple[str, str, str, str]


@dataclass
class ContainerRegistry:
    """Integer ids for containers (recommendation units) and their instances (pods)."""

    containers: list[ContainerKey] = field(default_factory=list)
    instances: list[InstanceKey] = field(default_factory=list)
    instance_container: list[int] = field(default_factory=list)
    _container_ids: dict[ContainerKey, int] = field(default_factory=dict)
    _instance_ids: dict[InstanceKey, int] = field(default_factory=dict)

    def container_id(self, key: ContainerKey) -> int:
        cid = self._container_ids.get(key)
        if cid is None:
            cid = self._container_ids[key] = len(self.containers)
            self.containers.append(key)
        return cid

    def instance_id(self, key: InstanceKey) -> int:
        iid = self._instance_ids.get(key)
        if iid is None:
            iid = self._instance_ids[key] = len(self.instances)
            self.instances.append(key)
            self.instance_container.append(self.container_id((key[0], key[1], key[3])))
        return iid

    def find_container(self, key: ContainerKey) -> int | None:
        return self._container_ids.get(key)


@dataclass(frozen=True)
class UsageChunk:
    """Samples of many containers, as parallel arrays of equal length.

    ``cpu_cores``/``memory_bytes`` are NaN where not measured. ``oom`` marks OOM kills;
    on such rows ``memory_bytes`` is the memory reported at the kill (or the request),
    not a usage sample. ``weight`` is how many samples at the base resolution a row stands
    for (history read at a coarser step); ``None`` means one each.

    ``cpu_whole_millicores`` says the source already rounded CPU to whole millicores
    (metrics-server: upstream's ``Quantity.MilliValue()`` rounds up); otherwise ``cpu_cores``
    are raw floats, which the ``vpa`` strategy truncates to millicores as upstream's
    ``CPUAmountFromCores`` does on its Prometheus path.
    """

    container_id: IntArray
    instance_id: IntArray
    timestamp_s: FloatArray
    cpu_cores: FloatArray
    memory_bytes: FloatArray
    oom: BoolArray
    weight: FloatArray | None = None
    cpu_whole_millicores: bool = False

    def __post_init__(self) -> None:
        n = self.timestamp_s.shape[0]
        for name in ("container_id", "instance_id", "cpu_cores", "memory_bytes", "oom"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"UsageChunk.{name} must have shape ({n},)")
        if self.weight is not None and (
            self.weight.shape != (n,) or not bool(np.all(self.weight > 0))
        ):
            raise ValueError(f"UsageChunk.weight must be positive with shape ({n},)")

    def weights(self, index: BoolArray | None = None) -> FloatArray | float:
        """Sample weights of the rows ``index`` selects (1.0 when unweighted)."""
        if self.weight is None:
            return 1.0
        return self.weight if index is None else self.weight[index]

    def counts(self, index: BoolArray) -> IntArray:
        """Whole-sample counts of the selected rows, for integer sample counters."""
        if self.weight is None:
            return np.ones(int(np.count_nonzero(index)), dtype=np.int64)
        return np.rint(self.weight[index]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.timestamp_s.shape[0])

    def time_ordered(self) -> UsageChunk:
        """The same samples sorted by time (stable), a no-op when already sorted."""
        ts = self.timestamp_s
        if ts.shape[0] < 2 or bool(np.all(ts[1:] >= ts[:-1])):
            return self
        order = np.argsort(ts, kind="stable")
        return self.take(order)

    def take(self, index: IntArray | BoolArray) -> UsageChunk:
        return UsageChunk(
            self.container_id[index],
            self.instance_id[index],
            self.timestamp_s[index],
            self.cpu_cores[index],
            self.memory_bytes[index],
            self.oom[index],
            None if self.weight is None else self.weight[index],
            self.cpu_whole_millicores,
        )
