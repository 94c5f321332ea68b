"""Histogram bucket schemes (``vpa-algorithm.md`` §1.1).

A scheme maps a value to a bucket index and back to the bucket's start. Upstream VPA
uses exponential buckets (ratio 1.05); the linear scheme exists for its unit tests and
for anyone who wants fixed-width buckets.

Two exponential schemes share the formulas but not the floating-point arithmetic:

* ``exponential_scheme`` is upstream's own (``util/histogram_options.go``, VPA 1.7.1), bit
  for bit: bucket starts from Go's ``math.Pow`` and lookups from Go's ``math.Log``
  formula ``int(log(v·(r−1)/s + 1) / log(r))``, both ported below operation by operation.
  Python's ``math.pow`` and a lookup in the start table differ from it in the last bits,
  enough to move a value near a boundary to the neighbouring bucket (e.g. 20,500,000
  bytes: bucket 1 upstream, bucket 2 by the table). The ``vpa`` strategy uses this one.
* ``exponential_table_scheme`` looks values up in its start table, so a value is never
  put in a bucket that starts above it (rightsizer's own strategies promise "never below
  the exact percentile").

Go compiles ``math.Log`` on amd64 from assembly with the same operations as its portable
``log.go``, without fused multiply-adds; on arm64 the compiler may fuse them, so an arm64
build of upstream can differ from amd64 (and from this port) in the last bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Exponential ratio between consecutive bucket sizes (VPA's ``histogramBucketSizeGrowth``).
VPA_BUCKET_RATIO = 1.05
#: CPU buckets: first bucket 0.01 cores wide, last one starts below 1000 cores.
CPU_FIRST_BUCKET_CORES = 0.01
CPU_MAX_CORES = 1000.0
#: Memory buckets: first bucket 1e7 bytes wide, last one starts below 1e12 bytes.
MEMORY_FIRST_BUCKET_BYTES = 1e7
MEMORY_MAX_BYTES = 1e12


# -- Go's math.Log and math.Pow, operation by operation ------------------------------------
# From Go's src/math/log.go (FreeBSD's e_log.c) and log_amd64.s, which perform the same
# IEEE double operations in the same order; NumPy and Python floats round identically.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG_L1 = 6.666666666666735130e-01
_LOG_L2 = 3.999999999940941908e-01
_LOG_L3 = 2.857142874366239149e-01
_LOG_L4 = 2.222219843214978396e-01
_LOG_L5 = 1.818357216161805012e-01
_LOG_L6 = 1.531383769920937332e-01
_LOG_L7 = 1.479819860511658591e-01
_HALF_SQRT2 = 7.07106781186547524401e-01


def go_log(x: FloatArray) -> FloatArray:
    """Go's ``math.Log`` for positive finite ``x`` (element-wise); NaN elsewhere."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x) & (x > 0)
    f1, ki = np.frexp(np.where(ok, x, 1.0))
    low = f1 < _HALF_SQRT2
    f1 = np.where(low, f1 * 2.0, f1)
    k = (ki - low).astype(np.float64)
    f = f1 - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (_LOG_L1 + s4 * (_LOG_L3 + s4 * (_LOG_L5 + s4 * _LOG_L7)))
    t2 = s4 * (_LOG_L2 + s4 * (_LOG_L4 + s4 * _LOG_L6))
    r = t1 + t2
    hfsq = 0.5 * f * f
    result: FloatArray = k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)
    return np.where(ok, result, np.nan)


def go_pow_int(x: float, n: int) -> float:
    """Go's ``math.Pow(x, n)`` for finite ``x > 0`` and a whole ``n ≥ 0``: successive
    squarings of ``Frexp(x)``'s mantissa, powers of two kept apart, one ``Ldexp`` at the end."""
    if n < 0 or not math.isfinite(x) or x <= 0:
        raise ValueError("go_pow_int needs finite x > 0 and n ≥ 0")
    if n == 0 or x == 1.0:
        return 1.0
    if n == 1:
        return x
    a1, ae = 1.0, 0
    x1, xe = math.frexp(x)
    i = n
    while i:
        if i & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    return math.ldexp(a1, ae)


def _go_log_base(base: float, x: float) -> float:
    """Upstream's ``log(base, x) = math.Log(x) / math.Log(base)``."""
    logs = go_log(np.asarray([x, base], dtype=np.float64))
    return float(logs[0] / logs[1])


@dataclass(frozen=True)
class BucketScheme:
    """Bucket boundaries; ``starts[i]`` is where bucket ``i`` begins (``starts[0] == 0``)."""

    starts: tuple[float, ...]
    _starts_array: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts_array", np.asarray(self.starts, dtype=np.float64))

    @property
    def num_buckets(self) -> int:
        return len(self.starts)

    @property
    def starts_array(self) -> FloatArray:
        return self._starts_array

    def find_buckets(self, values: FloatArray) -> IntArray:
        """Bucket index of each value: the last bucket whose start is ≤ value (clamped).

        Values below the first boundary land in bucket 0, values beyond the last start in
        the last bucket. Exact with respect to ``starts`` (no floating-point off-by-one at
        boundaries), which is what the spec's bucket definition says.
        """
        idx = np.searchsorted(self._starts_array, values, side="right") - 1
        return np.clip(idx, 0, self.num_buckets - 1).astype(np.int64)

    def find_bucket(self, value: float) -> int:
        return int(self.find_buckets(np.asarray([value], dtype=np.float64))[0])

    def upper_edges(self, buckets: IntArray) -> FloatArray:
        """The value a percentile in ``buckets`` reports: the bucket's end, or for the last
        bucket (which has no end) its start."""
        last = self.num_buckets - 1
        nxt = np.minimum(buckets + 1, last)
        return np.where(buckets < last, self._starts_array[nxt], self._starts_array[last])


@dataclass(frozen=True)
class UpstreamExponentialScheme(BucketScheme):
    """Upstream's exponential buckets with upstream's arithmetic (see the module docstring)."""

    first_bucket_size: float = 1.0
    ratio: float = 2.0
    _log_ratio: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_log_ratio", float(go_log(np.asarray([self.ratio]))[0]))

    def find_buckets(self, values: FloatArray) -> IntArray:
        """``FindBucket``: 0 below the first bucket size, else
        ``int(log(v·(r−1)/s + 1) / log(r))`` with Go's ``Log``, clamped to the last bucket."""
        values = np.asarray(values, dtype=np.float64)
        below = ~(values >= self.first_bucket_size)  # NaN too, as Go's comparison is false
        scaled = np.where(below, 1.0, values * (self.ratio - 1) / self.first_bucket_size + 1)
        ratio = go_log(scaled) / self._log_ratio
        idx = np.minimum(np.trunc(ratio), self.num_buckets - 1).astype(np.int64)
        result: IntArray = np.where(below, 0, idx)
        return result


def exponential_scheme(
    max_value: float, first_bucket_size: float, ratio: float
) -> UpstreamExponentialScheme:
    """Upstream's ``NewExponentialHistogramOptions``: bucket ``i ≥ 1`` starts at
    ``s·(rⁱ−1)/(r−1)`` (Go's ``Pow``); count = ⌈log_r(max·(r−1)/s + 1)⌉ + 1 (Go's ``Log``)."""
    if max_value <= 0 or first_bucket_size <= 0 or ratio <= 1:
        raise ValueError("exponential buckets need max > 0, first bucket size > 0, ratio > 1")
    count = math.ceil(_go_log_base(ratio, max_value * (ratio - 1) / first_bucket_size + 1)) + 1
    starts = [0.0] + [
        first_bucket_size * (go_pow_int(ratio, i) - 1) / (ratio - 1) for i in range(1, count)
    ]
    return UpstreamExponentialScheme(tuple(starts), first_bucket_size, ratio)


def exponential_table_scheme(
    max_value: float, first_bucket_size: float, ratio: float
) -> BucketScheme:
    """The same bucket formulas looked up in the start table (``math.pow`` starts):
    ``find_buckets`` is exact with respect to ``starts``."""
    if max_value <= 0 or first_bucket_size <= 0 or ratio <= 1:
        raise ValueError("exponential buckets need max > 0, first bucket size > 0, ratio > 1")
    count = math.ceil(math.log(max_value * (ratio - 1) / first_bucket_size + 1, ratio)) + 1
    starts = [0.0] + [
        first_bucket_size * (math.pow(ratio, i) - 1) / (ratio - 1) for i in range(1, count)
    ]
    return BucketScheme(tuple(starts))


def linear_scheme(max_value: float, bucket_size: float) -> BucketScheme:
    """Equal-width buckets ``[i·size, (i+1)·size)``; count = ⌈max/size⌉ + 1."""
    if max_value <= 0 or bucket_size <= 0:
        raise ValueError("linear buckets need max > 0 and size > 0")
    count = math.ceil(max_value / bucket_size) + 1
    return BucketScheme(tuple(i * bucket_size for i in range(count)))


CPU_SCHEME = exponential_scheme(CPU_MAX_CORES, CPU_FIRST_BUCKET_CORES, VPA_BUCKET_RATIO)
MEMORY_SCHEME = exponential_scheme(MEMORY_MAX_BYTES, MEMORY_FIRST_BUCKET_BYTES, VPA_BUCKET_RATIO)
