"""Oracle cases 5–7 of vpa-algorithm.md §3 (upstream estimator and recommender tests)."""

import numpy as np
import pandas as pd
import pytest

from rightsizer.engine.aggregation import UsageAggregates
from rightsizer.engine.estimators import (
    EstimatorSettings,
    confidence,
    confidence_factor,
    estimate,
    pod_minimum,
    scale_amounts,
    with_margin,
)
from rightsizer.engine.strategies import build_strategy
from rightsizer.recommend import recommend_frame
from tests.unit.helpers import NAN, chunk

T0 = 1234567890.0
CPU_M = np.asarray([3140])  # 3.14 cores in millicores
MEM_B = np.asarray([3_140_000_000])


def nine_samples_state() -> UsageAggregates:
    s = UsageAggregates()
    s.add(chunk([(0, T0 + i * 120, 1.0, NAN) for i in range(9)]))
    return s


def state_confidence(s: UsageAggregates, interval_s: float) -> np.ndarray:
    span = s.last_cpu_sample_s - s.first_cpu_sample_s
    return confidence(span, s.cpu_sample_count, interval_s)


# -- case 5 -------------------------------------------------------------------------------
def test_confidence_multiplier() -> None:
    c = state_confidence(nine_samples_state(), 86400.0)
    assert c[0] == pytest.approx(0.00625)
    factor = confidence_factor(c, 0.1, 2.0)
    assert scale_amounts(CPU_M, factor)[0] == 907460  # 907.46 cores
    assert scale_amounts(MEM_B, factor)[0] == pytest.approx(9.0746e11, rel=1e-12)


def test_confidence_multiplier_without_history() -> None:
    c = np.asarray([0.0])
    assert scale_amounts(CPU_M, confidence_factor(c, 1.0, 1.0))[0] == 10**14
    assert scale_amounts(CPU_M, confidence_factor(c, 1.0, -1.0))[0] == 0


# -- case 6 -------------------------------------------------------------------------------
def test_confidence_with_custom_interval() -> None:
    c = state_confidence(nine_samples_state(), 18 * 60.0)
    assert c[0] == pytest.approx(0.5)
    factor = confidence_factor(c, 0.1, 2.0)
    assert scale_amounts(CPU_M, factor)[0] == 4521  # 4.5216 cores, truncated
    assert scale_amounts(MEM_B, factor)[0] == 4_521_600_000


def test_margin_estimator() -> None:
    assert with_margin(CPU_M, 0.1)[0] == 3454
    assert with_margin(MEM_B, 0.1)[0] == 3_454_000_000


# -- case 7 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("containers", "cpu_m", "mem_b"), [(1, 25, 262_144_000), (2, 12, 131_072_000)]
)
def test_pod_minimum_split_across_containers(containers: int, cpu_m: int, mem_b: int) -> None:
    settings = EstimatorSettings()
    n = np.asarray([containers])
    one = np.asarray([1])
    conf = np.asarray([10.0])
    cpu = estimate(one, one, one, conf, pod_minimum(settings.pod_min_cpu_millicores, n), settings)
    tiny = np.asarray([1_000_000])
    mem = estimate(tiny, tiny, tiny, conf, pod_minimum(settings.pod_min_memory_bytes, n), settings)
    for est, expected in ((cpu, cpu_m), (mem, mem_b)):
        assert est.target[0] == expected
        assert est.lower_bound[0] == expected
        assert est.upper_bound[0] == expected


def test_vpa_strategy_end_to_end_applies_pod_minimum() -> None:
    rows = []
    for container in ("a", "b"):
        for i in range(2000):
            rows.append(
                {"timestamp": T0 + 60 * i, "namespace": "ns", "workload": "Deployment/w",
                 "pod": "w-0", "container": container, "cpu": 0.001, "memory": 1e6,
                 "cpu_request": np.nan, "cpu_limit": np.nan, "memory_request": np.nan,
                 "memory_limit": np.nan, "oom": False}
            )  # fmt: skip
    strategy, policy = build_strategy("vpa")
    recs = recommend_frame(pd.DataFrame(rows), strategy, policy)
    assert [r.container for r in recs] == ["a", "b"]
    for r in recs:
        assert r.target.cpu_millicores == 12
        assert r.target.memory_bytes == 131_072_000
        assert r.limits.cpu_millicores is None  # VPA never invents a limit
