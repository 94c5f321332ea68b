"""A sample weighted ``w`` counts as ``w`` samples: what tiered bootstrap relies on."""

from __future__ import annotations

import numpy as np
import pytest

from rightsizer.engine.strategies import build_strategy
from rightsizer.engine.strategies.base import SizingContext
from rightsizer.engine.usage import ContainerRegistry, UsageChunk

WEIGHT = 5


def _chunk(
    pods: int, cpu: list[float], mem: list[float], weight: float | None
) -> tuple[ContainerRegistry, UsageChunk]:
    """``len(cpu)`` time points; each value at each point for ``pods`` pods."""
    registry = ContainerRegistry()
    rows = []
    for p in range(pods):
        inst = registry.instance_id(("ns", "Deployment/app", f"app-{p}", "c"))
        for i, (c, m) in enumerate(zip(cpu, mem, strict=True)):
            rows.append((registry.instance_container[inst], inst, 1.8e9 + 300 * i, c, m))
    a = np.array(rows)
    n = a.shape[0]
    return registry, UsageChunk(
        a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3], a[:, 4],
        np.zeros(n, dtype=bool), None if weight is None else np.full(n, weight),
    )  # fmt: skip


@pytest.mark.parametrize("name", ["vpa", "headroom", "percentile"])
def test_one_weighted_pod_equals_that_many_identical_pods(name: str) -> None:
    """``WEIGHT`` pods with identical usage are ``WEIGHT`` samples per point for every
    strategy (VPA keeps one memory peak per pod, so memory is compared on targets)."""
    rng = np.random.default_rng(7)
    cpu = list(rng.lognormal(-1.5, 0.6, 300))
    mem = list(rng.lognormal(np.log(3e8), 0.2, 300))
    strategy, sizing = build_strategy(name)
    results = []
    for pods, weight in ((WEIGHT, None), (1, float(WEIGHT))):
        registry, chunk = _chunk(pods, cpu, mem, weight)
        state = strategy.new_state()
        state.add(chunk)
        (rec,) = strategy.recommend(state, registry, SizingContext(policy=sizing))
        results.append(rec)
    many, weighted = results
    assert weighted.target == many.target
    assert weighted.cpu_samples == many.cpu_samples == WEIGHT * 300
    assert weighted.confidence == pytest.approx(many.confidence)
    if name != "vpa":  # vpa counts memory peaks per pod, not samples
        assert weighted.memory_samples == many.memory_samples


def test_weights_must_be_positive_and_aligned() -> None:
    _, chunk = _chunk(1, [0.1, 0.2], [1e8, 1e8], None)
    with pytest.raises(ValueError, match="weight"):
        UsageChunk(chunk.container_id, chunk.instance_id, chunk.timestamp_s, chunk.cpu_cores,
                   chunk.memory_bytes, chunk.oom, np.zeros(2))  # fmt: skip
    with pytest.raises(ValueError, match="weight"):
        UsageChunk(chunk.container_id, chunk.instance_id, chunk.timestamp_s, chunk.cpu_cores,
                   chunk.memory_bytes, chunk.oom, np.ones(3))  # fmt: skip
