"""Floors that fit small containers (issue 18 item 3): ``headroom``'s are per container and
a few MiB / millicores; ``vpa`` keeps upstream's per-pod minimums; the backtest counts
what floors reserve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rightsizer.backtest.summary import summarize
from rightsizer.engine.recommendation import ContainerRecommendation
from rightsizer.engine.strategies import SizingContext, build_strategy
from rightsizer.engine.strategies.headroom import MIN_HISTORY_DAYS, HeadroomSettings
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from tests.unit.test_backtest import DAY, PER_DAY, replay, trace_frame

MIB = 2**20
MINUTE = 60.0
KEY = ("ns", "DaemonSet/node-agent", "agent")


def agent_usage(days: float, memory_bytes: float, cpu_cores: float) -> UsageChunk:
    """One agent pod sampled every minute: CPU and memory with a little noise."""
    n = int(days * DAY / MINUTE)
    rng = np.random.default_rng(7)
    zeros = np.zeros(n, dtype=np.int64)
    return UsageChunk(
        container_id=zeros,
        instance_id=zeros,
        timestamp_s=np.arange(1, n + 1) * MINUTE,
        cpu_cores=cpu_cores * (1 + 0.3 * rng.random(n)),
        memory_bytes=memory_bytes * (1 + 0.02 * rng.random(n)),
        oom=np.zeros(n, dtype=bool),
    )


def recommend(name: str, chunk: UsageChunk) -> ContainerRecommendation:
    registry = ContainerRegistry()
    registry.instance_id((*KEY[:2], "node-agent-x1", KEY[2]))
    strategy, policy = build_strategy(name)
    state = strategy.new_state()
    state.add(chunk)  # type: ignore[attr-defined]
    (rec,) = strategy.recommend(state, registry, SizingContext(policy=policy))
    return rec


def test_a_40_mib_agent_is_not_inflated_by_the_default_strategy() -> None:
    chunk = agent_usage(7, 40 * MIB, 0.015)
    peak = float(chunk.memory_bytes.max())
    rec = recommend("headroom", chunk)
    settings = HeadroomSettings()
    # the request is what the agent uses (p90 of its daily peaks), not a 100 or 250 MiB floor
    assert peak * 0.97 <= rec.target.memory_bytes <= peak + MIB
    # the limit is the peak with headroom's buffer for 7 days of history, nothing more
    days = (chunk.timestamp_s[-1] - chunk.timestamp_s[0]) / DAY
    factor = 1 + settings.memory_margin + settings.memory_confidence_margin / days
    expected = max(peak * factor, peak + settings.min_memory_headroom_bytes)
    assert rec.limits.memory_bytes == pytest.approx(expected, rel=0.01)
    assert rec.limits.memory_bytes < 64 * MIB
    assert rec.floor_added.memory_bytes == 0
    assert rec.floor_added.cpu_millicores == 0
    assert 15 <= rec.target.cpu_millicores <= 20


def test_vpa_keeps_upstream_s_per_pod_minimum() -> None:
    rec = recommend("vpa", agent_usage(7, 40 * MIB, 0.015))
    assert rec.target.memory_bytes == 250 * MIB  # one container: the whole pod minimum
    assert rec.target.cpu_millicores == 25
    # what usage asked for (p90 + 15 % ≈ 47 MiB): the rest is the floor's
    assert 200 * MIB < rec.floor_added.memory_bytes < 210 * MIB


def test_a_tiny_sidecar_gets_the_small_floors_and_absolute_headroom() -> None:
    chunk = agent_usage(3, 1 * MIB, 0.0002)
    peak = float(chunk.memory_bytes.max())
    settings = HeadroomSettings()
    rec = recommend("headroom", chunk)
    assert rec.target.cpu_millicores == settings.min_cpu_millicores
    assert rec.target.memory_bytes == settings.min_memory_bytes  # 4 MiB, above its ~1 MiB
    # the limit: the peak plus the absolute headroom (the relative buffer is ~1 MiB here)
    # (rounded up to whole MiB, as headroom's limits are)
    assert (
        rec.limits.memory_bytes
        == math.ceil((peak + settings.min_memory_headroom_bytes) / MIB) * MIB
    )
    assert 0 < rec.floor_added.cpu_millicores < settings.min_cpu_millicores  # used: < 1m
    assert 0 < rec.floor_added.memory_bytes < settings.min_memory_bytes


def test_the_absolute_headroom_gives_way_to_the_relative_buffer_above_53_mib() -> None:
    settings = HeadroomSettings()
    crossover = settings.min_memory_headroom_bytes / settings.memory_margin
    assert 50 * MIB < crossover < 56 * MIB
    chunk = agent_usage(60, 200 * MIB, 0.05)  # long history: the buffer is ~15 %
    peak = float(chunk.memory_bytes.max())
    rec = recommend("headroom", chunk)
    days = max((chunk.timestamp_s[-1] - chunk.timestamp_s[0]) / DAY, MIN_HISTORY_DAYS)
    # the ring keeps 30 days: the history span counts all 60
    factor = 1 + settings.memory_margin + settings.memory_confidence_margin / days
    assert rec.limits.memory_bytes == pytest.approx(peak * factor, rel=0.01)


def test_floors_can_be_set_per_policy() -> None:
    strategy, _ = build_strategy(
        "headroom", {"min_memory_request": "100Mi", "min_memory_headroom": "0"}
    )
    assert strategy.settings.min_memory_bytes == 100 * MIB  # type: ignore[attr-defined]
    assert strategy.settings.min_memory_headroom_bytes == 0  # type: ignore[attr-defined]


# -- the backtest counts what floors cost ---------------------------------------------------
def test_the_backtest_counts_the_core_and_gib_hours_floors_reserve() -> None:
    days = 4
    n = days * PER_DAY
    frame = trace_frame([0.005] * n, [40 * MIB] * n, cpu_request=0.1, memory_request=128 * MIB,
                        memory_limit=128 * MIB)  # fmt: skip
    result = replay(frame, "vpa", "headroom", warmup_s=DAY)
    by = {s.label: s for s in summarize(result)}
    # three days under each strategy (the first is warm-up at the original sizes)
    hours = 3 * 24
    vpa, headroom = by["vpa"], by["headroom"]
    # vpa: the 250 MiB pod minimum against ~46 MiB asked for; the 25m against what its
    # histogram's first CPU bucket (10m) + 15 % asks for
    assert vpa.memory_floor_gib_hours == pytest.approx((250 - 46) / 1024 * hours, rel=0.03)
    assert (25 - 15) / 1000 * hours <= vpa.cpu_floor_core_hours <= (25 - 5) / 1000 * hours
    assert vpa.memory_floor_share == pytest.approx(
        vpa.memory_floor_gib_hours / (128 / 1024 * days * 24), rel=1e-3
    )
    # headroom's floors (2m, 4 MiB) are below what this agent uses: they cost nothing
    assert headroom.memory_floor_gib_hours == 0
    assert headroom.cpu_floor_core_hours == 0
    assert by["original"].cpu_floor_core_hours == 0
    # floors are part of what is reserved, never more
    assert vpa.memory_floor_gib_hours < vpa.memory_request_gib_hours


def test_a_floor_that_lifts_the_request_is_counted_until_the_request_changes() -> None:
    days = 3
    n = days * PER_DAY
    frame = trace_frame([0.0005] * n, [1 * MIB] * n, cpu_request=0.1, memory_request=128 * MIB,
                        memory_limit=128 * MIB)  # fmt: skip
    result = replay(frame, "headroom", warmup_s=DAY)
    (_, headroom) = summarize(result)
    hours = 2 * 24
    settings = HeadroomSettings()
    # 1 MiB used, a 4 MiB floor: 3 MiB of the request are the floor's
    assert headroom.memory_floor_gib_hours == pytest.approx(
        (settings.min_memory_bytes - MIB) / 2**30 * hours, rel=0.01
    )
    # 0.5m used (p95 and above ≈ 1m): the 2m floor adds about 1m
    assert 0.0005 * hours <= headroom.cpu_floor_core_hours <= 0.0015 * hours
