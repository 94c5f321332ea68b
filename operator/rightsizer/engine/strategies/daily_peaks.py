"""Memory peaks and OOM kills per container and day, in a ring of the last ``slots`` days
(pure; the ``headroom`` strategy's memory state).

Each container's days are its own: ``[anchor + k·day, anchor + (k+1)·day)`` with the
anchor at its first sample, so its daily peaks depend on its own samples only — not on
the time of day or the date history ends, nor on which other containers share the state.
Every ring moves forward with the newest sample of any container ("now"), so a container
that stops reporting still forgets its old peaks once they leave the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from rightsizer.engine.buckets import BoolArray, FloatArray, IntArray
from rightsizer.quantity import DAY_S

_Rows = npt.NDArray[np.float64]


def _grown(array: FloatArray, size: int, fill: float) -> FloatArray:
    if array.shape[0] >= size:
        return array
    grown: FloatArray = np.concatenate([array, np.full(size - array.shape[0], fill)])
    return grown


class DailyPeaks:
    """Per container and day of the ring: the memory peak and the OOM kills."""

    def __init__(self, slots: int) -> None:
        self.peak_bytes: _Rows = np.zeros((0, slots))
        self.ooms: _Rows = np.zeros((0, slots))
        self.day: npt.NDArray[np.int64] = np.zeros((0, slots), dtype=np.int64)
        """Per container, which of its days each ring column holds."""
        self.anchor_s: FloatArray = np.zeros(0)
        """Per container, where its days start: its first sample (NaN: none yet)."""
        self.latest_s: float | None = None
        """The newest sample time of any container: "now" for every ring."""

    @property
    def slots(self) -> int:
        return int(self.day.shape[1])

    def grow(self, rows: int) -> None:
        extra = rows - self.peak_bytes.shape[0]
        if extra <= 0:
            return
        self.peak_bytes = np.concatenate([self.peak_bytes, np.zeros((extra, self.slots))])
        self.ooms = np.concatenate([self.ooms, np.zeros((extra, self.slots))])
        self.day = np.concatenate([self.day, np.zeros((extra, self.slots), np.int64)])
        self.anchor_s = _grown(self.anchor_s, rows, np.nan)

    def keep(self, rows: IntArray) -> None:
        """Keep only these rows (old ids), renumbered by position."""
        self.peak_bytes, self.ooms = self.peak_bytes[rows], self.ooms[rows]
        self.day, self.anchor_s = self.day[rows], self.anchor_s[rows]

    # -- adding -------------------------------------------------------------------------
    def current_day(self) -> IntArray:
        """Per container, the index of its day that holds the newest sample time."""
        latest = -np.inf if self.latest_s is None else self.latest_s
        with np.errstate(invalid="ignore"):
            days = np.floor((latest - self.anchor_s) / DAY_S)
        result: IntArray = np.where(np.isfinite(days), days, -1).astype(np.int64)
        return result

    def advance(self, first_s: FloatArray, latest_s: float) -> None:
        """Anchor new containers at ``first_s`` (their first sample) and move every ring
        forward to ``latest_s``, clearing the days that fall out: column ``j`` of a
        container holds the newest of its days ``d ≤ current`` with ``d mod slots = j``."""
        unanchored = np.isnan(self.anchor_s)
        self.anchor_s[unanchored] = first_s[unanchored]
        self.latest_s = latest_s if self.latest_s is None else max(self.latest_s, latest_s)
        current = self.current_day()[:, None]
        expected = current - (current - np.arange(self.slots)[None, :]) % self.slots
        stale = self.day != expected
        self.peak_bytes[stale] = 0.0
        self.ooms[stale] = 0.0
        self.day = expected

    def columns(self, rows: IntArray, times_s: FloatArray) -> tuple[IntArray, BoolArray]:
        """The ring column of each sample and whether its day is still in the window."""
        with np.errstate(invalid="ignore"):
            day_f = np.floor((times_s - self.anchor_s[rows]) / DAY_S)
        day = np.where(np.isfinite(day_f), day_f, -1).astype(np.int64)
        recent: BoolArray = (day >= 0) & (day > self.current_day()[rows] - self.slots)
        column: IntArray = day % self.slots
        return column, recent

    def add_peaks(self, rows: IntArray, columns: IntArray, peak_bytes: FloatArray) -> None:
        np.maximum.at(self.peak_bytes, (rows, columns), peak_bytes)

    def add_ooms(self, rows: IntArray, columns: IntArray) -> None:
        np.add.at(self.ooms, (rows, columns), 1.0)

    # -- reading ------------------------------------------------------------------------
    def window_peak_bytes(self, half_life_days: float | None = None) -> FloatArray:
        """The memory peak (OOM bumps included) over the window, 0 without samples. With
        ``half_life_days``, a decaying memory of peaks: each day's peak weighs
        ``0.5 ^ (age / half_life_days)`` (the newest day, age 0, weighs 1) and the
        largest weighed peak is returned."""
        if self.peak_bytes.shape[0] == 0:
            return np.zeros(0)
        if half_life_days is None:
            result: FloatArray = self.peak_bytes.max(axis=1)
            return result
        age = np.maximum(self.current_day()[:, None] - self.day, 0)
        weighed: FloatArray = (self.peak_bytes * np.power(0.5, age / half_life_days)).max(axis=1)
        return weighed

    def percentile(self, fraction: float) -> FloatArray:
        """Per container, the ``fraction`` percentile (lower value, no interpolation) of
        its daily peaks in the window; 0 without any."""
        peaks = np.sort(self.peak_bytes, axis=1)  # days without samples are 0: first
        days = np.count_nonzero(peaks > 0, axis=1)
        n = peaks.shape[1]
        rank = np.ceil(fraction * days).astype(np.int64) - 1
        index = np.clip(n - days + np.maximum(rank, 0), 0, max(n - 1, 0))
        picked = np.take_along_axis(peaks, index[:, None], axis=1)[:, 0] if n else np.zeros(0)
        result: FloatArray = np.where(days > 0, picked, 0.0)
        return result

    def jump_quantile(self, fraction: float) -> FloatArray:
        """Per container, the ``fraction`` percentile (lower value) of its day-over-day
        jumps in the window: each day's peak ÷ the largest peak of its earlier days there
        (a new high gives a ratio above 1, a quieter day one below). NaN where no day has
        an earlier one with a peak."""
        if self.peak_bytes.shape[0] == 0:
            return np.zeros(0)
        order = np.argsort(self.day, axis=1, kind="stable")
        peaks = np.take_along_axis(self.peak_bytes, order, axis=1)
        running = np.maximum.accumulate(peaks, axis=1)
        before = np.concatenate([np.zeros((peaks.shape[0], 1)), running[:, :-1]], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where((peaks > 0) & (before > 0), peaks / before, np.nan)
        ratios = np.sort(ratios, axis=1)  # NaN last
        count = np.count_nonzero(np.isfinite(ratios), axis=1)
        rank = np.maximum(np.ceil(fraction * count).astype(np.int64) - 1, 0)
        index = np.minimum(rank, max(ratios.shape[1] - 1, 0))[:, None]
        picked = np.take_along_axis(ratios, index, axis=1)[:, 0]
        result: FloatArray = np.where(count > 0, picked, np.nan)
        return result

    def oldest_age(self) -> FloatArray:
        """Per container, how many days ago its oldest day with a peak in the window was
        (+inf: none)."""
        age = (self.current_day()[:, None] - self.day).astype(np.float64)
        result: FloatArray = np.where(self.peak_bytes > 0, age, -np.inf).max(
            axis=1, initial=-np.inf
        )
        return np.where(np.isfinite(result), result, np.inf)

    def last_day_at_or_above(self, line: FloatArray) -> FloatArray:
        """Per container, how many days ago (0: the current day) its latest day with a
        peak at or above ``line`` was; +inf where no day in the window reached it (or
        the line is NaN)."""
        if self.peak_bytes.shape[0] == 0:
            return np.zeros(0)
        with np.errstate(invalid="ignore"):
            hit = (self.peak_bytes >= line[:, None]) & (self.peak_bytes > 0)
        age = (self.current_day()[:, None] - self.day).astype(np.float64)
        result: FloatArray = np.where(hit, age, np.inf).min(axis=1)
        return result

    def window_ooms(self) -> FloatArray:
        result: FloatArray = self.ooms.sum(axis=1)
        return result

    # -- snapshots (the names checkpoints have always used) -----------------------------
    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "slot_peak_bytes": self.peak_bytes,
            "slot_ooms": self.ooms,
            "slot_day": self.day,
            "day_anchor_s": self.anchor_s,
            "latest_s": np.asarray([np.nan if self.latest_s is None else self.latest_s]),
        }

    @classmethod
    def from_arrays(
        cls, slots: int, arrays: Mapping[str, npt.NDArray[np.generic]], first_s: FloatArray
    ) -> DailyPeaks:
        """The ring of a snapshot. Snapshots from before per-container days hold one ring
        of UTC days (``ceil(t / day) − 1``): read as days anchored at 0 (UTC midnight)."""
        ring = cls(slots)
        ring.peak_bytes = np.asarray(arrays["slot_peak_bytes"], dtype=np.float64)
        ring.ooms = np.asarray(arrays["slot_ooms"], dtype=np.float64)
        if ring.peak_bytes.shape[1:] != (slots,):
            raise ValueError("snapshot has another memory window")
        if "day_anchor_s" in arrays:
            ring.day = np.asarray(arrays["slot_day"], dtype=np.int64)
            ring.anchor_s = np.asarray(arrays["day_anchor_s"], dtype=np.float64)
            latest_s = float(np.asarray(arrays["latest_s"], dtype=np.float64)[0])
            ring.latest_s = None if math.isnan(latest_s) else latest_s
        else:
            rows = ring.peak_bytes.shape[0]
            utc_days = np.asarray(arrays["slot_day"], dtype=np.int64)
            ring.day = np.broadcast_to(utc_days, (rows, utc_days.shape[0])).copy()
            ring.anchor_s = np.where(np.isnan(first_s), np.nan, 0.0)
            latest_day = int(np.asarray(arrays["latest_day"])[0])
            ring.latest_s = None if latest_day < 0 else latest_day * DAY_S
        if ring.day.shape != ring.peak_bytes.shape:
            raise ValueError("snapshot's day ring does not match its peaks")
        return ring
