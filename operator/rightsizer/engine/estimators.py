"""VPA's estimator chain, vectorised over containers (``vpa-algorithm.md`` §1.5).

percentile → truncate → + safety margin → × confidence multiplier (bounds only) →
per-pod minimum split across a workload's containers. All amounts are integer millicores
or bytes, truncated at each step as the Go code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rightsizer.engine.buckets import FloatArray, IntArray
from rightsizer.quantity import DAY_S, MAX_RESOURCE_AMOUNT


@dataclass(frozen=True)
class EstimatorSettings:
    """Percentiles (fractions), margin, confidence and per-pod minimums; VPA's defaults."""

    target_cpu_percentile: float = 0.9
    lower_bound_cpu_percentile: float = 0.5
    upper_bound_cpu_percentile: float = 0.95
    target_memory_percentile: float = 0.9
    lower_bound_memory_percentile: float = 0.5
    upper_bound_memory_percentile: float = 0.95
    safety_margin_fraction: float = 0.15
    """Added to every estimate (``--recommendation-margin-fraction``)."""
    confidence_interval_cpu_s: float = DAY_S
    """History that gives confidence 1 (``--confidence-interval-cpu``)."""
    confidence_interval_memory_s: float = DAY_S
    """Likewise for memory (``--confidence-interval-memory``)."""
    upper_bound_confidence_multiplier: float = 1.0
    upper_bound_confidence_exponent: float = 1.0
    lower_bound_confidence_multiplier: float = 0.001
    lower_bound_confidence_exponent: float = -2.0
    pod_min_cpu_millicores: int = 25
    """Per-pod minimum CPU, split across containers
    (``--pod-recommendation-min-cpu-millicores``)."""
    pod_min_memory_bytes: int = 262_144_000
    """Per-pod minimum memory, 250 MiB (``--pod-recommendation-min-memory-mb`` × 2²⁰)."""

    def __post_init__(self) -> None:
        for name in (
            "target_cpu_percentile",
            "lower_bound_cpu_percentile",
            "upper_bound_cpu_percentile",
            "target_memory_percentile",
            "lower_bound_memory_percentile",
            "upper_bound_memory_percentile",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction within [0, 1], got {value}")
        if self.safety_margin_fraction < 0:
            raise ValueError("safety_margin_fraction must not be negative")
        if min(self.confidence_interval_cpu_s, self.confidence_interval_memory_s) <= 0:
            raise ValueError("confidence intervals must be positive")
        if self.pod_min_cpu_millicores < 0 or self.pod_min_memory_bytes < 0:
            raise ValueError("pod minimums must not be negative")


def truncate_amounts(values: FloatArray) -> IntArray:
    """Go's ``resourceAmountFromFloat`` element-wise: floor, clamp to [0, 1e14], NaN → 0."""
    clean = np.nan_to_num(values, nan=0.0, posinf=float(MAX_RESOURCE_AMOUNT), neginf=0.0)
    clipped = np.clip(clean, 0.0, float(MAX_RESOURCE_AMOUNT))
    result: IntArray = np.floor(clipped).astype(np.int64)
    return result


def scale_amounts(amounts: IntArray, factors: FloatArray | float) -> IntArray:
    """Go's ``ScaleResource``; an empty (0) amount stays 0 even for an infinite factor."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = amounts.astype(np.float64) * factors
    result: IntArray = np.where(amounts == 0, 0, truncate_amounts(scaled))
    return result


def with_margin(amounts: IntArray, margin_fraction: float) -> IntArray:
    """``amount + trunc(amount × margin)``."""
    result: IntArray = amounts + scale_amounts(amounts, margin_fraction)
    return result


def confidence_factor(confidence: FloatArray, multiplier: float, exponent: float) -> FloatArray:
    """``(1 + multiplier/confidence)^exponent``; confidence 0 gives ∞ or 0."""
    with np.errstate(divide="ignore"):
        factor: FloatArray = np.power(1.0 + multiplier / confidence, exponent)
    return factor


def confidence(
    span_s: FloatArray, sample_count: npt.NDArray[np.int64], interval_s: float
) -> FloatArray:
    """``min(span / I, N / I_minutes)``: 1 sample/min for d days gives d (for I = 1 day)."""
    result: FloatArray = np.minimum(span_s / interval_s, sample_count / (interval_s / 60.0))
    return result


def pod_minimum(total: int, containers_in_pod: IntArray) -> IntArray:
    """Per-container share of a per-pod minimum (``ScaleResource(min, 1/n)``)."""
    n = np.maximum(containers_in_pod, 1)
    return scale_amounts(np.full(n.shape[0], total, dtype=np.int64), 1.0 / n)


@dataclass(frozen=True)
class Estimates:
    """Target and bounds for one resource, per container (millicores or bytes)."""

    target: IntArray
    lower_bound: IntArray
    upper_bound: IntArray


def estimate(
    target_base: IntArray,
    lower_base: IntArray,
    upper_base: IntArray,
    conf: FloatArray,
    minimum: IntArray,
    settings: EstimatorSettings,
) -> Estimates:
    """Margin on all three, confidence multipliers on the bounds, then the minimum."""
    m = settings.safety_margin_fraction
    target = with_margin(target_base, m)
    lower = scale_amounts(
        with_margin(lower_base, m),
        confidence_factor(
            conf,
            settings.lower_bound_confidence_multiplier,
            settings.lower_bound_confidence_exponent,
        ),
    )
    upper = scale_amounts(
        with_margin(upper_base, m),
        confidence_factor(
            conf,
            settings.upper_bound_confidence_multiplier,
            settings.upper_bound_confidence_exponent,
        ),
    )
    return Estimates(
        np.maximum(target, minimum), np.maximum(lower, minimum), np.maximum(upper, minimum)
    )
