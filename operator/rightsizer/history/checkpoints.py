"""Checkpoints of a policy's usage state, as compact bytes for one ConfigMap (pure).

Per container: upstream VPA's checkpoint (``vpa-algorithm.md`` §1.8: histograms scaled so
the heaviest bucket is 10000, first/last sample, sample count). rightsizer adds each pod's
open memory window (its end and peaks), which upstream drops, so that a restart keeps
today's peaks; and ``read_until_s``, up to where usage has been read, so that a restarted
operator reads only what came after. gzip keeps 1,000 containers well under 1 MiB.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from typing import Any

from rightsizer.engine.aggregation import AggregationSettings, UsageAggregates
from rightsizer.engine.usage import ContainerRegistry

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (corrupt, other format); start from history."""


@dataclass
class Restored:
    registry: ContainerRegistry
    state: UsageAggregates
    read_until_s: float
    signature: str


def encode(
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


def decode(blob: bytes, settings: AggregationSettings) -> Restored:
    try:
        doc: dict[str, Any] = json.loads(gzip.decompress(blob))
    except (OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc}") from None
    if doc.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {doc.get('version')!r} is not {FORMAT_VERSION}")
    registry = ContainerRegistry()
    state = UsageAggregates(settings)
    try:
        for item in doc["containers"]:
            ns, wl, c = item["key"]
            cid = registry.container_id((ns, wl, c))
            state.load_checkpoint(cid, item["vpa"])
        for key, end, usage, oom, last_mem, last_cpu in doc["openWindows"]:
            ns, wl, pod, c = key
            iid = registry.instance_id((ns, wl, pod, c))
            state.restore_open_window(
                iid, registry.instance_container[iid], end, usage, oom, last_mem, last_cpu
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from None
    return Restored(registry, state, float(doc["readUntil"]), str(doc.get("signature", "")))
