"""The incremental trailing window of ``percentile`` equals recomputing from the window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsizer.backtest.windowed import WindowedPercentileUsage
from rightsizer.engine.strategies.percentile import PercentileUsage
from rightsizer.engine.usage import UsageChunk


def random_step(rng: np.random.Generator, step: int, containers: int, rows: int) -> UsageChunk:
    ts = np.sort(step * 1000.0 + rng.uniform(0, 999, rows))
    cpu = rng.lognormal(-2, 1.5, rows)
    cpu[rng.random(rows) < 0.1] = np.nan
    mem = rng.lognormal(20, 1, rows)
    mem[rng.random(rows) < 0.1] = np.nan
    cid = rng.integers(0, containers, rows)
    return UsageChunk(
        container_id=cid,
        instance_id=cid,
        timestamp_s=ts,
        cpu_cores=cpu,
        memory_bytes=mem,
        oom=rng.random(rows) < 0.02,
    )


def assert_same(windowed: PercentileUsage, fresh: PercentileUsage, containers: int) -> None:
    windowed.grow(containers)
    fresh.grow(containers)
    np.testing.assert_array_equal(windowed.cpu.weights, fresh.cpu.weights)
    np.testing.assert_array_equal(windowed.cpu.total, fresh.cpu.total)
    np.testing.assert_array_equal(windowed.peak_memory_bytes, fresh.peak_memory_bytes)
    np.testing.assert_array_equal(windowed.cpu_samples, fresh.cpu_samples)
    np.testing.assert_array_equal(windowed.memory_samples, fresh.memory_samples)
    np.testing.assert_array_equal(windowed.oom_kills, fresh.oom_kills)
    np.testing.assert_array_equal(windowed.first_s, fresh.first_s)
    np.testing.assert_array_equal(windowed.last_s, fresh.last_s)
    for p in (0.5, 0.95, 1.0):
        np.testing.assert_array_equal(windowed.cpu.percentile(p), fresh.cpu.percentile(p))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    window=st.integers(1, 5),
    steps=st.integers(1, 9),
    containers=st.integers(1, 6),
)
def test_window_equals_a_fresh_state_fed_the_last_steps(
    seed: int, window: int, steps: int, containers: int
) -> None:
    rng = np.random.default_rng(seed)
    chunks = [random_step(rng, k, containers, int(rng.integers(0, 40))) for k in range(steps)]
    windowed = WindowedPercentileUsage(window)
    for chunk in chunks:
        windowed.add(chunk)
        windowed.close_step()
    fresh = PercentileUsage()
    for chunk in chunks[-window:]:
        fresh.add(chunk)
    assert_same(windowed, fresh, containers)


def test_the_open_step_counts_and_a_long_window_forgets_nothing() -> None:
    rng = np.random.default_rng(7)
    chunks = [random_step(rng, k, 3, 50) for k in range(6)]
    windowed = WindowedPercentileUsage(100)
    everything = PercentileUsage()
    for chunk in chunks[:-1]:
        windowed.add(chunk)
        windowed.close_step()
    windowed.add(chunks[-1])  # not closed yet: still counts
    for chunk in chunks:
        everything.add(chunk)
    assert_same(windowed, everything, 3)


def test_a_window_holds_at_least_one_step() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        WindowedPercentileUsage(0)
