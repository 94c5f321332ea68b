"""Oracle cases 8–10 of vpa-algorithm.md §3 (upstream model tests), plus the equivalence
of the vectorised and the exact (sequential) memory-peak paths."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsizer.engine.aggregation import UsageAggregates
from tests.unit.helpers import NAN, chunk

T0 = 1492536905.0  # upstream's testTimestamp 2017-04-18 17:35:05
DAY = 86400.0
MB = 2**20


def state_after(*rows: tuple) -> UsageAggregates:  # type: ignore[type-arg]
    s = UsageAggregates()
    for r in rows:
        s.add(chunk([r]))
    return s


# -- case 9 -------------------------------------------------------------------------------
def test_aggregate_container_usage_samples() -> None:
    s = UsageAggregates()
    step = DAY / 2
    s.add(chunk([(0, T0, 3.14, 5)]))
    s.add(chunk([(0, T0 + step, 6.28, 10)]))
    # within the first window, the peak 5 is replaced by 10 (window end T0 + 24h)
    assert s.window_end_s[0] == T0 + DAY
    assert s.usage_peak_bytes[0] == 10
    s.add(chunk([(0, T0 + 2 * step, 1.57, 2)]))
    # a sample at the window end opens the next window; the closed peak goes to the histogram
    assert s.window_end_s[0] == T0 + 2 * DAY
    assert s.usage_peak_bytes[0] == 2
    assert s.memory.total[0] == pytest.approx(np.exp2((T0 + DAY - s.memory.reference_s[0]) / DAY))
    # every CPU sample weighs 0.1 before decay
    expected_cpu = sum(
        0.1 * np.exp2((T0 + i * step - s.cpu.reference_s[0]) / DAY) for i in range(3)
    )
    assert s.cpu.total[0] == pytest.approx(expected_cpu)
    assert s.cpu_sample_count[0] == 3
    # out-of-order CPU sample and negative values are dropped
    s.add(chunk([(0, T0 + 2 * step, 1.0, NAN)]))
    s.add(chunk([(0, T0 + 4 * step, -1.0, -1000)]))
    assert s.cpu_sample_count[0] == 3
    assert s.memory_sample_count[0] == 3
    assert s.last_cpu_sample_s[0] == T0 + 2 * step


# -- case 8: OOM bump -----------------------------------------------------------------------
def oom(t: float, reported: float) -> tuple:  # type: ignore[type-arg]
    return (0, t, NAN, reported, True)


def test_oom_increased_by_bump_up() -> None:
    s = state_after(oom(T0, 1000 * MB))
    assert s.oom_peak_bytes[0] == 1200 * MB
    assert s.window_end_s[0] == T0 + DAY


def test_oom_increased_by_min_bump() -> None:
    assert state_after(oom(T0, 1 * MB)).oom_peak_bytes[0] == 101 * MB


def test_oom_does_not_run_away() -> None:
    s = state_after(oom(T0, 1000 * MB), oom(T0, 999 * MB), oom(T0, 999 * MB))
    assert s.oom_peak_bytes[0] == 1200 * MB
    s.add(chunk([oom(T0, 2000 * MB)]))
    assert s.oom_peak_bytes[0] == 2400 * MB


def test_oom_maxed_with_known_sample() -> None:
    s = state_after((0, T0, NAN, 3000 * MB), oom(T0, 1000 * MB))
    assert s.oom_peak_bytes[0] == 3600 * MB


def test_oom_discards_old_sample() -> None:
    s = state_after((0, T0, NAN, 1000 * MB))
    assert not s.record_oom(0, T0 - 30 * 3600, 1000 * MB)
    assert s.oom_peak_bytes[0] == 0
    assert s.usage_peak_bytes[0] == 1000 * MB


def test_oom_in_new_window() -> None:
    s = state_after((0, T0, NAN, 2000 * MB), oom(T0 + 2 * DAY, 1000 * MB))
    assert s.window_end_s[0] == T0 + 3 * DAY
    assert s.oom_peak_bytes[0] == 2400 * MB
    # the first window's peak (2000Mi at T0 + 24h) is in the histogram
    assert s.memory.total[0] == pytest.approx(np.exp2((T0 + DAY - s.memory.reference_s[0]) / DAY))
    assert s.oom_count[0] == 1


def test_zero_peak_window_ignores_later_samples_like_upstream() -> None:
    s = state_after((0, T0, NAN, 0.0), (0, T0 + 3600, NAN, 500 * MB))
    assert s.usage_peak_bytes[0] == 0  # upstream's `oldMaxMem != 0` rule


# -- case 10: expiry ----------------------------------------------------------------------
def test_aggregate_expiry() -> None:
    s = state_after((0, T0, 1.0, NAN))
    assert 0 not in s.expired(T0 + 7 * DAY)
    assert 0 in s.expired(T0 + 8 * DAY)


# -- fast path ≡ exact path ---------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.floats(0, 5 * DAY, allow_nan=False),
            st.floats(1e6, 5e9, allow_nan=False),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 5),
)
def test_vectorised_memory_peaks_equal_sequential_rules(rows: list, pieces: int) -> None:  # type: ignore[type-arg]
    rows = sorted(rows, key=lambda r: r[1])
    fast = UsageAggregates()
    exact = UsageAggregates()
    bounds = np.linspace(0, len(rows), pieces + 1).astype(int)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        part = rows[a:b]
        if part:
            fast.add(chunk([(i, T0 + t, NAN, m) for i, t, m in part]))
    for i, t, m in rows:
        exact._ensure(chunk([(i, T0 + t, NAN, m)]))
        # add() takes whole bytes first (upstream's MemoryAmountFromBytes truncates)
        exact._memory_sample(i, T0 + t, float(int(m)), is_oom=False)
    n = exact.instance_container.shape[0]
    np.testing.assert_array_equal(fast.window_end_s[:n], exact.window_end_s[:n])
    np.testing.assert_array_equal(fast.usage_peak_bytes[:n], exact.usage_peak_bytes[:n])
    np.testing.assert_allclose(fast.memory.weights, exact.memory.weights, rtol=1e-9)
    for p in (0.5, 0.9, 0.95):
        np.testing.assert_array_equal(
            fast.memory_histogram().percentile(p), exact.memory_histogram().percentile(p)
        )
