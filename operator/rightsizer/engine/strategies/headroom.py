"""Strategy ``headroom``: rightsizer's own. Memory from recent peaks with a buffer that is
wide while history is short and after OOM kills; CPU from a percentile chosen per
container by what covering its tail costs. Designed on the Bitbrains backtest
(``docs/quality.md`` has the evidence and the variants that lost).

Memory (incompressible: above the limit the container is OOM-killed; above the request
it is first in line for eviction when the node runs short):

* the daily peaks of the last ``memory_window_s`` (a ring of one maximum per day, so a
  peak leaves the window in one step, not by a drift that would roll pods every few
  days). After an OOM kill the day's peak is at least the kill line bumped as upstream
  VPA bumps it: ``max(line × oom_bump_up_ratio, line + oom_min_bump_up_bytes)``;
* **limit** (the OOM line) = ``peak × (1 + memory_margin + memory_confidence_margin /
  days) × (1 + oom_margin) ^ ooms`` — ``peak`` the largest daily peak in the window,
  ``days`` of history (at least ``MIN_HISTORY_DAYS``), ``ooms`` the OOM kills in the
  window (at most ``max_oom_steps``). Young containers set new peaks often, old ones
  rarely, so the buffer shrinks with history, as VPA's upper bound does. On Bitbrains
  this misses fewer days than a flat buffer of the same cost, while a buffer scaled by
  observed spikiness (past jumps over the running peak) misses more
  (``bench/bench_backtest_buffers.py``, ``docs/quality.md``);
* with ``memory_spike_quantile`` (off by default), ``memory_margin`` is replaced by the
  container's own jumps (a percentile of day peak ÷ earlier peak − 1, clipped): on the
  Bitbrains halves the same cost-miss curve as every other buffer (``docs/quality.md``);
* with ``memory_peak_half_life`` (off by default), ``peak`` is a decaying memory of
  peaks instead: the largest daily peak weighed by ``0.5 ^ (age / half-life)``. Measured
  with hysteresis on the Bitbrains halves: a little less GiB-hours by limit at equal OOM
  days on the tuning half, not no-worse than the default on the held-out half
  (``bench/bench_peak_memory.py``, ``docs/quality.md``);
* **request** = the ``memory_request_percentile`` of the daily peaks (p90: what the
  container reaches on nine days out of ten), never above the limit. With 100 the
  request is the limit (Guaranteed memory). A limit policy may give a higher limit,
  never a lower one: the limit is at least the OOM line (the memory upper bound).

CPU (compressible: a miss is slowness under contention, never a kill):

* a decaying fine histogram (1 % buckets, half-life ``cpu_half_life_s``);
* start at ``cpu_percentile`` (p95) and climb the ladder p96, p97, p98, p99, p99.5, max
  (up to ``cpu_percentile_max``) while each percentage point of time covered costs at
  most ``cpu_step_millicores``. A steady container's tail is flat and it climbs to the
  top for a few millicores; a bursty one's tail is steep and it stays at p95: paying
  for rare bursts costs much and buys little. (Time above request falls by more than
  half against a fixed p95 at almost the same cost; the CPU left unmet does not grow.)
* no CPU limit: bursts use idle capacity instead of being throttled;
* **censored usage**: when at least ``saturation_share`` of the (weighted) samples sit at
  or above ``saturation_fraction`` of the current CPU limit, demand is unknown (usage
  cannot exceed the limit), so the request never goes below the current request —
  or, with ``saturation_probe`` (off by default), is probed down from the limit a rung
  per quiet day and put back at the limit on the next saturated day (issue 18 item 2;
  measured in ``docs/quality.md``: less core-hours, not no-worse than the default on
  the held-out half).

Hysteresis (off by default: ``keep_below = keep_above = 0``): with a band on, every
recommendation carries a ``KeepBand`` around its values; a value in force inside it is
kept (``model/change.py``, the rule Apply, Annotate and the backtest share). On the
held-out half of the Bitbrains VMs it cut churn from 29 % to 17 % but dominated no
default (``bench/bench_hysteresis.py``, ``docs/quality.md``).

Floors are per container and fit small containers and sidecars: CPU request ≥ 2m,
memory request ≥ 4 MiB, memory limit ≥ peak + 8 MiB (``docs/design.md``). Profiles
(``PROFILES``) are named sets of these settings, points on the savings-versus-risk
frontier of the backtest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from rightsizer.engine.buckets import FloatArray, IntArray
from rightsizer.engine.estimators import Estimates
from rightsizer.engine.histogram import DecayingHistograms
from rightsizer.engine.policy import ControlledValues, SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation, KeepBand, Resources
from rightsizer.engine.settings import (
    Setting,
    parse_cpu_millicores,
    parse_duration_s,
    parse_float,
    parse_memory_bytes,
    parse_non_negative,
    parse_percent_as_fraction,
)
from rightsizer.engine.strategies.base import (
    Arrays,
    RawRecommendations,
    SizingContext,
    SnapshotKindError,
    UsageState,
    finalize,
)
from rightsizer.engine.strategies.daily_peaks import DailyPeaks
from rightsizer.engine.strategies.percentile import FINE_CPU_SCHEME, PercentileStrategy
from rightsizer.engine.usage import ContainerRegistry, UsageChunk
from rightsizer.quantity import DAY_S

MIB = 2**20
#: Memory peaks are kept per day: one ring slot per day of each container (daily_peaks.py).
SLOT_S = DAY_S
#: Fewer days than this count as this many in the confidence buffer (no division by ~0).
MIN_HISTORY_DAYS = 0.25
#: CPU histogram weights below this count as empty (base weight 1, see ``histogram.py``).
CPU_EPSILON = 1e-3
#: The CPU ladder above the starting percentile (1.0 = the largest sample).
CPU_LADDER = (0.96, 0.97, 0.98, 0.99, 0.995, 1.0)
#: Checkpoint array names of the CPU day ring start with this.
CPU_DAYS = "cpu_day_"


@dataclass(frozen=True)
class HeadroomSettings:
    cpu_percentile: float = 0.95
    """Where the CPU ladder starts: every container gets at least this percentile."""
    cpu_percentile_max: float = 1.0
    """Where the ladder ends (1.0: the largest sample)."""
    cpu_step_millicores: float = 20.0
    """Climb one percentage point of time while it costs at most this many millicores."""
    cpu_half_life_s: float = 7 * DAY_S
    """Half-life of CPU sample weights."""
    saturation_fraction: float = 0.95
    """CPU at or above this fraction of the current limit counts as saturated."""
    saturation_share: float = 0.01
    """With at least this share of saturated samples, never go below the current request."""
    saturation_probe: float = 0.0
    """Saturation as unknown demand (0: off — a saturated container keeps its current
    request). With a step ``s`` in (0, 1) the kept request is probed down instead:
    ``current limit × (1 − s) ^ quiet days``, where the quiet days are the days since
    the last one whose CPU peak reached ``saturation_fraction`` of the current limit,
    less ``saturation_probe_grace_days``; a new saturated day puts it back at the limit
    (never below the ladder's value)."""
    saturation_probe_grace_days: float = 1.0
    """Quiet days before the probe starts (1: a day saturated yesterday keeps it full)."""
    memory_window_s: float = 30 * DAY_S
    """Memory peaks (and OOM kills) older than this are forgotten (whole days)."""
    memory_peak_half_life_s: float | None = None
    """A decaying memory of peaks for the limit (None: off, the window's largest daily
    peak): each day's peak weighs ``0.5 ^ (age / half-life)`` and the largest weighed
    peak is the one the buffer multiplies (issue 18 item 2, idea (a); measured in
    ``docs/quality.md``). Pair it with a longer ``memory_window_s`` (weeks)."""
    memory_margin: float = 0.15
    """Buffer on the memory peak once history is long (fraction)."""
    memory_spike_quantile: float | None = None
    """A buffer sized by the workload's own spike history (None: off, ``memory_margin``
    for everyone): this percentile of the container's day-over-day jumps (a day's peak ÷
    the largest peak of its earlier days in the window) − 1, clipped to
    [``memory_spike_margin_min``, ``memory_spike_margin_max``], replaces
    ``memory_margin`` (kept where no jump is known yet)."""
    memory_spike_margin_min: float = 0.05
    """The spike buffer's least value (steady workloads)."""
    memory_spike_margin_max: float = 0.5
    """The spike buffer's largest value (a jump beyond any buffer is left to the OOM bump)."""
    memory_confidence_margin: float = 1.0
    """Extra buffer ÷ days of history (1.0: +100 % after one day, +10 % after ten)."""
    memory_confidence_power: float = 1.0
    """…÷ days of history to this power (1: as above; below 1 the buffer narrows more
    slowly, above 1 faster — idea (c) of issue 18 item 2; neither won on the Bitbrains
    tuning half, ``docs/quality.md``)."""
    oom_margin: float = 0.1
    """Extra buffer factor per OOM kill in the window."""
    max_oom_steps: int = 5
    """OOM kills beyond this many widen the buffer no further."""
    oom_bump_up_ratio: float = 1.2
    """After an OOM the peak is at least the kill line × this (as upstream VPA)."""
    oom_min_bump_up_bytes: float = 100.0 * MIB
    """…and at least the kill line + this."""
    memory_request_percentile: float = 0.9
    """Memory request = this percentile of the daily peaks (1.0: request = limit)."""
    min_cpu_millicores: int = 2
    """CPU request floor, per container: the smallest request the kernel tells apart
    (Kubernetes turns a request into at least 2 CPU shares, i.e. 2m)."""
    min_memory_bytes: int = 4 * MIB
    """Memory request floor, per container: only keeps a request from being 0."""
    min_memory_headroom_bytes: int = 8 * MIB
    """The memory limit is at least the peak + this, per container: a small container's
    relative buffer is a few MiB, less than one allocation burst (below ≈ 53 MiB of peak
    this is the larger of the two; above, the relative buffer is)."""
    keep_below: float = 0.0
    """Hysteresis (0: off): a value in force down to this fraction below the
    recommendation is kept (``KeepBand``; the minimum change still applies)."""
    keep_above: float = 0.0
    """Hysteresis: a value in force up to this fraction above the recommendation is kept."""
    keep_limit_below: float | None = None
    """Hysteresis of the memory limit (the OOM line) below the recommended one (None: as
    ``keep_below``); never below the peak + ``min_memory_headroom``."""
    keep_limit_above: float | None = None
    """…and above it (None: as ``keep_above``)."""
    keep_cpu_millicores: float = 5.0
    """With hysteresis on, the band is at least this wide on each side for CPU…"""
    keep_memory_bytes: float = 8.0 * MIB
    """…and this for memory (tiny values: 10 % of a few millicores is nothing)."""

    def __post_init__(self) -> None:
        if not 0 <= self.memory_request_percentile <= 1:
            raise ValueError("memory_request_percentile must be a fraction within [0, 1]")
        if not 0 <= self.cpu_percentile <= self.cpu_percentile_max <= 1:
            raise ValueError("need 0 ≤ cpu_percentile ≤ cpu_percentile_max ≤ 1")
        for name in (
            "cpu_step_millicores",
            "memory_margin",
            "memory_confidence_margin",
            "oom_margin",
            "oom_min_bump_up_bytes",
            "keep_below",
            "keep_above",
            "keep_cpu_millicores",
            "keep_memory_bytes",
            "memory_spike_margin_min",
            "memory_spike_margin_max",
            "saturation_probe_grace_days",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0")  # fmt: skip
        if not (math.isfinite(self.memory_confidence_power) and self.memory_confidence_power > 0):
            raise ValueError("memory_confidence_power must be positive")
        if not 0 <= self.saturation_probe < 1:
            raise ValueError("saturation_probe must be a fraction within [0, 1)")
        spike = self.memory_spike_quantile
        if spike is not None and not 0 < spike <= 1:
            raise ValueError("memory_spike_quantile must be a fraction within (0, 1]")
        if self.memory_spike_margin_min > self.memory_spike_margin_max:
            raise ValueError("memory_spike_margin_min must not exceed memory_spike_margin_max")
        if self.cpu_half_life_s <= 0:
            raise ValueError("the CPU half-life must be positive")
        half_life = self.memory_peak_half_life_s
        if half_life is not None and not (math.isfinite(half_life) and half_life > 0):
            raise ValueError("the memory peak half-life must be positive")
        if self.memory_window_s < SLOT_S:
            raise ValueError("the memory window must be at least one day")
        if not 0 < self.saturation_fraction <= 1 or not 0 < self.saturation_share <= 1:
            raise ValueError("saturation_fraction and saturation_share must be in (0, 1]")
        if self.oom_bump_up_ratio < 1 or self.max_oom_steps < 0:
            raise ValueError("oom_bump_up_ratio must be ≥ 1 and max_oom_steps ≥ 0")
        if min(self.min_cpu_millicores, self.min_memory_bytes, self.min_memory_headroom_bytes) < 0:
            raise ValueError("floors must not be negative")
        for name in ("keep_limit_below", "keep_limit_above"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0")
        if max(self.keep_below, self.keep_limit_below or 0.0) >= 1:
            raise ValueError("keep_below and keep_limit_below must be fractions below 1")

    @property
    def hysteresis(self) -> bool:
        return self.keep_below > 0 or self.keep_above > 0

    @property
    def memory_slots(self) -> int:
        return math.ceil(self.memory_window_s / SLOT_S - 1e-9)


def _grown(array: FloatArray, size: int, fill: float) -> FloatArray:
    if array.shape[0] >= size:
        return array
    grown: FloatArray = np.concatenate([array, np.full(size - array.shape[0], fill)])
    return grown


class HeadroomUsage:
    """Per container: a decaying fine CPU histogram; per container and day (a ring of
    ``memory_slots`` days): the memory peak and the OOM kills; the history span."""

    KIND: ClassVar[str] = "HeadroomUsage"
    """The name of this state's checkpoint format (``history/checkpoints.py``)."""

    def __init__(self, settings: HeadroomSettings | None = None) -> None:
        self.settings = settings or HeadroomSettings()
        s = self.settings
        self.cpu = DecayingHistograms(
            FINE_CPU_SCHEME, half_life_s=s.cpu_half_life_s, epsilon=CPU_EPSILON
        )
        self.days = DailyPeaks(s.memory_slots)
        """Memory peaks and OOM kills per container and day (its own days)."""
        self.cpu_days = DailyPeaks(s.memory_slots if self.probing else 1)
        """CPU peaks (cores, in the ring's ``peak_bytes``) per container and day: when
        the container last sat at its limit. Kept only with ``saturation_probe`` on (a
        one-day stub otherwise), so that the default's state and checkpoints stay as
        they were."""
        self.peak_memory_bytes: FloatArray = np.zeros(0)
        self.cpu_samples: FloatArray = np.zeros(0)
        self.memory_samples: FloatArray = np.zeros(0)
        self.oom_kills: FloatArray = np.zeros(0)
        self.first_s: FloatArray = np.zeros(0)
        self.last_s: FloatArray = np.zeros(0)

    @property
    def rows(self) -> int:
        return self.cpu.rows

    @property
    def probing(self) -> bool:
        return self.settings.saturation_probe > 0

    _ROW_ARRAYS = ("peak_memory_bytes", "cpu_samples", "memory_samples", "oom_kills",
                   "first_s", "last_s")  # fmt: skip

    def snapshot(self) -> dict[str, npt.NDArray[np.generic]]:
        """The whole state as arrays (for checkpoints)."""
        arrays = self.cpu.to_arrays("cpu_")
        arrays.update({name: getattr(self, name) for name in self._ROW_ARRAYS})
        arrays.update(self.days.to_arrays())
        if self.probing:
            arrays.update({CPU_DAYS + k: v for k, v in self.cpu_days.to_arrays().items()})
        return arrays

    @classmethod
    def restore(
        cls, settings: HeadroomSettings, arrays: Mapping[str, npt.NDArray[np.generic]]
    ) -> HeadroomUsage:
        state = cls(settings)
        state.cpu.load_arrays("cpu_", arrays)
        for name in cls._ROW_ARRAYS:
            setattr(state, name, np.asarray(arrays[name], dtype=np.float64))
        state.days = DailyPeaks.from_arrays(settings.memory_slots, arrays, state.first_s)
        cpu_days = {k[len(CPU_DAYS) :]: v for k, v in arrays.items() if k.startswith(CPU_DAYS)}
        if cpu_days and state.probing:
            state.cpu_days = DailyPeaks.from_arrays(settings.memory_slots, cpu_days, state.first_s)
        else:  # a snapshot taken without the probe: no CPU peaks known yet
            state.cpu_days.grow(state.rows)
        return state

    def grow(self, count: int) -> None:
        if count <= self.rows:
            return
        self.cpu.grow(count)
        self.days.grow(count)
        self.cpu_days.grow(count)
        self.peak_memory_bytes = _grown(self.peak_memory_bytes, count, 0.0)
        self.cpu_samples = _grown(self.cpu_samples, count, 0.0)
        self.memory_samples = _grown(self.memory_samples, count, 0.0)
        self.oom_kills = _grown(self.oom_kills, count, 0.0)
        self.first_s = _grown(self.first_s, count, np.nan)
        self.last_s = _grown(self.last_s, count, np.nan)

    def keep(self, containers: IntArray, instances: IntArray, instance_container: IntArray) -> None:
        """Keep only ``containers`` (old ids), renumbered by position (no per-pod state)."""
        if containers.shape[0]:
            self.grow(int(containers.max()) + 1)
        self.cpu.keep_rows(containers)
        for name in self._ROW_ARRAYS:
            setattr(self, name, getattr(self, name)[containers])
        self.days.keep(containers)
        self.cpu_days.keep(containers)

    def add(self, chunk: UsageChunk) -> None:
        """Add samples; chunks in time order (within a chunk, any order)."""
        if len(chunk) == 0:
            return
        s = self.settings
        self.grow(int(chunk.container_id.max()) + 1)
        cid, ts = chunk.container_id, chunk.timestamp_s
        cpu_ok = np.isfinite(chunk.cpu_cores) & (chunk.cpu_cores >= 0) & ~chunk.oom
        self.cpu.add(cid[cpu_ok], chunk.cpu_cores[cpu_ok], ts[cpu_ok], chunk.weights(cpu_ok))
        np.add.at(self.cpu_samples, cid[cpu_ok], chunk.weights(cpu_ok))

        mem_ok = np.isfinite(chunk.memory_bytes) & (chunk.memory_bytes > 0) & ~chunk.oom
        np.add.at(self.memory_samples, cid[mem_ok], chunk.weights(mem_ok))
        np.maximum.at(self.peak_memory_bytes, cid[mem_ok], chunk.memory_bytes[mem_ok])
        np.add.at(self.oom_kills, cid[chunk.oom], 1.0)

        seen = cpu_ok | mem_ok | chunk.oom
        np.fmin.at(self.first_s, cid[seen], ts[seen])
        np.fmax.at(self.last_s, cid[seen], ts[seen])
        if not seen.any():
            return
        self.days.advance(self.first_s, float(ts[seen].max()))
        col, recent = self.days.columns(cid, ts)
        usage = mem_ok & recent
        self.days.add_peaks(cid[usage], col[usage], chunk.memory_bytes[usage])
        oom = chunk.oom & recent
        line = np.nan_to_num(chunk.memory_bytes[oom], nan=0.0)
        bumped = np.maximum(line * s.oom_bump_up_ratio, line + s.oom_min_bump_up_bytes)
        self.days.add_peaks(cid[oom], col[oom], bumped)
        self.days.add_ooms(cid[oom], col[oom])
        if self.probing:
            self.cpu_days.advance(self.first_s, float(ts[seen].max()))
            cpu_col, cpu_recent = self.cpu_days.columns(cid, ts)
            cpu_day = cpu_ok & cpu_recent
            self.cpu_days.add_peaks(cid[cpu_day], cpu_col[cpu_day], chunk.cpu_cores[cpu_day])

    def history_days(self) -> FloatArray:
        result: FloatArray = np.nan_to_num(self.last_s - self.first_s, nan=0.0) / DAY_S
        return result

    def saturated(self, limit_cores: FloatArray, fraction: float, share: float) -> FloatArray:
        """1.0 where at least ``share`` of the (decayed) CPU weight sits at or above
        ``fraction × limit``; 0.0 elsewhere and where there is no limit."""
        if self.cpu.rows == 0:
            return np.zeros(0)
        line = np.nan_to_num(limit_cores * fraction, nan=np.inf)
        first = np.searchsorted(self.cpu.scheme.starts_array, line, side="left")
        above = np.zeros(self.cpu.rows)
        for rows, weights in self.cpu.blocks():  # a block of rows at a time: less memory
            tail = np.cumsum(weights[:, ::-1], axis=1)[:, ::-1]
            tail = np.concatenate([tail, np.zeros((weights.shape[0], 1))], axis=1)
            at = np.minimum(first[rows], weights.shape[1])[:, None]
            above[rows] = np.take_along_axis(tail, at, 1)[:, 0]
        with np.errstate(invalid="ignore"):
            hit = (above >= share * self.cpu.total) & (self.cpu.total > 0)
        result: FloatArray = np.where(hit & np.isfinite(line), 1.0, 0.0)
        return result


def _amounts(values: FloatArray) -> IntArray:
    clean = np.nan_to_num(values, nan=0.0, posinf=0.0)
    result: IntArray = np.ceil(np.maximum(clean, 0.0) - 1e-9).astype(np.int64)
    return result


def cpu_ladder(state: HeadroomUsage, settings: HeadroomSettings) -> FloatArray:
    """CPU cores per container: the highest rung of the percentile ladder reached while
    every step costs at most ``cpu_step_millicores`` per percentage point."""
    request = state.cpu.percentile(settings.cpu_percentile)
    climbing = np.ones(request.shape[0], dtype=bool)
    level = settings.cpu_percentile
    step_cores = settings.cpu_step_millicores / 1000.0
    for rung in CPU_LADDER:
        if rung <= level or rung > settings.cpu_percentile_max:
            continue
        value = state.cpu.percentile(rung)
        affordable = (value - request) <= step_cores * (rung - level) * 100.0
        climbing &= affordable
        request = np.where(climbing, np.maximum(value, request), request)
        level = rung
    return request


def probed_request(
    state: HeadroomUsage, request: FloatArray, limit: FloatArray, s: HeadroomSettings
) -> FloatArray:
    """The CPU request a saturated container keeps: the current one, or with
    ``saturation_probe`` on, the current limit (the cap that hides the demand) × (1 −
    probe) per quiet day — days since its CPU peak last reached ``saturation_fraction`` ×
    the limit, less the grace days. Anchored on the limit, not on the request in force,
    so that repeated recommendations do not compound the step, and a saturated day puts
    the request back at the cap."""
    if s.saturation_probe <= 0:
        return request
    quiet = state.cpu_days.last_day_at_or_above(limit * s.saturation_fraction)
    # no saturated day in the ring: count from its oldest day (after a restart from a
    # checkpoint taken without the probe the ring starts empty and the probe starts
    # over); no CPU day at all: the full limit
    oldest = state.cpu_days.oldest_age()
    quiet = np.where(np.isfinite(oldest), np.fmin(quiet, oldest), 0.0)
    rungs = np.maximum(quiet - s.saturation_probe_grace_days, 0.0)
    result: FloatArray = limit * np.power(1.0 - s.saturation_probe, rungs)
    return result


def memory_margin(state: HeadroomUsage, s: HeadroomSettings) -> FloatArray | float:
    """The buffer on the memory peak: ``memory_margin``, or with ``memory_spike_quantile``
    the container's own jumps (that percentile of day peak ÷ earlier peak, − 1), clipped."""
    if s.memory_spike_quantile is None:
        return s.memory_margin
    jumps = state.days.jump_quantile(s.memory_spike_quantile) - 1.0
    clipped = np.clip(jumps, s.memory_spike_margin_min, s.memory_spike_margin_max)
    result: FloatArray = np.where(np.isfinite(jumps), clipped, s.memory_margin)
    return result


def _current_cpu(
    registry: ContainerRegistry, context: SizingContext
) -> tuple[FloatArray, FloatArray]:
    n = len(registry.containers)
    request, limit = np.full(n, np.nan), np.full(n, np.nan)
    for cid, key in enumerate(registry.containers):
        req = context.current_requests.get(key)
        lim = context.current_limits.get(key)
        if req is not None and req.cpu_millicores is not None:
            request[cid] = req.cpu_millicores / 1000.0
        if lim is not None and lim.cpu_millicores is not None:
            limit[cid] = lim.cpu_millicores / 1000.0
    return request, limit


@dataclass(frozen=True)
class HeadroomStrategy:
    settings: HeadroomSettings = field(default_factory=HeadroomSettings)
    name: str = "headroom"

    @staticmethod
    def default_policy() -> SizingPolicy:
        """No CPU limit; memory limit = request, raised to the OOM line; whole MiB."""
        return PercentileStrategy.default_policy()

    def new_state(self) -> HeadroomUsage:
        return HeadroomUsage(self.settings)

    def restore_state(self, kind: str, arrays: Arrays) -> HeadroomUsage:
        if kind != HeadroomUsage.KIND:
            raise SnapshotKindError(f"a {kind} snapshot is not a {HeadroomUsage.KIND}")
        return HeadroomUsage.restore(self.settings, arrays)

    def raw(
        self, state: HeadroomUsage, registry: ContainerRegistry, context: SizingContext
    ) -> RawRecommendations:
        s = self.settings
        state.grow(len(registry.containers))
        days = state.history_days()

        cpu_cores = cpu_ladder(state, s)
        current_req, current_lim = _current_cpu(registry, context)
        censored = state.saturated(current_lim, s.saturation_fraction, s.saturation_share) > 0
        kept = probed_request(state, current_req, current_lim, s)
        cpu_cores = np.where(censored, np.fmax(cpu_cores, kept), cpu_cores)
        has_cpu = state.cpu_samples > 0
        floor_m = s.min_cpu_millicores
        cpu_free = np.where(has_cpu, _amounts(cpu_cores * 1000.0), 0)
        cpu_m = np.where(has_cpu, np.maximum(cpu_free, floor_m), 0)
        p50_m = np.maximum(_amounts(state.cpu.percentile(0.5) * 1000.0), floor_m)
        max_m = np.maximum(_amounts(state.cpu.percentile(1.0) * 1000.0), cpu_m)
        cpu_lo = np.where(has_cpu, np.minimum(p50_m, cpu_m), 0)
        cpu_hi = np.where(has_cpu, max_m, 0)

        half_life = s.memory_peak_half_life_s
        peak = state.days.window_peak_bytes(None if half_life is None else half_life / DAY_S)
        ooms = np.minimum(state.days.window_ooms(), s.max_oom_steps)
        history = np.maximum(days, MIN_HISTORY_DAYS) ** s.memory_confidence_power
        confidence = s.memory_confidence_margin / history
        factor = (1.0 + memory_margin(state, s) + confidence) * np.power(1.0 + s.oom_margin, ooms)
        has_mem = peak > 0
        floor_b = s.min_memory_bytes
        buffered = np.maximum(_amounts(peak * factor), _amounts(peak + s.min_memory_headroom_bytes))
        line = np.where(has_mem, np.maximum(buffered, floor_b), 0)
        typical = _amounts(state.days.percentile(s.memory_request_percentile))
        request = np.where(has_mem, np.maximum(typical, floor_b), 0)
        request = line if s.memory_request_percentile >= 1 else np.minimum(request, line)
        mem_free = np.where(
            has_mem, buffered if s.memory_request_percentile >= 1 else np.minimum(typical, line), 0
        )
        median = np.maximum(_amounts(state.days.percentile(0.5)), floor_b)
        return RawRecommendations(
            cpu=Estimates(cpu_m, cpu_lo, cpu_hi),
            memory=Estimates(request, np.where(has_mem, np.minimum(median, request), 0), line),
            cpu_samples=state.cpu_samples.astype(np.int64),
            memory_samples=state.memory_samples.astype(np.int64),
            confidence=days,
            peak_memory_bytes=state.peak_memory_bytes,
            oom_kills=state.oom_kills.astype(np.int64),
            history_span_s=days * DAY_S,
            unfloored_target=(cpu_free, mem_free),
        )

    def recommend(
        self, state: UsageState, registry: ContainerRegistry, context: SizingContext
    ) -> list[ContainerRecommendation]:
        assert isinstance(state, HeadroomUsage)
        recs = finalize(self.raw(state, registry, context), registry, context)
        if context.policy.controlled_values is not ControlledValues.REQUESTS_ONLY:
            recs = [_limit_at_least_upper_bound(r) for r in recs]
        if not self.settings.hysteresis:
            return recs
        return [replace(r, keep=keep_band(r, self.settings)) for r in recs]


def _band(
    value: int | None, below: float, above: float, width: float, floor: float = 0.0
) -> tuple[int | None, int | None]:
    if not value:
        return None, None
    low = max(math.floor(min(value * (1 - below), value - width)), math.ceil(floor), 0)
    return min(low, value), math.ceil(max(value * (1 + above), value + width))


def keep_band(rec: ContainerRecommendation, s: HeadroomSettings) -> KeepBand:
    """Hysteresis: the band around each recommended value that a value in force may stay
    in — ``keep_below`` under it, ``keep_above`` over it (the memory limit:
    ``keep_limit_below`` / ``keep_limit_above``), at least ``keep_cpu_millicores`` /
    ``keep_memory_bytes`` wide each side. A memory limit in force is never kept below
    the peak + ``min_memory_headroom`` (it would be an OOM kill waiting to happen)."""
    lo, hi = s.keep_below, s.keep_above
    cpu_req = _band(rec.target.cpu_millicores, lo, hi, s.keep_cpu_millicores)
    cpu_lim = _band(rec.limits.cpu_millicores, lo, hi, s.keep_cpu_millicores)
    mem_req = _band(rec.target.memory_bytes, lo, hi, s.keep_memory_bytes)
    peak_line = rec.peak_memory_bytes + s.min_memory_headroom_bytes
    lim_lo = lo if s.keep_limit_below is None else s.keep_limit_below
    lim_hi = hi if s.keep_limit_above is None else s.keep_limit_above
    mem_lim = _band(rec.limits.memory_bytes, lim_lo, lim_hi, s.keep_memory_bytes, peak_line)
    return KeepBand(
        request_low=Resources(cpu_req[0], mem_req[0]),
        request_high=Resources(cpu_req[1], mem_req[1]),
        limit_low=Resources(cpu_lim[0], mem_lim[0]),
        limit_high=Resources(cpu_lim[1], mem_lim[1]),
    )


def _limit_at_least_upper_bound(rec: ContainerRecommendation) -> ContainerRecommendation:
    """The memory limit is never below the OOM line (the memory upper bound)."""
    line = rec.upper_bound.memory_bytes
    limit = rec.limits.memory_bytes
    if not line or (limit is not None and limit >= line):
        return rec
    return replace(rec, limits=Resources(rec.limits.cpu_millicores, line))


SETTINGS = [
    Setting("cpu_percentile", "settings", "cpu_percentile", parse_percent_as_fraction,
            "the CPU percentile every container gets at least, 0–100 (default 95)"),
    Setting("cpu_percentile_max", "settings", "cpu_percentile_max", parse_percent_as_fraction,
            "the top of the CPU ladder, 0–100 (default 100: the largest sample)"),
    Setting("cpu_step", "settings", "cpu_step_millicores",
            lambda t: float(parse_cpu_millicores(t)),
            "climb a percentage point of time while it costs at most this (default 20m)"),
    Setting("cpu_half_life", "settings", "cpu_half_life_s", parse_duration_s,
            "half-life of CPU sample weights (default 7d)"),
    Setting("saturation_fraction", "settings", "saturation_fraction", parse_float,
            "CPU ≥ this × current limit counts as saturated (default 0.95)"),
    Setting("saturation_share", "settings", "saturation_share", parse_float,
            "this share of saturated samples keeps the current CPU request (default 0.01)"),
    Setting("saturation_probe", "settings", "saturation_probe", parse_float,
            "probe a saturated CPU request down by this fraction per quiet day (default 0: off)"),
    Setting("saturation_probe_grace", "settings", "saturation_probe_grace_days", parse_float,
            "quiet days before the probe starts (default 1)"),
    Setting("memory_window", "settings", "memory_window_s", parse_duration_s,
            "memory peaks and OOM kills older than this are forgotten (default 30d)"),
    Setting("memory_peak_half_life", "settings", "memory_peak_half_life_s", parse_duration_s,
            "memory limit from a decaying memory of peaks with this half-life (default: off)"),
    Setting("memory_margin", "settings", "memory_margin", parse_non_negative,
            "memory limit: buffer on the peak, fraction (default 0.15)"),
    Setting("memory_spike_quantile", "settings", "memory_spike_quantile",
            parse_percent_as_fraction,
            "memory buffer = this percentile of the container's own day-over-day jumps − 1 "
            "(default: off, memory_margin)"),
    Setting("memory_spike_margin_min", "settings", "memory_spike_margin_min", parse_non_negative,
            "the spike buffer's least value (default 0.05)"),
    Setting("memory_spike_margin_max", "settings", "memory_spike_margin_max", parse_non_negative,
            "the spike buffer's largest value (default 0.5)"),
    Setting("memory_confidence_margin", "settings", "memory_confidence_margin",
            parse_non_negative, "memory limit: extra buffer ÷ days of history (default 1.0)"),
    Setting("memory_confidence_power", "settings", "memory_confidence_power", parse_float,
            "memory limit: the extra buffer ÷ days of history to this power (default 1)"),
    Setting("memory_request_percentile", "settings", "memory_request_percentile",
            parse_percent_as_fraction,
            "memory request = this percentile of daily peaks; 100: request = limit (default 90)"),
    Setting("oom_margin", "settings", "oom_margin", parse_non_negative,
            "extra memory buffer factor per OOM kill in the window (default 0.1)"),
    Setting("max_oom_steps", "settings", "max_oom_steps", lambda t: int(parse_non_negative(t)),
            "OOM kills beyond this widen the buffer no further (default 5)"),
    Setting("oom_bump_up_ratio", "settings", "oom_bump_up_ratio", parse_float,
            "after an OOM the peak is ≥ kill line × this (default 1.2)"),
    Setting("oom_min_bump_up", "settings", "oom_min_bump_up_bytes",
            lambda t: float(parse_memory_bytes(t)), "…and ≥ kill line + this (default 100Mi)"),
    Setting("min_cpu_request", "settings", "min_cpu_millicores", parse_cpu_millicores,
            "CPU request floor per container (default 2m)"),
    Setting("min_memory_request", "settings", "min_memory_bytes", parse_memory_bytes,
            "memory request floor per container (default 4Mi)"),
    Setting("min_memory_headroom", "settings", "min_memory_headroom_bytes", parse_memory_bytes,
            "memory limit ≥ peak + this, per container (default 8Mi)"),
    Setting("keep_below", "settings", "keep_below", parse_non_negative,
            "hysteresis: keep a value in force down to this fraction below the target"),
    Setting("keep_above", "settings", "keep_above", parse_non_negative,
            "hysteresis: keep a value in force up to this fraction above the target"),
    Setting("keep_limit_below", "settings", "keep_limit_below", parse_non_negative,
            "hysteresis of the memory limit below its target (default: keep_below)"),
    Setting("keep_limit_above", "settings", "keep_limit_above", parse_non_negative,
            "hysteresis of the memory limit above its target (default: keep_above)"),
    Setting("keep_cpu", "settings", "keep_cpu_millicores",
            lambda t: float(parse_cpu_millicores(t)),
            "hysteresis: the CPU band is at least this wide each side (default 5m)"),
    Setting("keep_memory", "settings", "keep_memory_bytes",
            lambda t: float(parse_memory_bytes(t)),
            "hysteresis: the memory band is at least this wide each side (default 8Mi)"),
]  # fmt: skip
"""``--set`` keys of this strategy (the sizing-policy keys are added by the registry)."""

#: The profiles (``spec.strategy.profile``, ``--profile``): named parameter sets of this
#: strategy, each a measured point on the savings-versus-risk frontier of the Bitbrains
#: backtest (``bench/bench_profiles.py``, ``docs/quality.md``). ``Balanced`` is the
#: defaults. Explicit settings override a profile's.
PROFILES: dict[str, dict[str, str]] = {
    # as safe as the grid of 405 sets gets (within 10 % of its lowest OOM container-days,
    # CPU samples above request and fleet memory exposure), at the least cost:
    # Guaranteed memory with a wide line, CPU up the ladder to p99.5/max
    "Conservative": {
        "cpu_percentile": "98",
        "cpu_step": "50m",
        "memory_margin": "0.3",
        "memory_confidence_margin": "2",
        "memory_request_percentile": "100",
    },
    "Balanced": {},
    # the cheapest set that reserves no more than Balanced on any cost and is no riskier
    # than upstream VPA's defaults on any risk: memory request p80, a thin line
    "Economical": {
        "cpu_percentile": "90",
        "cpu_step": "50m",
        "memory_margin": "0.05",
        "memory_request_percentile": "80",
    },
}
DEFAULT_PROFILE = "Balanced"
