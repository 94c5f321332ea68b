"""A Prometheus failure in the middle of a read: the next reconcile resumes after the
last chunk that was added — no sample counted twice, none skipped (reconcile with a
scripted history port; the real Prometheus is in the e2e tests)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

from rightsizer.controller.reconcile import Ports, ReconcileInput, reconcile
from rightsizer.engine.recommendation import Resources
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.model.workloads import ContainerResources, PolicyInfo, WorkloadInfo
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.errors import SourceProblem, SourceUnavailableError
from rightsizer.sources.prometheus_history import HistoryWindow, plan_chunks

NOW = 1_800_000_000.0
SPEC = {"source": {"prometheus": {"url": "http://prometheus:9090", "history": "1d",
                                  "step": "1m"}, "metricsServer": {"enabled": False}}}  # fmt: skip


class ScriptedHistory:
    """Yields one sample per minute of each chunk; fails before chunk ``fail_at``."""

    def __init__(self, fail_at: int | None, read: list[float]) -> None:
        self.client = SimpleNamespace(close=lambda: None, check=lambda: None)
        self.fail_at, self.read = fail_at, read

    def resolver(self, *_: Any, **__: Any) -> WorkloadResolver:
        return WorkloadResolver()

    def chunks(
        self, ns: str, window: HistoryWindow, registry: ContainerRegistry, *_: Any
    ) -> Iterator[UsageChunk]:
        inst = registry.instance_id((ns, "Deployment/web", "web-6d4cf56db6-x2x7k", "app"))
        cid = registry.instance_container[inst]
        for k, (a, b) in enumerate(plan_chunks(window)):
            if k == self.fail_at:
                raise SourceUnavailableError("Prometheus went away")
            t = np.arange(a, b + 1, window.step_s)
            self.read.extend(t.tolist())
            n = t.shape[0]
            yield UsageChunk(np.full(n, cid), np.full(n, inst), t, np.full(n, 0.1),
                             np.full(n, 1e8), np.zeros(n, dtype=bool))  # fmt: skip


def test_a_read_broken_midway_resumes_after_the_last_complete_chunk() -> None:
    policy = PolicyInfo("shop", "p", "uid", "2026-01-01T00:00:00Z", SPEC)
    app = ContainerResources("app", Resources(500, 2**29), Resources())
    web = WorkloadInfo("Deployment", "shop", "web", "w", {}, {}, 1, (app,))
    read: list[float] = []
    runtime = None
    for fail_at, now in ((2, NOW), (None, NOW + 120)):
        history = ScriptedHistory(fail_at, read)
        ports = Ports(prometheus=lambda src, ns, h=history: h)  # type: ignore[misc]
        outcome, runtime = reconcile(
            ReconcileInput(policy, 1, {}, [web], [], [], now), runtime, ports
        )
        if fail_at is not None:
            # the fixed message of the error's kind, never its text
            assert outcome.source_error == SourceProblem.UNAVAILABLE.value
    assert runtime is not None and runtime.state is not None
    times = np.array(read)
    assert np.all(np.diff(times) == 60.0)  # contiguous: no overlap, no gap
    assert times[0] > NOW - 86400 and times[-1] == NOW + 120
    samples = runtime.state.cpu_samples  # type: ignore[attr-defined]
    assert int(samples.sum()) == len(read)
