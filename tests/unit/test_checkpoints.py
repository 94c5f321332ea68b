"""Checkpoints round-trip every strategy's state: the same recommendations after restore."""

from __future__ import annotations

import pytest

from rightsizer.engine.strategies import STRATEGY_NAMES, SizingContext, build_strategy
from rightsizer.engine.usage import ContainerRegistry
from rightsizer.history import checkpoints
from rightsizer.samples.encode import iter_chunks
from rightsizer.sources.samples_file import read_samples
from tests.unit.test_cli import EXAMPLE


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_checkpoint_round_trip_keeps_recommendations(name: str) -> None:
    strategy, policy = build_strategy(name)
    registry = ContainerRegistry()
    state = strategy.new_state()
    for chunk in iter_chunks(read_samples(EXAMPLE), registry):
        state.add(chunk)
    context = SizingContext(policy=policy)
    before = strategy.recommend(state, registry, context)
    blob = checkpoints.encode(registry, state, 1_763_424_000.0, "sig")
    assert len(blob) < 200_000
    restored = checkpoints.decode(blob, strategy)
    assert restored.read_until_s == 1_763_424_000.0
    assert restored.signature == "sig"
    after = strategy.recommend(restored.state, restored.registry, context)
    assert [r.key for r in after] == [r.key for r in before]
    for a, b in zip(after, before, strict=True):
        assert a.target == b.target, a.key
        assert a.cpu_samples == b.cpu_samples


def test_a_checkpoint_of_another_strategy_is_refused() -> None:
    vpa, _ = build_strategy("vpa")
    headroom, _ = build_strategy("headroom")
    blob = checkpoints.encode(ContainerRegistry(), headroom.new_state(), 0.0, "x")
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.decode(blob, vpa)
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.decode(b"garbage", vpa)
