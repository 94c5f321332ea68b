"""Which memory buffer predicts tomorrow's peak best? The check behind ``headroom``'s
memory line, on the Bitbrains trace (read in place from ``../shared/data``).

    python bench/bench_backtest_buffers.py

For every VM and day with at least two earlier days, ``M`` is the largest daily peak so
far and each rule draws a line from what was known the evening before. A *miss* is a day
whose peak crossed the line (an OOM day for a limit there); *cost* is the sum of the
lines over the sum of ``M`` (1.00 = no buffer). Rules compared at similar cost:

* flat: ``M × b``;
* confidence: ``M × (b + c / n)`` with ``n`` days of history (``headroom``'s rule);
* spikiness: ``M × clip(largest past jump over the running peak, b, cap)`` — the buffer
  grows with how far the VM has jumped before;
* successive peaks: ``M × (b + c / n + k × (r − 1))`` with ``r`` the largest ratio of a
  daily peak to the day before's — a buffer from the workload's own spike history;
* confidence, other shapes: ``M × (b + c / n^p)`` — wider right after warm-up and
  narrower soon after (p > 1), or the other way round;
* decayed peaks: ``D × (b + c / n)`` with ``D`` the largest daily peak weighed by
  ``0.5 ^ (age in days / h)`` (``headroom``'s ``memory_peak_half_life``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rightsizer.sources.bitbrains import read_bitbrains

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT.parent / "shared" / "data" / "bitbrains_rnd_2013-08_500vms.csv.xz"
DAY_S = 86_400.0


def daily_peaks() -> np.ndarray:
    frame = read_bitbrains(TRACE)
    day = (np.ceil(frame["timestamp"] / DAY_S) - 1).astype(int)
    table = frame.assign(day=day).pivot_table(
        index="workload", columns="day", values="memory", aggfunc="max"
    )
    peaks: np.ndarray = table.to_numpy(dtype=np.float64)
    return peaks


def main() -> None:
    peaks = daily_peaks()
    vms, days = peaks.shape
    running = np.full((vms, days), np.nan)  # M: the peak before each day
    history = np.zeros((vms, days))  # n: days with data before each day
    jump = np.ones((vms, days))  # largest past ratio of a new peak over the running one
    for d in range(1, days):
        before = peaks[:, d - 1]
        running[:, d] = np.fmax(running[:, d - 1], before)
        history[:, d] = history[:, d - 1] + np.isfinite(before)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(before > running[:, d - 1], before / running[:, d - 1], 1.0)
        jump[:, d] = np.fmax(jump[:, d - 1], np.nan_to_num(ratio, nan=1.0))
    successive = np.ones((vms, days))  # largest ratio of a daily peak to the day before's
    decayed = {h: np.full((vms, days), np.nan) for h in (14.0, 28.0)}
    filled = np.nan_to_num(peaks, nan=0.0)
    for d in range(2, days):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = filled[:, 1:d] / filled[:, : d - 1]
        successive[:, d] = np.where(np.isfinite(ratio), ratio, 1.0).max(axis=1)
        age = d - 1 - np.arange(d)
        for h, table in decayed.items():
            table[:, d] = (filled[:, :d] * np.power(0.5, age / h)[None, :]).max(axis=1)
    scored = (np.arange(days)[None, :] >= 2) & np.isfinite(running) & np.isfinite(peaks)
    actual, m, n, j = peaks[scored], running[scored], history[scored], jump[scored]
    r = successive[scored]

    rules: list[tuple[str, np.ndarray]] = []
    for b in (1.15, 1.3, 1.5):
        rules.append((f"flat × {b}", m * b))
    for b, c in ((1.15, 0.5), (1.15, 1.0), (1.2, 1.0), (1.15, 2.0)):
        rules.append((f"confidence × ({b} + {c}/n)", m * (b + c / n)))
    for b, cap in ((1.15, 1.5), (1.15, 2.0)):
        rules.append((f"spikiness × clip(jump, {b}, {cap})", m * np.clip(j, b, cap)))
    for b, c, power in ((1.15, 2.0, 2.0), (1.2, 1.0, 1.5), (1.1, 1.0, 0.75)):
        rules.append((f"confidence × ({b} + {c}/n^{power})", m * (b + c / n**power)))
    for b, k in ((1.05, 0.05), (1.1, 0.1)):
        rules.append(
            (f"successive peaks × ({b} + 1.0/n + {k} × (r − 1))", m * (b + 1 / n + k * (r - 1)))
        )
    for h, table in decayed.items():
        for b in (1.15, 1.3):
            rules.append(
                (f"decayed peaks (h = {h:.0f} d) × ({b} + 1.0/n)", table[scored] * (b + 1 / n))
            )
    print(f"{actual.shape[0]} VM-days scored (of {vms} VMs)\n")
    print("| rule | cost | missed days |\n|---|---:|---:|")
    for name, line in sorted(rules, key=lambda r: float(r[1].sum())):
        print(f"| {name} | {line.sum() / m.sum():.3f} | {int((actual > line).sum())} |")


if __name__ == "__main__":
    main()
