"""Checkpoints of a policy's usage state, as compact bytes for one ConfigMap (pure).

Two formats. For the ``vpa`` strategy, upstream VPA's checkpoint per container
(``vpa-algorithm.md`` §1.8: histograms scaled so the heaviest bucket is 10000, first and
last sample, sample count). rightsizer adds each pod's open memory window (its end and
peaks), which upstream drops, so that a restart keeps today's peaks; and ``read_until_s``,
up to where usage has been read, so that a restarted operator reads only what came after.
gzip keeps 1,000 containers well under 1 MiB.

For rightsizer's other strategies, whose states are ``SnapshotState``s, the state's arrays
in a compressed ``.npz`` behind a small JSON header with the container keys and the
state's ``KIND``; the strategy rebuilds its state from them (``restore_state``), so this
module knows no strategy by name.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from rightsizer.engine.aggregation import OpenWindow, UsageAggregates
from rightsizer.engine.strategies.base import (
    RestoresSnapshots,
    SnapshotKindError,
    SnapshotState,
    Strategy,
    UsageState,
)
from rightsizer.engine.usage import ContainerRegistry

FORMAT_VERSION = 1
_SNAPSHOT_MAGIC = b"RSNPZ1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (corrupt, other format); start from history."""


@dataclass
class Restored:
    registry: ContainerRegistry
    state: UsageState
    read_until_s: float
    signature: str


def supports(state: UsageState) -> bool:
    return isinstance(state, UsageAggregates | SnapshotState)


def encode(
    registry: ContainerRegistry, state: UsageState, read_until_s: float, signature: str
) -> bytes:
    if isinstance(state, SnapshotState):
        return _encode_snapshot(registry, state, read_until_s, signature)
    if not isinstance(state, UsageAggregates):
        raise CheckpointError(f"no checkpoint format for {type(state).__name__}")
    return _encode_vpa(registry, state, read_until_s, signature)


def decode(blob: bytes, strategy: Strategy) -> Restored:
    if blob.startswith(_SNAPSHOT_MAGIC):
        return _decode_snapshot(blob, strategy)
    return _decode_vpa(blob, strategy)


def _encode_snapshot(
    registry: ContainerRegistry, state: SnapshotState, read_until_s: float, signature: str
) -> bytes:
    header = {
        "version": FORMAT_VERSION,
        "kind": state.KIND,
        "signature": signature,
        "readUntil": read_until_s,
        "containers": [list(k) for k in registry.containers],
        "instances": [list(k) for k in registry.instances],
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    buf = io.BytesIO()
    np.savez_compressed(buf, **state.snapshot())  # type: ignore[arg-type]
    return _SNAPSHOT_MAGIC + struct.pack(">I", len(raw)) + raw + buf.getvalue()


def _decode_snapshot(blob: bytes, strategy: Strategy) -> Restored:
    try:
        (size,) = struct.unpack(">I", blob[6:10])
        header = json.loads(blob[10 : 10 + size])
        arrays = dict(np.load(io.BytesIO(blob[10 + size :]), allow_pickle=False))
        registry = ContainerRegistry()
        for key in header["containers"]:
            registry.container_id((key[0], key[1], key[2]))
        for key in header["instances"]:
            registry.instance_id((key[0], key[1], key[2], key[3]))
        if not isinstance(strategy, RestoresSnapshots):
            raise SnapshotKindError(f"{strategy.name} keeps no snapshots")
        state = strategy.restore_state(str(header["kind"]), arrays)
    except SnapshotKindError:
        raise CheckpointError("the checkpoint was written for another strategy") from None
    except (KeyError, TypeError, ValueError, OSError, struct.error) as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from None
    return Restored(registry, state, float(header["readUntil"]), str(header.get("signature", "")))


def _encode_vpa(
    registry: ContainerRegistry, state: UsageAggregates, read_until_s: float, signature: str
) -> bytes:
    containers = []
    for cid, key in enumerate(registry.containers):
        if cid >= state.containers:
            break
        containers.append({"key": list(key), "vpa": state.save_checkpoint(cid)})
    windows = []
    for iid, ikey in enumerate(registry.instances):
        if iid >= state.window_end_s.shape[0] or not math.isfinite(state.window_end_s[iid]):
            continue
        windows.append(
            [list(ikey), float(state.window_end_s[iid]), float(state.usage_peak_bytes[iid]),
             float(state.oom_peak_bytes[iid]), float(state.last_memory_s[iid]),
             float(state.last_cpu_s[iid])]
        )  # fmt: skip
    doc = {
        "version": FORMAT_VERSION,
        "signature": signature,
        "readUntil": read_until_s,
        "containers": containers,
        "openWindows": windows,
    }
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)


def _decode_vpa(blob: bytes, strategy: Strategy) -> Restored:
    state = strategy.new_state()
    if not isinstance(state, UsageAggregates):
        raise CheckpointError("the checkpoint was written for another strategy")
    try:
        doc: dict[str, Any] = json.loads(gzip.decompress(blob))
    except (OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc}") from None
    if doc.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {doc.get('version')!r} is not {FORMAT_VERSION}")
    registry = ContainerRegistry()
    try:
        for item in doc["containers"]:
            ns, wl, c = item["key"]
            cid = registry.container_id((ns, wl, c))
            state.load_checkpoint(cid, item["vpa"])
        for key, end, usage, oom, last_mem, last_cpu in doc["openWindows"]:
            ns, wl, pod, c = key
            iid = registry.instance_id((ns, wl, pod, c))
            window = OpenWindow(end, usage, oom, last_mem, last_cpu)
            state.restore_open_window(iid, registry.instance_container[iid], window)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from None
    return Restored(registry, state, float(doc["readUntil"]), str(doc.get("signature", "")))
