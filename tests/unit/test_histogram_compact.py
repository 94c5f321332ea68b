"""The compact histogram store (engine/histogram.py) against the dense matrix it
replaced: the same operations in any mix give the same weights, totals and reads, bit for
bit; and it keeps only the buckets each row has used."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from rightsizer.engine.buckets import CPU_SCHEME, BucketScheme
from rightsizer.engine.histogram import DecayingHistograms
from rightsizer.engine.strategies.percentile import FINE_CPU_SCHEME

HOUR = 3600.0
T0 = 1_800_000_000.0


class Dense:
    """The dense ``rows × buckets`` store as it was before, reduced to the writes (the
    oracle): same arithmetic, every bucket in memory."""

    def __init__(self, scheme: BucketScheme, rows: int, half_life_s: float | None,
                 epsilon: float) -> None:  # fmt: skip
        self.scheme, self.half_life_s, self.epsilon = scheme, half_life_s, epsilon
        self.weights: npt.NDArray[np.float64] = np.zeros((rows, scheme.num_buckets))
        self.total = np.zeros(rows)
        self.reference_s = np.full(rows, np.nan)

    def _factors(self, rows: np.ndarray, times: np.ndarray) -> np.ndarray:
        if self.half_life_s is None:
            return np.ones(rows.shape[0])
        hl = self.half_life_s
        while True:
            ref = self.reference_s[rows]
            need = np.isnan(ref) | (times > ref + 100 * hl)
            if not need.any():
                break
            first = np.full(self.total.shape[0], np.inf)
            np.minimum.at(first, rows[need], times[need])
            moved = np.flatnonzero(np.isfinite(first))
            new_ref = np.floor(first[moved] / hl + 0.5) * hl
            old = self.reference_s[moved]
            exponent = np.where(np.isnan(old), 0.0, np.floor((old - new_ref) / hl + 0.5))
            factor = np.exp2(exponent)
            self.weights[moved] *= factor[:, None]
            self.total[moved] *= factor
            self.reference_s[moved] = new_ref
        return np.exp2((times - self.reference_s[rows]) / hl)

    def add(self, rows: np.ndarray, values: np.ndarray, times: np.ndarray, w: float) -> None:
        weights = w * self._factors(rows, times)
        cells = rows * self.scheme.num_buckets + self.scheme.find_buckets(values)
        np.add.at(self.weights.reshape(-1), cells, weights)
        np.add.at(self.total, rows, weights)

    def subtract(self, rows: np.ndarray, values: np.ndarray, times: np.ndarray, w: float) -> None:
        weights = w * self._factors(rows, times)
        flat = self.weights.reshape(-1)
        cells = rows * self.scheme.num_buckets + self.scheme.find_buckets(values)
        np.subtract.at(flat, cells, weights)
        np.subtract.at(self.total, rows, weights)
        flat[cells] = np.where(flat[cells] < self.epsilon, 0.0, flat[cells])
        self.total[rows] = np.where(self.total[rows] < self.epsilon, 0.0, self.total[rows])


def percentile(dense: Dense, fraction: float) -> np.ndarray:
    """VPA's percentile on the dense matrix (what the store's reads must answer)."""
    heavy = dense.weights >= dense.epsilon
    nb = dense.scheme.num_buckets
    min_b, max_b = np.argmax(heavy, axis=1), nb - 1 - np.argmax(heavy[:, ::-1], axis=1)
    idx = np.arange(nb)
    in_range = (idx >= min_b[:, None]) & (idx <= max_b[:, None])
    running = np.cumsum(np.where(in_range, dense.weights, 0.0), axis=1)
    hit = (running >= (fraction * dense.total)[:, None]) & in_range & (idx < max_b[:, None])
    bucket = np.where(hit.any(axis=1), np.argmax(hit, axis=1), max_b)
    return np.where(heavy.any(axis=1), dense.scheme.upper_edges(bucket), 0.0)


@pytest.mark.parametrize(("scheme", "half_life_s", "epsilon"), [
    (FINE_CPU_SCHEME, 7 * 24 * HOUR, 1e-3),  # headroom
    (CPU_SCHEME, 24 * HOUR, 1e-4),  # vpa
    (FINE_CPU_SCHEME, None, 0.0),  # percentile: no decay, epsilon 0
    (CPU_SCHEME, HOUR, 1e-4),  # short half-life: references re-base (100 half-lives)
])  # fmt: skip
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_compact_store_gives_the_dense_results_bit_for_bit(
    scheme: BucketScheme, half_life_s: float | None, epsilon: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = 300  # more than one read block (128 rows)
    compact = DecayingHistograms(scheme, rows, half_life_s=half_life_s, epsilon=epsilon)
    dense = Dense(scheme, rows, half_life_s, epsilon)
    level = rng.lognormal(-2.0, 1.5, rows)
    t = T0
    for step in range(40):
        n = int(rng.integers(1, 2000))
        r = rng.integers(0, rows, n)
        values = level[r] * rng.lognormal(0, 0.6, n) * (rng.random(n) > 0.05)
        times = t + rng.random(n) * 600
        compact.add(r, values, times, 0.1)
        dense.add(r, values, times, 0.1)
        if step % 7 == 3:  # take some back (vpa's subtract)
            k = min(n, 50)
            compact.subtract(r[:k], values[:k], times[:k], 0.05)
            dense.subtract(r[:k], values[:k], times[:k], 0.05)
        t += 600 if step != 20 else 150 * HOUR  # one jump far ahead
    assert np.array_equal(compact.weights, dense.weights)
    assert np.array_equal(compact.total, dense.total)
    assert np.array_equal(compact.reference_s, dense.reference_s, equal_nan=True)
    for fraction in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert np.array_equal(compact.percentile(fraction), percentile(dense, fraction))
    assert np.array_equal(compact.is_empty(), ~(dense.weights >= epsilon).any(axis=1))
    for row in (0, 17, rows - 1):  # checkpoints read the same row
        by_dense = DecayingHistograms(scheme, rows, half_life_s=half_life_s, epsilon=epsilon)
        by_dense.weights = dense.weights
        by_dense.total, by_dense.reference_s = dense.total.copy(), dense.reference_s.copy()
        assert compact.save_checkpoint(row) == by_dense.save_checkpoint(row)
    # Forgetting and renumbering rows, repeats and a reorder included, then more adds.
    kept = np.concatenate([rng.permutation(rows)[: rows // 2], [5, 5]])
    compact.keep_rows(kept)
    dense.weights, dense.total = dense.weights[kept], dense.total[kept]
    dense.reference_s = dense.reference_s[kept]
    compact.grow(kept.shape[0] + 10)
    grown = kept.shape[0] + 10
    dense.weights = np.concatenate([dense.weights, np.zeros((10, scheme.num_buckets))])
    dense.total = np.concatenate([dense.total, np.zeros(10)])
    dense.reference_s = np.concatenate([dense.reference_s, np.full(10, np.nan)])
    r = rng.integers(0, grown, 3000)
    values = rng.lognormal(-1.0, 2.0, 3000)
    times = t + rng.random(3000) * 600
    copy = compact.copy()
    compact.add(r, values, times, 1.0)
    dense.add(r, values, times, 1.0)
    assert np.array_equal(compact.weights, dense.weights)
    assert np.array_equal(compact.total, dense.total)
    assert np.array_equal(compact.percentile(0.9), percentile(dense, 0.9))
    assert copy.rows == grown and not np.array_equal(copy.total, compact.total)  # a copy


def test_a_row_keeps_only_the_buckets_between_its_lowest_and_highest_sample() -> None:
    hist = DecayingHistograms(FINE_CPU_SCHEME, 2, half_life_s=None, epsilon=0.0)
    hist.add(np.array([0, 0]), np.array([0.100, 0.200]), np.array([T0, T0]), 1.0)
    low, high = FINE_CPU_SCHEME.find_buckets(np.array([0.100, 0.200]))
    assert hist.stored_buckets == high - low + 1  # row 1 stores nothing
    assert hist.stored_buckets < FINE_CPU_SCHEME.num_buckets / 10
    hist.add(np.array([1]), np.array([0.150]), np.array([T0]), 1.0)
    assert hist.stored_buckets == high - low + 2
    dense = hist.weights
    assert dense.shape == (2, FINE_CPU_SCHEME.num_buckets)
    assert dense.sum() == 3.0 and dense[0, low] == 1.0 and dense[0, high] == 1.0


def test_snapshot_arrays_and_dense_assignment_round_trip() -> None:
    rng = np.random.default_rng(7)
    hist = DecayingHistograms(FINE_CPU_SCHEME, 50, half_life_s=HOUR, epsilon=1e-3)
    r = rng.integers(0, 50, 5000)
    hist.add(r, rng.lognormal(-2, 1, 5000), T0 + rng.random(5000) * 60, 1.0)
    arrays = hist.to_arrays("cpu_")
    back = DecayingHistograms(FINE_CPU_SCHEME, half_life_s=HOUR, epsilon=1e-3)
    back.load_arrays("cpu_", arrays)
    # float32 in the snapshot, as before the compact store
    assert np.array_equal(back.weights, hist.weights.astype(np.float32).astype(np.float64))
    assert back.stored_buckets <= hist.stored_buckets
    again = DecayingHistograms(FINE_CPU_SCHEME, half_life_s=HOUR, epsilon=1e-3)
    again.weights = hist.weights
    again.total, again.reference_s = hist.total.copy(), hist.reference_s.copy()
    assert np.array_equal(again.percentile(0.95), hist.percentile(0.95))
    assert again.stored_buckets <= hist.stored_buckets


def test_take_away_subtracts_from_distinct_dense_cells() -> None:
    hist = DecayingHistograms(FINE_CPU_SCHEME, 3, half_life_s=None, epsilon=0.0)
    hist.add(np.array([0, 2, 2]), np.array([0.1, 0.3, 0.5]), np.full(3, T0), 2.0)
    before = hist.weights
    nb = FINE_CPU_SCHEME.num_buckets
    cells = np.array([0 * nb + FINE_CPU_SCHEME.find_bucket(0.1),
                      2 * nb + FINE_CPU_SCHEME.find_bucket(0.5)])  # fmt: skip
    hist.take_away(cells, np.array([0.5, 2.0]))
    expected = before.reshape(-1).copy()
    expected[cells] -= np.array([0.5, 2.0])
    assert np.array_equal(hist.weights.reshape(-1), expected)
