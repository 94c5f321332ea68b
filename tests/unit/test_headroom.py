"""Strategy ``headroom``: the CPU ladder, the memory line and request, OOMs, censoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rightsizer.engine.policy import ControlledValues, SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.engine.settings import SettingsError
from rightsizer.engine.strategies import SizingContext, build_strategy
from rightsizer.engine.strategies.headroom import (
    HeadroomSettings,
    HeadroomStrategy,
    HeadroomUsage,
)
from rightsizer.engine.usage import ContainerRegistry, UsageChunk

DAY = 86_400.0
GIB = 2**30
MIB = 2**20
KEY = ("ns", "Deployment/app", "app")
NAN = float("nan")


def registry() -> ContainerRegistry:
    reg = ContainerRegistry()
    reg.instance_id(("ns", "Deployment/app", "app-0", "app"))
    return reg


def usage(
    ts: list[float] | np.ndarray,
    cpu: list[float] | np.ndarray,
    mem: list[float] | np.ndarray,
    oom: list[bool] | None = None,
) -> UsageChunk:
    n = len(ts)
    zeros = np.zeros(n, dtype=np.int64)
    return UsageChunk(
        container_id=zeros,
        instance_id=zeros,
        timestamp_s=np.asarray(ts, dtype=float),
        cpu_cores=np.asarray(cpu, dtype=float),
        memory_bytes=np.asarray(mem, dtype=float),
        oom=np.asarray(oom if oom is not None else [False] * n, dtype=bool),
    )


def recommend(
    state: HeadroomUsage,
    strategy: HeadroomStrategy | None = None,
    context: SizingContext | None = None,
) -> ContainerRecommendation:
    strategy = strategy or HeadroomStrategy(state.settings)
    context = context or SizingContext(policy=HeadroomStrategy.default_policy())
    (rec,) = strategy.recommend(state, registry(), context)
    return rec


def cpu_only(
    values: list[float] | np.ndarray, settings: HeadroomSettings | None = None
) -> HeadroomUsage:
    """Samples a minute apart in a shuffled order (recent samples weigh a little more)."""
    state = HeadroomUsage(settings)
    n = len(values)
    shuffled = np.random.default_rng(3).permutation(np.asarray(values, dtype=float))
    state.add(usage(np.arange(n) * 60.0 + 60.0, shuffled, [GIB] * n))
    return state


# -- CPU ------------------------------------------------------------------------------
def test_a_steady_container_climbs_to_its_largest_sample() -> None:
    values = np.linspace(0.100, 0.110, 200)  # p95 ≈ 0.1095, max 0.110: a flat tail
    rec = recommend(cpu_only(values))
    assert rec.target.cpu_millicores == pytest.approx(110, rel=0.011)
    assert rec.target.cpu_millicores >= 110
    assert rec.limits.cpu_millicores is None  # no CPU limit


def test_a_bursty_container_stays_at_p95() -> None:
    values = [0.1] * 96 + [2.0] * 4  # covering the bursts costs 1.9 cores a point
    rec = recommend(cpu_only(values))
    assert rec.target.cpu_millicores == pytest.approx(100, rel=0.011)
    assert rec.upper_bound.cpu_millicores is not None
    assert rec.upper_bound.cpu_millicores >= 2000


def test_the_ladder_climbs_only_affordable_rungs() -> None:
    # p95..p97 at 0.1 cores, p98 at 0.115 (15m for one point: affordable), p99+ at 1.5
    values = [0.1] * 975 + [0.115] * 10 + [1.5] * 15
    state = cpu_only(values)
    assert recommend(state).target.cpu_millicores == pytest.approx(115, rel=0.011)
    stingy = HeadroomSettings(cpu_step_millicores=10)
    assert recommend(cpu_only(values, stingy)).target.cpu_millicores == pytest.approx(
        100, rel=0.011
    )
    capped = HeadroomSettings(cpu_percentile_max=0.97)
    assert recommend(cpu_only(values, capped)).target.cpu_millicores == pytest.approx(
        100, rel=0.011
    )


def test_cpu_at_its_limit_keeps_the_current_request() -> None:
    values = [0.2] * 975 + [1.0] * 25  # 2.5 % of samples at the 1-core limit: censored
    state = cpu_only(values)
    context = SizingContext(
        policy=HeadroomStrategy.default_policy(),
        current_requests={KEY: Resources(1000, GIB)},
        current_limits={KEY: Resources(1000, GIB)},
    )
    assert recommend(state, context=context).target.cpu_millicores == 1000
    # without a limit the same usage is not censored
    free = SizingContext(
        policy=HeadroomStrategy.default_policy(), current_requests={KEY: Resources(1000, GIB)}
    )
    assert recommend(state, context=free).target.cpu_millicores == pytest.approx(200, rel=0.011)


# -- memory ---------------------------------------------------------------------------
def daily_peaks(
    peaks_gib: list[float], start_day: int = 100, settings: HeadroomSettings | None = None
) -> HeadroomUsage:
    """One sample at noon of consecutive days with the given memory."""
    state = HeadroomUsage(settings)
    for i, peak in enumerate(peaks_gib):
        state.add(usage([(start_day + i) * DAY + DAY / 2], [0.1], [peak * GIB]))
    return state


def test_memory_limit_is_the_peak_with_a_buffer_that_shrinks_with_history() -> None:
    state = daily_peaks([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])  # 9 days from first to last
    rec = recommend(state)
    line = math.ceil(10 * GIB * (1.15 + 1 / 9) / MIB) * MIB
    assert rec.upper_bound.memory_bytes == line
    assert rec.limits.memory_bytes == line
    assert rec.target.memory_bytes == 9 * GIB  # p90 of ten daily peaks
    assert rec.peak_memory_bytes == 10 * GIB


def test_guaranteed_memory_when_the_request_percentile_is_100() -> None:
    state = daily_peaks([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    strategy, policy = build_strategy("headroom", {"memory_request_percentile": "100"})
    assert isinstance(strategy, HeadroomStrategy)
    rec = recommend(state, strategy, SizingContext(policy=policy))
    assert rec.target.memory_bytes == rec.limits.memory_bytes == rec.upper_bound.memory_bytes


def test_one_day_of_history_doubles_the_buffer() -> None:
    state = HeadroomUsage()
    state.add(usage([0.0 + 60, DAY + 60], [0.1, 0.1], [GIB, GIB]))
    rec = recommend(state)
    assert rec.limits.memory_bytes == math.ceil(GIB * 2.15 / MIB) * MIB


def test_the_confidence_buffer_narrows_with_a_power_of_the_history() -> None:
    peaks = [1.0, 1.0, 1.0, 1.0, 1.0]  # 4 days from first to last
    default = recommend(daily_peaks(peaks))
    assert default.upper_bound.memory_bytes == math.ceil(GIB * (1.15 + 1 / 4) / MIB) * MIB
    slow = HeadroomSettings(memory_confidence_power=0.5)
    rec = recommend(daily_peaks(peaks, settings=slow))
    assert rec.upper_bound.memory_bytes == math.ceil(GIB * (1.15 + 1 / 2) / MIB) * MIB
    fast = HeadroomSettings(memory_confidence_power=2)
    rec = recommend(daily_peaks(peaks, settings=fast))
    assert rec.upper_bound.memory_bytes == math.ceil(GIB * (1.15 + 1 / 16) / MIB) * MIB
    with pytest.raises(SettingsError):
        build_strategy("headroom", {"memory_confidence_power": "0"})


def test_peaks_older_than_the_window_are_forgotten() -> None:
    state = daily_peaks([10] + [1] * 40)
    rec = recommend(state)
    assert rec.upper_bound.memory_bytes == math.ceil(GIB * (1.15 + 1 / 40) / MIB) * MIB
    assert rec.peak_memory_bytes == 10 * GIB  # the all-time peak is still reported


def test_a_decaying_memory_of_peaks_weighs_each_day_by_its_age() -> None:
    peaks = [8.0] + [1.0] * 14 + [2.0]  # a spike 15 days ago, yesterday's 1, today's 2
    settings = HeadroomSettings(memory_peak_half_life_s=15 * DAY)
    rec = recommend(daily_peaks(peaks, settings=settings))
    days = 15.0
    # the spike weighs half (8 × 0.5 = 4 GiB): still above today's 2 GiB
    assert rec.upper_bound.memory_bytes == math.ceil(4 * GIB * (1.15 + 1 / days) / MIB) * MIB
    # without decay the line is the window's peak, 8 GiB
    plain = recommend(daily_peaks(peaks))
    assert plain.upper_bound.memory_bytes == math.ceil(8 * GIB * (1.15 + 1 / days) / MIB) * MIB
    # with a short half-life today's 2 GiB (age 0, weight 1) is the largest weighed peak
    short = HeadroomSettings(memory_peak_half_life_s=2 * DAY)
    rec = recommend(daily_peaks(peaks, settings=short))
    assert rec.upper_bound.memory_bytes == math.ceil(2 * GIB * (1.15 + 1 / days) / MIB) * MIB
    assert rec.peak_memory_bytes == 8 * GIB  # the all-time peak is still reported


def test_the_peak_half_life_is_a_setting_and_off_by_default() -> None:
    assert HeadroomSettings().memory_peak_half_life_s is None
    strategy, _ = build_strategy("headroom", {"memory_peak_half_life": "3w"})
    assert isinstance(strategy, HeadroomStrategy)
    assert strategy.settings.memory_peak_half_life_s == 21 * DAY
    with pytest.raises(SettingsError):
        build_strategy("headroom", {"memory_peak_half_life": "0"})
    with pytest.raises(ValueError, match="half-life must be positive"):
        HeadroomSettings(memory_peak_half_life_s=-DAY)


def test_an_oom_bumps_the_peak_and_widens_the_buffer() -> None:
    state = daily_peaks([1] * 11)
    day = 111 * DAY
    state.add(usage([day + 60, day + 120], [0.1, NAN], [1 * GIB, 2 * GIB], [False, True]))
    rec = recommend(state)
    bumped = 2 * GIB * 1.2  # VPA's bump: max(2 GiB × 1.2, 2 GiB + 100 MiB)
    days = (day + 120 - (100 * DAY + DAY / 2)) / DAY
    assert rec.upper_bound.memory_bytes == math.ceil(bumped * (1.15 + 1 / days) * 1.1 / MIB) * MIB
    assert rec.oom_kills == 1


# -- policy ---------------------------------------------------------------------------
def test_requests_only_leaves_limits_alone() -> None:
    state = daily_peaks([1, 2, 3])
    policy = SizingPolicy(controlled_values=ControlledValues.REQUESTS_ONLY)
    context = SizingContext(
        policy=policy,
        current_requests={KEY: Resources(500, 8 * GIB)},
        current_limits={KEY: Resources(1000, 8 * GIB)},
    )
    rec = recommend(state, context=context)
    assert rec.limits == Resources(1000, 8 * GIB)
    assert rec.target.memory_bytes is not None and rec.target.memory_bytes <= 8 * GIB


def test_settings_are_checked() -> None:
    with pytest.raises(SettingsError):
        build_strategy("headroom", {"cpu_percentile": "99", "cpu_percentile_max": "95"})
    with pytest.raises(SettingsError):
        build_strategy("headroom", {"memory_window": "1h"})
    with pytest.raises(SettingsError, match="unknown setting"):
        build_strategy("headroom", {"target_cpu_percentile": "90"})
    strategy, policy = build_strategy("headroom", {"cpu_step": "50m", "min_cpu": "20m"})
    assert isinstance(strategy, HeadroomStrategy)
    assert strategy.settings.cpu_step_millicores == 50
    assert policy.min_allowed.cpu_millicores == 20


# -- issue 18 item 2: saturation as unknown demand, a buffer from the own spikes ------
def saturated_days(pattern: list[bool], settings: HeadroomSettings) -> HeadroomUsage:
    """Hourly samples over consecutive days: 0.2 cores, and on the days marked True four
    hours at the 1-core limit (censored: ≥ 1 % of the samples at the limit)."""
    state = HeadroomUsage(settings)
    for day, saturated in enumerate(pattern):
        hours = np.arange(24)
        cpu = np.where(saturated & (hours >= 10) & (hours < 14), 1.0, 0.2)
        ts = (100 + day) * DAY + hours * 3600.0 + 60.0
        state.add(usage(ts, cpu, [GIB] * 24))
    return state


def capped_context() -> SizingContext:
    return SizingContext(
        policy=HeadroomStrategy.default_policy(),
        current_requests={KEY: Resources(1000, GIB)},
        current_limits={KEY: Resources(1000, GIB)},
    )


def test_a_saturated_request_is_probed_down_a_rung_per_quiet_day() -> None:
    probe = HeadroomSettings(saturation_probe=0.2)
    # saturated on the first day, then four quiet days: 4 days ago, less one grace day
    state = saturated_days([True, False, False, False, False], probe)
    rec = recommend(state, context=capped_context())
    assert rec.target.cpu_millicores == pytest.approx(1000 * 0.8**3, abs=1)
    # the default keeps the full request however long the quiet
    plain = saturated_days([True, False, False, False, False], HeadroomSettings())
    assert recommend(plain, context=capped_context()).target.cpu_millicores == 1000


def test_saturation_seen_again_puts_the_probed_request_back_at_the_limit() -> None:
    probe = HeadroomSettings(saturation_probe=0.2)
    state = saturated_days([True] + [False] * 7 + [True], probe)  # p95 is still 0.2
    assert recommend(state, context=capped_context()).target.cpu_millicores == 1000
    # a long quiet (0.8 ** 11 ≈ 86m) stops at the ladder's value (p95: 0.2), not below
    pattern = [True] * 3 + [False] * 12
    rec = recommend(saturated_days(pattern, probe), context=capped_context())
    assert rec.target.cpu_millicores == pytest.approx(200, rel=0.011)
    plain = saturated_days(pattern, HeadroomSettings())  # still censored: kept at 1000
    assert recommend(plain, context=capped_context()).target.cpu_millicores == 1000


def test_the_probe_survives_a_checkpoint() -> None:
    probe = HeadroomSettings(saturation_probe=0.2)
    state = saturated_days([True, False, False, False, False], probe)
    restored = HeadroomUsage.restore(probe, state.snapshot())
    rec = recommend(restored, context=capped_context())
    assert rec.target.cpu_millicores == pytest.approx(1000 * 0.8**3, abs=1)
    # a snapshot taken without the probe has no CPU days: nothing known, the request
    # stays full (and the default's snapshots are as they were)
    plain = saturated_days([True, False, False, False, False], HeadroomSettings()).snapshot()
    assert not any(k.startswith("cpu_day_") for k in plain)
    legacy = HeadroomUsage.restore(probe, plain)
    assert recommend(legacy, context=capped_context()).target.cpu_millicores == 1000
    # … and probes down from the first day it sees, a rung at a time, not all at once
    for day in range(5, 9):
        hours = np.arange(24)
        legacy.add(usage((100 + day) * DAY + hours * 3600.0 + 60.0, [0.2] * 24, [GIB] * 24))
    rec = recommend(legacy, context=capped_context())
    assert rec.target.cpu_millicores == pytest.approx(1000 * 0.8**2, abs=1)


def test_the_spike_buffer_follows_the_containers_own_jumps() -> None:
    spiky = [1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # one jump of × 1.5
    steady = [1.0, 1.02] + [1.0] * 9  # jumps of at most × 1.02
    settings = HeadroomSettings(memory_spike_quantile=1.0, memory_spike_margin_max=0.4)
    days = 10.0

    def line(peak_gib: float, margin: float) -> int:
        return math.ceil(peak_gib * GIB * (1 + margin + 1 / days) / MIB) * MIB

    # the largest jump (× 1.5) is capped at 0.4; the steady one gets the least, 0.05
    assert recommend(daily_peaks(spiky, settings=settings)).upper_bound.memory_bytes == line(
        1.5, 0.4
    )
    assert recommend(daily_peaks(steady, settings=settings)).upper_bound.memory_bytes == line(
        1.02, 0.05
    )
    # a lower percentile of the jumps ignores the one spike
    median = HeadroomSettings(memory_spike_quantile=0.5)
    assert recommend(daily_peaks(spiky, settings=median)).upper_bound.memory_bytes == line(
        1.5, 0.05
    )
    # one day: no jump known yet, the fleet-wide margin
    (one,) = HeadroomStrategy(settings).recommend(
        daily_peaks([2.0], settings=settings),
        registry(),
        SizingContext(policy=HeadroomStrategy.default_policy()),
    )
    assert one.upper_bound.memory_bytes == math.ceil(2 * GIB * (1.15 + 1 / 0.25) / MIB) * MIB


def test_the_new_settings_are_off_by_default_and_checked() -> None:
    assert HeadroomSettings().saturation_probe == 0
    assert HeadroomSettings().memory_spike_quantile is None
    strategy, _ = build_strategy(
        "headroom", {"saturation_probe": "0.1", "memory_spike_quantile": "90"}
    )
    assert isinstance(strategy, HeadroomStrategy)
    assert strategy.settings.saturation_probe == 0.1
    assert strategy.settings.memory_spike_quantile == 0.9
    with pytest.raises(SettingsError):
        build_strategy("headroom", {"saturation_probe": "1"})
    with pytest.raises(SettingsError):
        build_strategy(
            "headroom", {"memory_spike_margin_min": "0.5", "memory_spike_margin_max": "0.2"}
        )
