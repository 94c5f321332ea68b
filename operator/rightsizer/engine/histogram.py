"""Decaying histograms for many containers at once (``vpa-algorithm.md`` §1.1, §1.2, §1.8).

One ``DecayingHistograms`` holds one histogram per row (container) as a dense
``rows × buckets`` weight matrix, so adding a chunk of samples for thousands of containers
is a handful of NumPy operations. Semantics follow upstream VPA exactly:

* a bucket lighter than ``epsilon`` counts as empty: the histogram's min/max buckets are
  the first/last buckets at or above ``epsilon``;
* ``percentile(p)`` walks buckets from min to max, accumulating weight until it reaches
  ``p × total``, and answers that bucket's *upper edge* (no interpolation);
* a sample at time ``t`` weighs ``w × 2^((t − reference)/half_life)``; when ``t`` is more
  than 100 half-lives after the reference, the reference moves to ``t`` rounded to a
  multiple of the half-life and the stored weights are rescaled by the exact power of two.

With ``half_life_s=None`` the histograms do not decay (used by the percentile strategy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rightsizer.engine.buckets import BoolArray, BucketScheme, FloatArray, IntArray

#: VPA's ``maxDecayExponent``: re-base the reference once a weight would exceed 2^100.
MAX_DECAY_EXPONENT = 100
#: VPA's ``MaxCheckpointWeight``: the heaviest bucket is stored as this integer.
MAX_CHECKPOINT_WEIGHT = 10_000
#: Reads materialise the dense weights this many rows at a time (rows are independent:
#: the results are the same, the transient matrix is at most 128 × buckets).
READ_BLOCK_ROWS = 128


def _round_half_up(x: FloatArray) -> FloatArray:
    """Go's ``math.Floor(x + 0.5)`` / ``time.Round`` for positive halves."""
    return np.floor(x + 0.5)


@dataclass(frozen=True)
class HistogramCheckpoint:
    """Compact histogram state (VPA's ``HistogramCheckpoint``): integer weights that sum to
    anything, plus the real total weight they are to be rescaled to on load."""

    reference_s: float | None
    bucket_weights: dict[int, int]
    total_weight: float

    def to_dict(self) -> dict[str, object]:
        return {
            "referenceTimestamp": self.reference_s,
            "bucketWeights": {str(k): v for k, v in sorted(self.bucket_weights.items())},
            "totalWeight": self.total_weight,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> HistogramCheckpoint:
        ref = data.get("referenceTimestamp")
        weights = data.get("bucketWeights") or {}
        total = data.get("totalWeight", 0.0)
        if not isinstance(weights, dict) or not isinstance(total, int | float):
            raise ValueError("malformed histogram checkpoint")
        return cls(
            reference_s=float(ref) if isinstance(ref, int | float) else None,
            bucket_weights={int(k): int(v) for k, v in weights.items()},
            total_weight=float(total),
        )


def _exclusive_cumsum(widths: IntArray) -> IntArray:
    starts: IntArray = np.zeros(widths.shape[0], dtype=np.int64)
    if widths.shape[0] > 1:
        np.cumsum(widths[:-1], out=starts[1:])
    return starts


class DecayingHistograms:
    """``rows`` independent (decaying) histograms sharing one bucket scheme.

    Stored compactly: each row keeps only the buckets from the lowest to the highest it
    has ever been given (``_lo``, ``_width``), one after another in ``_data``; every other
    bucket is 0.0, as it would be in the dense ``rows × buckets`` matrix. A container's
    samples span a few hundred of the fine CPU scheme's 1,157 buckets, so this keeps a
    fraction of the dense matrix (``docs/design.md``, "Memory per container"). Writes
    touch the same cells with the same operations in the same order as on the dense
    matrix, and reads (percentiles, bucket ranges) run on the dense matrix materialised
    for the call, so every result is bit for bit the dense one's.
    """

    def __init__(
        self,
        scheme: BucketScheme,
        rows: int = 0,
        *,
        half_life_s: float | None,
        epsilon: float,
    ) -> None:
        if half_life_s is not None and half_life_s <= 0:
            raise ValueError("half-life must be positive")
        self.scheme = scheme
        self.half_life_s = half_life_s
        self.epsilon = epsilon
        self._lo: IntArray = np.zeros(rows, dtype=np.int64)
        """Each row's first stored bucket (0 for a row storing nothing)."""
        self._width: IntArray = np.zeros(rows, dtype=np.int64)
        """How many buckets each row stores (0: none, every weight is 0.0)."""
        self._start: IntArray = np.zeros(rows, dtype=np.int64)
        """Where each row's buckets begin in ``_data``."""
        self._data: FloatArray = np.zeros(0)
        self.total: FloatArray = np.zeros(rows, dtype=np.float64)
        #: NaN until a row's first sample (Go's zero time: the first sample always re-bases).
        self.reference_s: FloatArray = np.full(rows, np.nan, dtype=np.float64)

    @property
    def rows(self) -> int:
        return int(self.total.shape[0])

    # -- the compact store --------------------------------------------------------------
    @property
    def weights(self) -> npt.NDArray[np.float64]:
        """The dense ``rows × buckets`` weights (a new matrix: writing to it changes
        nothing here)."""
        dense: npt.NDArray[np.float64] = np.zeros((self.rows, self.scheme.num_buckets))
        if self._data.shape[0]:
            r = self._row_of_cell()
            dense[r, self._bucket_of_cell(r)] = self._data
        return dense

    @weights.setter
    def weights(self, dense: npt.NDArray[np.float64]) -> None:
        """Store a dense matrix: each row from its first to its last non-zero bucket."""
        nonzero = dense != 0.0
        stored = nonzero.any(axis=1)
        nb = dense.shape[1]
        lo = np.where(stored, np.argmax(nonzero, axis=1), 0).astype(np.int64)
        hi = np.where(stored, nb - 1 - np.argmax(nonzero[:, ::-1], axis=1), -1).astype(np.int64)
        self._lo = lo
        self._width = np.where(stored, hi - lo + 1, 0).astype(np.int64)
        self._start = _exclusive_cumsum(self._width)
        r = self._row_of_cell()
        self._data = np.asarray(dense[r, self._bucket_of_cell(r)], dtype=np.float64)

    @property
    def stored_buckets(self) -> int:
        """Buckets kept in memory, all rows together (the dense matrix: rows × buckets)."""
        return int(self._data.shape[0])

    def blocks(self) -> Iterator[tuple[slice, npt.NDArray[np.float64]]]:
        """The dense weights, ``READ_BLOCK_ROWS`` rows at a time: (rows, their weights)."""
        for first in range(0, self.rows, READ_BLOCK_ROWS):
            last = min(first + READ_BLOCK_ROWS, self.rows)
            dense: npt.NDArray[np.float64] = np.zeros((last - first, self.scheme.num_buckets))
            width = self._width[first:last]
            count = int(width.sum())
            if count:
                r = np.repeat(np.arange(last - first, dtype=np.int64), width)
                begin = int(self._start[first])
                cells = np.arange(count, dtype=np.int64)
                local_start = self._start[first:last] - begin
                dense[r, self._lo[first:last][r] + cells - local_start[r]] = self._data[
                    begin : begin + count
                ]
            yield slice(first, last), dense

    def _row_of_cell(self) -> IntArray:
        n = self._width.shape[0]
        rows: IntArray = np.repeat(np.arange(n, dtype=np.int64), self._width)
        return rows

    def _bucket_of_cell(self, rows_of_cells: IntArray) -> IntArray:
        cells = np.arange(rows_of_cells.shape[0], dtype=np.int64)
        buckets: IntArray = self._lo[rows_of_cells] + cells - self._start[rows_of_cells]
        return buckets

    def _cover(self, rows: IntArray, buckets: IntArray) -> None:
        """Widen rows' stored ranges so that each (row, bucket) given is stored."""
        if rows.shape[0] == 0:
            return
        stored = self._width > 0
        lo = np.where(stored, self._lo, np.iinfo(np.int64).max)
        hi = np.where(stored, self._lo + self._width - 1, -1)
        new_lo, new_hi = lo.copy(), hi.copy()
        np.minimum.at(new_lo, rows, buckets)
        np.maximum.at(new_hi, rows, buckets)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            return
        width = np.where(new_hi >= new_lo, new_hi - new_lo + 1, 0).astype(np.int64)
        self._relayout(np.where(width > 0, new_lo, 0).astype(np.int64), width)

    def _relayout(self, lo: IntArray, width: IntArray) -> None:
        """New ranges (each containing the old one), the stored weights moved over."""
        start = _exclusive_cumsum(width)
        data: FloatArray = np.zeros(int(width.sum()))
        if self._data.shape[0]:
            r = self._row_of_cell()
            data[start[r] + self._bucket_of_cell(r) - lo[r]] = self._data
        self._lo, self._width, self._start, self._data = lo, width, start, data

    def _cells(self, rows: IntArray, buckets: IntArray) -> IntArray:
        """Where (row, bucket) is in ``_data`` (stored ones only: ``_cover`` first)."""
        cells: IntArray = self._start[rows] + buckets - self._lo[rows]
        return cells

    def _row_weights(self, row: int) -> FloatArray:
        """One row's dense weights."""
        dense: FloatArray = np.zeros(self.scheme.num_buckets)
        lo, width, start = int(self._lo[row]), int(self._width[row]), int(self._start[row])
        dense[lo : lo + width] = self._data[start : start + width]
        return dense

    def grow(self, rows: int) -> None:
        """Make room for at least ``rows`` histograms (new ones are empty)."""
        extra = rows - self.rows
        if extra <= 0:
            return
        self._lo = np.concatenate([self._lo, np.zeros(extra, dtype=np.int64)])
        self._width = np.concatenate([self._width, np.zeros(extra, dtype=np.int64)])
        self._start = np.concatenate(
            [self._start, np.full(extra, self._data.shape[0], dtype=np.int64)]
        )
        self.total = np.concatenate([self.total, np.zeros(extra)])
        self.reference_s = np.concatenate([self.reference_s, np.full(extra, np.nan)])

    def copy(self) -> DecayingHistograms:
        other = DecayingHistograms(
            self.scheme, 0, half_life_s=self.half_life_s, epsilon=self.epsilon
        )
        other._lo = self._lo.copy()
        other._width = self._width.copy()
        other._start = self._start.copy()
        other._data = self._data.copy()
        other.total = self.total.copy()
        other.reference_s = self.reference_s.copy()
        return other

    def keep_rows(self, rows: IntArray) -> None:
        """Keep only ``rows``, in that order (forgotten containers' histograms go)."""
        width = self._width[rows]
        start = _exclusive_cumsum(width)
        picked = np.repeat(self._start[rows] - start, width) + np.arange(int(width.sum()))
        self._data = self._data[picked]
        self._lo, self._width, self._start = self._lo[rows], width, start
        self.total = self.total[rows]
        self.reference_s = self.reference_s[rows]

    # -- adding -------------------------------------------------------------------------
    def _rebase(self, rows: IntArray, times_s: FloatArray) -> None:
        """Move references forward exactly as a time-ordered stream of adds would."""
        assert self.half_life_s is not None
        hl = self.half_life_s
        limit = MAX_DECAY_EXPONENT * hl
        while True:
            ref = self.reference_s[rows]
            need = np.isnan(ref) | (times_s > ref + limit)
            if not need.any():
                return
            first = np.full(self.rows, np.inf)
            np.minimum.at(first, rows[need], times_s[need])
            moved = np.flatnonzero(np.isfinite(first))
            new_ref = _round_half_up(first[moved] / hl) * hl
            old_ref = self.reference_s[moved]
            exponent = np.where(np.isnan(old_ref), 0.0, _round_half_up((old_ref - new_ref) / hl))
            factor = np.exp2(exponent)
            scale = np.ones(self.rows)
            scale[moved] = factor
            self._data *= scale[self._row_of_cell()]
            self.total[moved] *= factor
            self.reference_s[moved] = new_ref

    def decay_factors(self, rows: IntArray, times_s: FloatArray) -> FloatArray:
        """``2^((t − reference)/half_life)`` per sample, after re-basing references."""
        if self.half_life_s is None:
            return np.ones(rows.shape[0])
        self._rebase(rows, times_s)
        return np.exp2((times_s - self.reference_s[rows]) / self.half_life_s)

    def add(
        self,
        rows: IntArray,
        values: FloatArray,
        times_s: FloatArray,
        base_weights: FloatArray | float,
    ) -> None:
        """Add samples (``rows[i]`` gets ``values[i]`` at ``times_s[i]``). Samples must be in
        time order per row across calls; within one call any order gives the same state."""
        if rows.shape[0] == 0:
            return
        weights = np.asarray(base_weights, dtype=np.float64) * self.decay_factors(rows, times_s)
        buckets = self.scheme.find_buckets(values)
        self._cover(rows, buckets)
        np.add.at(self._data, self._cells(rows, buckets), weights)
        np.add.at(self.total, rows, weights)

    def subtract(
        self, rows: IntArray, values: FloatArray, times_s: FloatArray, base_weights: float
    ) -> None:
        """Remove samples added before (VPA's ``SubtractSample``): weights that fall below
        epsilon are set to zero, as is a total below epsilon."""
        if rows.shape[0] == 0:
            return
        weights = base_weights * self.decay_factors(rows, times_s)
        buckets = self.scheme.find_buckets(values)
        self._cover(rows, buckets)
        cells = self._cells(rows, buckets)
        np.subtract.at(self._data, cells, weights)
        np.subtract.at(self.total, rows, weights)
        self._data[cells] = np.where(self._data[cells] < self.epsilon, 0.0, self._data[cells])
        self.total[rows] = np.where(self.total[rows] < self.epsilon, 0.0, self.total[rows])

    def take_away(self, cells: IntArray, amounts: FloatArray) -> None:
        """``weights.flat[cells] -= amounts`` for distinct dense cells (``row × buckets +
        bucket``) added before; totals are the caller's (the backtest's sliding window)."""
        nb = self.scheme.num_buckets
        rows, buckets = cells // nb, cells % nb
        self._cover(rows, buckets)
        self._data[self._cells(rows, buckets)] -= amounts

    # -- reading ------------------------------------------------------------------------
    def bucket_range(self) -> tuple[IntArray, IntArray, BoolArray]:
        """Per row: (min bucket, max bucket, non-empty) — first/last bucket ≥ epsilon."""
        parts = [self._range(weights) for _, weights in self.blocks()]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0, dtype=bool)
        min_b, max_b, nonempty = (np.concatenate(p) for p in zip(*parts, strict=True))
        return min_b, max_b, nonempty

    def _range(self, weights: npt.NDArray[np.float64]) -> tuple[IntArray, IntArray, BoolArray]:
        heavy = weights >= self.epsilon
        nonempty: BoolArray = np.asarray(heavy.any(axis=1), dtype=bool)
        nb = self.scheme.num_buckets
        min_b = np.argmax(heavy, axis=1).astype(np.int64)
        max_b = (nb - 1 - np.argmax(heavy[:, ::-1], axis=1)).astype(np.int64)
        return min_b, max_b, nonempty

    def percentile(self, fraction: float) -> FloatArray:
        """VPA's ``Percentile``: per row, the upper edge of the bucket where the running
        weight from the min bucket reaches ``fraction × total``; 0 for an empty row."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"percentile fraction must be within [0, 1], got {fraction}")
        result: FloatArray = np.zeros(self.rows)
        idx = np.arange(self.scheme.num_buckets)
        for rows, weights in self.blocks():
            min_b, max_b, nonempty = self._range(weights)
            in_range = (idx >= min_b[:, None]) & (idx <= max_b[:, None])
            running = np.cumsum(np.where(in_range, weights, 0.0), axis=1)
            threshold = fraction * self.total[rows]
            hit = (running >= threshold[:, None]) & in_range & (idx < max_b[:, None])
            bucket = np.where(hit.any(axis=1), np.argmax(hit, axis=1), max_b).astype(np.int64)
            result[rows] = np.where(nonempty, self.scheme.upper_edges(bucket), 0.0)
        return result

    def is_empty(self) -> BoolArray:
        empty: BoolArray = np.ones(self.rows, dtype=bool)
        for rows, weights in self.blocks():
            empty[rows] = ~(weights >= self.epsilon).any(axis=1)
        return empty

    # -- whole-state snapshots (rightsizer's own strategies) -----------------------------
    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[np.generic]]:
        """All rows as arrays; weights as float32 (7 significant digits is plenty for
        percentiles and keeps a checkpoint small)."""
        return {
            f"{prefix}weights": self.weights.astype(np.float32),
            f"{prefix}total": self.total,
            f"{prefix}reference_s": self.reference_s,
        }

    def load_arrays(self, prefix: str, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
        weights = np.asarray(arrays[f"{prefix}weights"], dtype=np.float64)
        if weights.ndim != 2 or weights.shape[1] != self.scheme.num_buckets:
            raise ValueError("snapshot histogram has another bucket scheme")
        self.total = np.asarray(arrays[f"{prefix}total"], dtype=np.float64)
        self.reference_s = np.asarray(arrays[f"{prefix}reference_s"], dtype=np.float64)
        self.weights = weights

    # -- checkpoints (§1.8) -------------------------------------------------------------
    def save_checkpoint(self, row: int) -> HistogramCheckpoint:
        """Scale so the heaviest bucket is 10000, round half-up, drop zeros; keep the real
        total weight."""
        weights = self._row_weights(row)
        min_b, max_b, nonempty = self._range(weights[None, :])
        ref = self.reference_s[row]
        reference = None if np.isnan(ref) else float(ref)
        if not nonempty[0]:
            return HistogramCheckpoint(reference, {}, float(self.total[row]))
        window = weights[min_b[0] : max_b[0] + 1]
        ratio = MAX_CHECKPOINT_WEIGHT / float(window.max())
        stored = np.floor(window * ratio + 0.5).astype(np.int64)
        weights_out = {int(min_b[0] + i): int(w) for i, w in enumerate(stored.tolist()) if w > 0}
        return HistogramCheckpoint(reference, weights_out, float(self.total[row]))

    def load_checkpoint(self, row: int, checkpoint: HistogramCheckpoint) -> None:
        """Add a checkpoint's state to ``row``: ``wᵢ = storedᵢ · total / Σstored``."""
        stored_sum = sum(checkpoint.bucket_weights.values())
        if stored_sum == 0:
            return
        if checkpoint.reference_s is not None and self.half_life_s is not None:
            if np.isnan(self.reference_s[row]):
                self.reference_s[row] = checkpoint.reference_s
            elif self.reference_s[row] != checkpoint.reference_s:
                raise ValueError("checkpoint reference differs from the histogram's")
        ratio = checkpoint.total_weight / stored_sum
        nb = self.scheme.num_buckets
        items = [(b, w) for b, w in checkpoint.bucket_weights.items() if 0 <= b < nb]
        if items:
            buckets = np.asarray([b for b, _ in items], dtype=np.int64)
            self._cover(np.full(buckets.shape[0], row, dtype=np.int64), buckets)
            for bucket, weight in items:
                cell = int(self._start[row]) + bucket - int(self._lo[row])
                self._data[cell] += weight * ratio
        self.total[row] += checkpoint.total_weight
