"""Small builders shared by unit tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rightsizer.engine.usage import UsageChunk

NAN = float("nan")


def chunk(
    rows: Sequence[tuple[int, float, float, float] | tuple[int, float, float, float, bool]],
    container_of: Sequence[int] | None = None,
) -> UsageChunk:
    """Rows of (instance, timestamp, cpu cores, memory bytes[, oom])."""
    inst = np.asarray([r[0] for r in rows], dtype=np.int64)
    cont = inst if container_of is None else np.asarray(container_of, dtype=np.int64)[inst]
    return UsageChunk(
        container_id=cont,
        instance_id=inst,
        timestamp_s=np.asarray([r[1] for r in rows], dtype=np.float64),
        cpu_cores=np.asarray([r[2] for r in rows], dtype=np.float64),
        memory_bytes=np.asarray([r[3] for r in rows], dtype=np.float64),
        oom=np.asarray([bool(r[4]) if len(r) > 4 else False for r in rows]),  # type: ignore[misc]
    )


class FakeClock:
    """A clock for code that takes ``clock`` and ``sleep`` callables: sleeping moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
