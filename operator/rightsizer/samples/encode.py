"""From a samples frame to the engine's integer-keyed, time-ordered chunks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from rightsizer.engine.recommendation import Resources
from rightsizer.engine.usage import ContainerKey, ContainerRegistry, UsageChunk

DEFAULT_CHUNK_ROWS = 2_000_000


def _instance_ids(frame: pd.DataFrame, registry: ContainerRegistry) -> np.ndarray:
    keys = ["namespace", "workload", "pod", "container"]
    codes, uniques = pd.MultiIndex.from_frame(frame[keys]).factorize()
    lookup = np.asarray([registry.instance_id(tuple(u)) for u in uniques], dtype=np.int64)
    result: np.ndarray = lookup[codes]
    return result


def encode(
    frame: pd.DataFrame, registry: ContainerRegistry, *, cpu_whole_millicores: bool = False
) -> UsageChunk:
    """One chunk for the whole frame (ids registered as needed), in time order.

    ``cpu_whole_millicores``: the frame's CPU is already whole millicores (metrics-server);
    see ``UsageChunk``. On OOM rows without a memory figure the row's memory request is
    used, as upstream VPA uses the request for OOMs seen in container status.
    """
    frame = frame.sort_values("timestamp", kind="stable")
    instance = _instance_ids(frame, registry)
    containers = np.asarray(registry.instance_container, dtype=np.int64)
    oom = frame["oom"].to_numpy(dtype=bool)
    memory = frame["memory"].to_numpy(dtype=np.float64).copy()
    fill = oom & np.isnan(memory)
    memory[fill] = frame["memory_request"].to_numpy(dtype=np.float64)[fill]
    return UsageChunk(
        container_id=containers[instance] if instance.shape[0] else instance,
        instance_id=instance,
        timestamp_s=frame["timestamp"].to_numpy(dtype=np.float64),
        cpu_cores=frame["cpu"].to_numpy(dtype=np.float64),
        memory_bytes=memory,
        oom=oom,
        cpu_whole_millicores=cpu_whole_millicores,
    )


def iter_chunks(
    frame: pd.DataFrame, registry: ContainerRegistry, rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[UsageChunk]:
    """Time-ordered chunks of at most ``rows`` samples."""
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    for start in range(0, len(frame), rows):
        yield encode(frame.iloc[start : start + rows], registry)


def current_resources(
    frame: pd.DataFrame,
) -> tuple[dict[ContainerKey, Resources], dict[ContainerKey, Resources]]:
    """The latest requests and limits each container was seen with (cores → millicores)."""
    keys = ["namespace", "workload", "container"]
    cols = ["cpu_request", "cpu_limit", "memory_request", "memory_limit"]
    if frame[cols].isna().all().all():
        return {}, {}
    latest = frame.sort_values("timestamp", kind="stable").groupby(keys, sort=False)[cols].last()
    requests: dict[ContainerKey, Resources] = {}
    limits: dict[ContainerKey, Resources] = {}
    for index, row in latest.iterrows():
        parts = [str(part) for part in index]  # type: ignore[attr-defined]
        key: ContainerKey = (parts[0], parts[1], parts[2])
        requests[key] = Resources(_millicores(row["cpu_request"]), _bytes(row["memory_request"]))
        limits[key] = Resources(_millicores(row["cpu_limit"]), _bytes(row["memory_limit"]))
    return requests, limits


def _millicores(cores: float) -> int | None:
    return None if pd.isna(cores) else int(np.ceil(round(cores * 1000.0, 6)))


def _bytes(value: float) -> int | None:
    return None if pd.isna(value) else int(np.ceil(value))
