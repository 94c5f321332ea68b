"""Kopf's start-up pre-indexing pattern alone, on Kopf's own ``ToggleSet``: one toggle
per object; each object's worker drops its toggle once indexed and waits for the whole
set (``kopf/_core/reactor/processing.py``), while objects arrive one per loop turn as
from a list. Why workloads are not ``@kopf.index``-ed (docs/design.md, "Workload cache").

    python bench/bench_kopf_startup.py [N ...]      (default: 500 1000 2000)
"""

from __future__ import annotations

import asyncio
import sys
import time

from kopf._cogs.aiokits.aiotoggles import Toggle, ToggleSet


async def start_up(n: int) -> float:
    toggles = ToggleSet(all)
    blocker = await toggles.make_toggle(name="orchestration blocker")

    async def worker(toggle: Toggle) -> None:
        await asyncio.sleep(0)  # indexing
        await toggles.drop_toggle(toggle)
        await toggles.wait_for(True)

    t0 = time.monotonic()
    tasks = []
    for i in range(n):
        toggle = await toggles.make_toggle(name=str(i))
        tasks.append(asyncio.create_task(worker(toggle)))
        await asyncio.sleep(0)  # the next object arrives from the stream
    await toggles.drop_toggle(blocker)
    await asyncio.gather(*tasks)
    return time.monotonic() - t0


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [500, 1000, 2000]:
        print(f"{n:>6} objects: {asyncio.run(start_up(n)):6.1f} s", flush=True)


if __name__ == "__main__":
    main()
