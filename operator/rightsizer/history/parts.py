"""Splitting a checkpoint over several ConfigMaps (pure).

The API server refuses a ConfigMap whose data exceed 1 MiB. A checkpoint larger than
``PART_BYTES`` is cut into parts: part 0 in the ConfigMap the status names, part ``i``
in ``<name>.part-<i>``. Part 0 is written last and carries the part count and the
SHA-256 of the whole, so a reader never joins parts of two different checkpoints: a
mismatch means "no checkpoint" (usage is then read again from the source).
"""

from __future__ import annotations

import hashlib

#: Bytes of checkpoint per ConfigMap: under the API server's 1 MiB limit on a ConfigMap's
#: data, with room to spare for its metadata within etcd's request limit.
PART_BYTES = 768 * 1024
#: More parts than this are not written (12 MiB): something is wrong, say so instead.
MAX_PARTS = 16
#: The name of a ConfigMap is at most this long.
MAX_NAME = 253


def split(blob: bytes, part_bytes: int = PART_BYTES) -> list[bytes]:
    """``blob`` in pieces of at most ``part_bytes`` (one piece, maybe empty, at least)."""
    if part_bytes <= 0:
        raise ValueError("part_bytes must be positive")
    return [blob[i : i + part_bytes] for i in range(0, len(blob), part_bytes)] or [b""]


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def join(parts: list[bytes], expected_digest: str | None) -> bytes | None:
    """The whole checkpoint, or None when the parts do not add up to ``expected_digest``."""
    blob = b"".join(parts)
    if expected_digest is not None and digest(blob) != expected_digest:
        return None
    return blob


def part_name(head: str, index: int) -> str:
    """The ConfigMap of part ``index`` (≥ 1); part 0 is ``head`` itself."""
    suffix = f".part-{index}"
    return head[: MAX_NAME - len(suffix)].rstrip("-.") + suffix
