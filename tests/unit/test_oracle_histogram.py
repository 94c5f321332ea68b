"""Oracle cases 1–4 of vpa-algorithm.md §3 (upstream histogram tests)."""

import numpy as np
import pytest

from rightsizer.engine.buckets import CPU_SCHEME, MEMORY_SCHEME, exponential_scheme, linear_scheme
from rightsizer.engine.histogram import DecayingHistograms, HistogramCheckpoint

T0 = 1234567890.0  # upstream's startTime
HOUR = 3600.0
TEST_EPSILON = 1e-15  # upstream's weightEpsilon in the histogram tests


def one(hist: DecayingHistograms, value: float, weight: float, t: float = T0) -> None:
    hist.add(np.asarray([0]), np.asarray([value]), np.asarray([t]), np.asarray([weight]))


def pct(hist: DecayingHistograms, p: float) -> float:
    return float(hist.percentile(p)[0])


# -- case 1 -------------------------------------------------------------------------------
def test_exponential_histogram_options() -> None:
    scheme = exponential_scheme(500.0, 40.0, 1.5)
    assert scheme.num_buckets == 6
    assert list(scheme.starts) == pytest.approx([0, 40, 100, 190, 325, 527.5])
    assert [scheme.find_bucket(v) for v in (-1, 39.99, 40, 100, 900)] == [0, 0, 1, 2, 5]


def test_vpa_bucket_schemes_have_176_buckets() -> None:
    assert CPU_SCHEME.num_buckets == 176
    assert MEMORY_SCHEME.num_buckets == 176
    assert CPU_SCHEME.starts[1] == pytest.approx(0.01)
    assert MEMORY_SCHEME.starts[1] == pytest.approx(1e7)


# -- case 2 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0, 2), (0.1, 2), (0.2, 3), (0.3, 3), (0.4, 4), (0.5, 4), (0.6, 4),
     (0.7, 5), (0.8, 5), (0.9, 5), (1.0, 5)],
)  # fmt: skip
def test_percentiles(p: float, expected: float) -> None:
    hist = DecayingHistograms(linear_scheme(10.0, 1.0), 1, half_life_s=None, epsilon=TEST_EPSILON)
    for i in range(1, 5):
        one(hist, i, i)
    assert pct(hist, p) == pytest.approx(expected)


def test_empty_histogram_percentile_is_zero() -> None:
    hist = DecayingHistograms(linear_scheme(10.0, 1.0), 1, half_life_s=None, epsilon=TEST_EPSILON)
    assert pct(hist, 0.5) == 0.0
    assert bool(hist.is_empty()[0])


# -- case 3 -------------------------------------------------------------------------------
def decaying() -> DecayingHistograms:
    return DecayingHistograms(linear_scheme(10.0, 1.0), 1, half_life_s=HOUR, epsilon=TEST_EPSILON)


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0, 2), (0.02, 2), (0.03, 3), (0.10, 3), (0.11, 4), (0.34, 4), (0.35, 5), (1.0, 5)],
)
def test_decaying_histogram_percentiles(p: float, expected: float) -> None:
    hist = decaying()
    for i in range(1, 5):
        one(hist, i, i, T0 + (i - 1) * HOUR)
    assert pct(hist, p) == pytest.approx(expected)


def test_simple_decay() -> None:
    hist = decaying()
    one(hist, 2, 1000, T0)
    one(hist, 1, 1, T0 + 20 * HOUR)
    assert pct(hist, 0.999) == pytest.approx(2)
    assert pct(hist, 1.0) == pytest.approx(3)


def test_longterm_decay_rebases_the_reference() -> None:
    hist = decaying()
    one(hist, 2, 1, T0)
    one(hist, 1, 1, T0 + 101 * HOUR)
    assert pct(hist, 1.0) == pytest.approx(2)
    assert hist.reference_s[0] == pytest.approx(round((T0 + 101 * HOUR) / HOUR) * HOUR)


def test_decay_is_order_independent_within_one_add() -> None:
    """Adding in one call gives the state of adding sample by sample (same reference)."""
    times = T0 + np.asarray([0.0, 150.0, 30.0]) * HOUR
    values = np.asarray([2.0, 1.0, 3.0])
    a, b = decaying(), decaying()
    a.add(np.zeros(3, dtype=np.int64), values, times, 1.0)
    for i in np.argsort(times):
        one(b, float(values[i]), 1.0, float(times[i]))
    assert a.reference_s[0] == b.reference_s[0]
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-12, atol=1e-300)


# -- case 4 -------------------------------------------------------------------------------
def plain() -> DecayingHistograms:
    return DecayingHistograms(linear_scheme(10.0, 1.0), 1, half_life_s=None, epsilon=TEST_EPSILON)


def test_save_to_checkpoint() -> None:
    hist = plain()
    one(hist, 1, 1)
    one(hist, 2, 10000)
    one(hist, 3, 50)
    cp = hist.save_checkpoint(0)
    assert cp.total_weight == 10051
    assert cp.bucket_weights == {1: 1, 2: 10000, 3: 50}


def test_save_to_checkpoint_drops_tiny_weights() -> None:
    hist = plain()
    one(hist, 1, 1)
    one(hist, 2, 100000)
    cp = hist.save_checkpoint(0)
    assert cp.total_weight == 100001
    assert cp.bucket_weights == {2: 10000}


def test_load_from_checkpoint() -> None:
    hist = plain()
    hist.load_checkpoint(0, HistogramCheckpoint(None, {0: 1, 1: 2}, 6.0))
    assert hist.weights[0, 0] == pytest.approx(2.0)
    assert hist.weights[0, 1] == pytest.approx(4.0)
    assert hist.total[0] == pytest.approx(6.0)


def test_checkpoint_round_trips_through_a_dict() -> None:
    hist = decaying()
    for i in range(1, 5):
        one(hist, i, i, T0 + i * HOUR)
    cp = hist.save_checkpoint(0)
    again = HistogramCheckpoint.from_dict(cp.to_dict())
    assert again == cp
    restored = decaying()
    restored.load_checkpoint(0, again)
    for p in (0.1, 0.5, 0.9, 1.0):
        assert pct(restored, p) == pct(hist, p)
