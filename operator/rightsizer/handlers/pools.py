"""Where reconciles run: bounded thread pools of their own, never Kopf's workers.

Kopf runs sync handlers — indexes, the probe if it were sync — in one executor; a
reconcile that waits on a slow Prometheus there starves them all. Reconciles run here
instead, in two bounded pools: one for policies whose sources behave, and a small
*quarantine* for policies whose last read hit a limit (deadline, response size), so
that however many such policies there are, they wait for each other and never for
the slots the others need. A policy leaves the quarantine with its first clean read.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, ThreadPoolExecutor


class ReconcilePools:
    def __init__(self, workers: int, quarantine_workers: int) -> None:
        if workers < 1 or quarantine_workers < 1:
            raise ValueError("reconcile pools need at least one worker each")
        self.main = ThreadPoolExecutor(workers, thread_name_prefix="reconcile")
        self.quarantine = ThreadPoolExecutor(quarantine_workers, thread_name_prefix="slow-source")
        self._quarantined: set[str] = set()
        self._lock = threading.Lock()

    def for_policy(self, uid: str) -> Executor:
        with self._lock:
            return self.quarantine if uid in self._quarantined else self.main

    def note(self, uid: str, *, hit_limit: bool) -> None:
        """Record how the policy's last read went."""
        with self._lock:
            if hit_limit:
                self._quarantined.add(uid)
            else:
                self._quarantined.discard(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._quarantined.discard(uid)

    def shutdown(self) -> None:
        self.main.shutdown(wait=False, cancel_futures=True)
        self.quarantine.shutdown(wait=False, cancel_futures=True)
