"""Histogram bucket schemes (``vpa-algorithm.md`` §1.1).

A scheme maps a value to a bucket index and back to the bucket's start. Upstream VPA
uses exponential buckets (ratio 1.05); the linear scheme exists for its unit tests and
for anyone who wants fixed-width buckets.
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


def exponential_scheme(max_value: float, first_bucket_size: float, ratio: float) -> BucketScheme:
    """Bucket ``i ≥ 1`` starts at ``s·(rⁱ−1)/(r−1)``; count = ⌈log_r(max·(r−1)/s + 1)⌉ + 1."""
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
