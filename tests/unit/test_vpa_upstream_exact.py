"""`vpa` is upstream VPA 1.7.1 on every input, not only on the spec's oracle cases.

Three differences found in issue 18, each pinned here:

1. upstream turns every sample into whole millicores / bytes before any histogram sees it;
2. CPU and memory given in separate rows at the same time both count;
3. bucket starts and lookups use Go's arithmetic (``math.Pow``, ``math.Log``), not
   Python's ``math.pow`` and a table search.

The ``GO_*`` constants were printed by upstream's own code: ``tests/oracle/vpa-go/main.go``
(module ``k8s.io/autoscaler/vertical-pod-autoscaler`` v1.7.1, Go 1.26, linux/amd64), with
``GOFLAGS=-mod=mod go run .`` for the starts and ``… go run . find`` for ``FindBucket``.
The test suite never runs Go.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsizer.engine.aggregation import UsageAggregates, upstream_amounts
from rightsizer.engine.buckets import (
    CPU_SCHEME,
    MEMORY_SCHEME,
    exponential_scheme,
    go_log,
    go_pow_int,
)
from rightsizer.engine.strategies import build_strategy
from rightsizer.engine.usage import ContainerRegistry
from rightsizer.recommend import recommend_frame
from rightsizer.samples.encode import encode
from rightsizer.samples.frame import validate_samples
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.metrics_server import pod_metrics_to_samples
from tests.unit.helpers import NAN, chunk

T0 = 1_700_000_000.0
MINUTE = 60.0

# GetBucketStart(b) of upstream's CPU (cores) and memory (bytes) histogram options.
GO_CPU_STARTS = {
    1: 0.01,
    2: 0.020499999999999987,
    3: 0.031524999999999997,
    4: 0.043101249999999966,
    5: 0.055256312499999981,
    16: 0.23657491767638703,
    17: 0.25840366356020639,
    18: 0.2813238467382167,
    175: 1021.1094089048601,
}
GO_MEMORY_STARTS = {
    1: 10000000.0,
    2: 20499999.999999989,
    3: 31524999.999999996,
    4: 43101249.999999963,
    5: 55256312.499999978,
    6: 68019128.124999925,
    175: 1021109408904.86,
}
# FindBucket(v): note 20,500,000 B in bucket 1 although bucket 2 starts below it.
GO_MEMORY_BUCKETS = {
    20_500_000.0: 1,
    31_525_000.0: 2,
    43_101_250.0: 4,
    55_256_312.0: 4,
    55_256_313.0: 5,
    142_067_871.0: 10,
    142_067_872.0: 11,
    9_999_999.0: 0,
    10_000_000.0: 1,
    1e13: 175,
}
GO_CPU_BUCKETS = {0.0205: 1, 0.258: 16, 0.2585: 17, 0.259: 17, 0.0099: 0, 0.01: 1, 5000.0: 175}
# model.CPUAmountFromCores(c) (int64(c × 1000.0)) for the Prometheus history path.
GO_CPU_AMOUNT = {0.2585: 258, 0.258: 258, 0.0105: 10, 1.0: 1000}


# -- 3. bucket arithmetic -------------------------------------------------------------------
def test_bucket_starts_are_upstreams_bit_for_bit() -> None:
    for bucket, start in GO_CPU_STARTS.items():
        assert CPU_SCHEME.starts[bucket] == start, bucket
    for bucket, start in GO_MEMORY_STARTS.items():
        assert MEMORY_SCHEME.starts[bucket] == start, bucket


def test_find_bucket_is_upstreams_bit_for_bit() -> None:
    memory = list(GO_MEMORY_BUCKETS)
    assert MEMORY_SCHEME.find_buckets(np.asarray(memory)).tolist() == [
        GO_MEMORY_BUCKETS[v] for v in memory
    ]
    cpu = list(GO_CPU_BUCKETS)
    assert CPU_SCHEME.find_buckets(np.asarray(cpu)).tolist() == [GO_CPU_BUCKETS[v] for v in cpu]


def test_small_memory_peak_lands_where_upstream_puts_it() -> None:
    """A 43,101,250 B peak (a small sidecar's) is bucket 4 upstream, so p90 answers bucket
    5's start; the start table put it in bucket 3."""
    state = UsageAggregates()
    state.add(chunk([(0, T0, NAN, 43_101_250.0)]))
    assert state.memory_histogram().percentile(0.9)[0] == GO_MEMORY_STARTS[5]


# An independent implementation of upstream's formulas: Go's math.Log as its amd64
# assembly computes it (mantissa and exponent taken from the bits, not from frexp),
# scalar, and FindBucket/GetBucketStart exactly as histogram_options.go writes them.
def _asm_log(x: float) -> float:
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    mantissa_with_half_exponent = (bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FE0_0000_0000_0000
    f1 = struct.unpack("<d", struct.pack("<Q", mantissa_with_half_exponent))[0]
    k = float(((bits >> 52) & 0x7FF) - 0x3FE)
    doubled = 1.0 if f1 < 7.07106781186547524401e-01 else 0.0
    k -= doubled
    f = f1 * (doubled + 1.0) - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (
        6.666666666666735130e-01
        + s4
        * (
            2.857142874366239149e-01
            + s4 * (1.818357216161805012e-01 + s4 * 1.479819860511658591e-01)
        )
    )
    t2 = s4 * (
        3.999999999940941908e-01 + s4 * (2.222219843214978396e-01 + s4 * 1.531383769920937332e-01)
    )
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * 6.93147180369123816490e-01 - (
        (hfsq - (s * (hfsq + r) + k * 1.90821492927058770002e-10)) - f
    )  # fmt: skip


def _upstream_find_bucket(value: float, first: float, ratio: float, buckets: int) -> int:
    if value < first:
        return 0
    bucket = int(_asm_log(value * (ratio - 1) / first + 1) / _asm_log(ratio))
    return min(bucket, buckets - 1)


def test_independent_log_agrees_with_pinned_go_results() -> None:
    for value, bucket in GO_MEMORY_BUCKETS.items():
        assert _upstream_find_bucket(value, 1e7, 1.05, 176) == bucket


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.floats(0.0, 2e12, allow_nan=False),
        st.integers(0, 60_000_000).map(float),
        st.sampled_from(sorted(GO_MEMORY_STARTS.values())).flatmap(
            lambda s: st.integers(-8, 8).map(lambda k: s + k * math.ulp(s))
        ),
    )
)
def test_memory_find_bucket_matches_independent_upstream_formula(value: float) -> None:
    expected = _upstream_find_bucket(value, 1e7, 1.05, 176)
    assert MEMORY_SCHEME.find_bucket(value) == expected


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.floats(0.0, 2000.0, allow_nan=False),
        st.integers(0, 10_000_000).map(lambda m: m / 1000.0),
        st.sampled_from(sorted(CPU_SCHEME.starts[1:])).flatmap(
            lambda s: st.integers(-8, 8).map(lambda k: s + k * math.ulp(s))
        ),
    )
)
def test_cpu_find_bucket_matches_independent_upstream_formula(value: float) -> None:
    assert CPU_SCHEME.find_bucket(value) == _upstream_find_bucket(value, 0.01, 1.05, 176)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-300, 1e300, allow_nan=False, allow_infinity=False))
def test_go_log_port_matches_the_assembly_formula(x: float) -> None:
    assert float(go_log(np.asarray([x]))[0]) == _asm_log(x)
    assert abs(_asm_log(x) - math.log(x)) <= 2 * math.ulp(math.log(x)) + 1e-300


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0001, 3.0), st.integers(0, 400))
def test_go_pow_is_repeated_squaring_within_an_ulp_of_the_true_power(x: float, n: int) -> None:
    exact = math.pow(x, n)
    if math.isinf(exact):
        return
    # Go's Pow is not correctly rounded: a few ulps apart from libm for large n
    assert abs(go_pow_int(x, n) - exact) <= 4 * n * math.ulp(exact) + math.ulp(exact)


def test_every_start_is_get_bucket_start() -> None:
    for scheme, first in ((CPU_SCHEME, 0.01), (MEMORY_SCHEME, 1e7)):
        for b in range(1, scheme.num_buckets):
            assert scheme.starts[b] == first * (go_pow_int(1.05, b) - 1) / (1.05 - 1)


def test_upstream_test_options_still_give_upstream_answers() -> None:
    scheme = exponential_scheme(500.0, 40.0, 1.5)
    assert scheme.num_buckets == 6
    assert [scheme.find_bucket(v) for v in (-1, 39.99, 40, 100, 900)] == [0, 0, 1, 2, 5]


# -- 1. whole millicores ----------------------------------------------------------------
def test_cpu_is_truncated_to_whole_millicores_like_cpu_amount_from_cores() -> None:
    cores = np.asarray(list(GO_CPU_AMOUNT), dtype=np.float64)
    one = chunk([(0, T0, c, NAN) for c in cores])
    millicores = np.rint(upstream_amounts(one).cpu_cores * 1000.0)
    assert millicores.tolist() == [GO_CPU_AMOUNT[c] for c in GO_CPU_AMOUNT]


def test_constant_cpu_just_above_an_edge_stays_in_upstreams_bucket() -> None:
    """0.2585 cores is bucket 17 as a float but 258m — bucket 16 — upstream."""
    state = UsageAggregates()
    for i in range(10):
        state.add(chunk([(0, T0 + i * MINUTE, 0.2585, NAN)]))
    assert state.cpu.percentile(0.9)[0] == GO_CPU_STARTS[17]  # bucket 16's upper edge


def test_memory_is_truncated_to_whole_bytes() -> None:
    state = UsageAggregates()
    state.add(chunk([(0, T0, NAN, 20_499_999.999999996)]))
    assert state.usage_peak_bytes[0] == 20_499_999.0


def test_metrics_server_millicores_are_rounded_up_and_kept() -> None:
    """metrics-server: ``MilliValue()`` rounds 1000.5m up to 1001m; 1001m as cores times
    1000 is 1000.9999… in floating point, which must not be truncated to 1000m again."""
    items = [
        {
            "metadata": {"namespace": "ns", "name": "web-5d8f7c9b6-x2k4z"},
            "timestamp": "2026-11-23T10:00:00Z",
            "containers": [{"name": "app", "usage": {"cpu": "1000500000n", "memory": "1"}}],
        }
    ]
    frame = pod_metrics_to_samples(items, WorkloadResolver())
    assert frame["cpu"].iloc[0] == 1.001
    assert math.trunc(1.001 * 1000.0) == 1000  # what a second truncation would do
    polled = encode(frame, ContainerRegistry(), cpu_whole_millicores=True)
    assert upstream_amounts(polled).cpu_cores[0] * 1000.0 == pytest.approx(1001.0, abs=1e-9)
    assert np.rint(upstream_amounts(polled).cpu_cores * 1000.0)[0] == 1001


# -- 2. CPU and memory in separate rows -------------------------------------------------
def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {"namespace": "ns", "workload": "Deployment/web", "pod": "web-1", "container": "app"}
    raw = pd.DataFrame([{**base, **r} for r in rows]).astype(str).replace("nan", "")
    return validate_samples(raw, "test")


def test_cpu_and_memory_in_separate_rows_at_one_time_both_count() -> None:
    times = [T0 + i * MINUTE for i in range(120)]
    together = _frame([{"timestamp": t, "cpu": 0.1, "memory": 300e6} for t in times])
    apart = _frame(
        [{"timestamp": t, "cpu": 0.1, "memory": float("nan")} for t in times]
        + [{"timestamp": t, "cpu": float("nan"), "memory": 300e6} for t in times]
    )
    strategy, policy = build_strategy("vpa")
    (joint,) = recommend_frame(together, strategy, policy)
    (split,) = recommend_frame(apart, strategy, policy)
    assert split.memory_samples == joint.memory_samples == 120
    assert split.cpu_samples == joint.cpu_samples == 120
    assert split.target == joint.target
    assert split.peak_memory_bytes == 300e6
