"""Strategy ``vpa``: upstream VPA's recommender chain with its defaults, all overridable."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rightsizer.engine.aggregation import AggregationSettings, UsageAggregates
from rightsizer.engine.estimators import (
    EstimatorSettings,
    confidence,
    estimate,
    pod_minimum,
    truncate_amounts,
    with_margin,
)
from rightsizer.engine.recommendation import ContainerRecommendation
from rightsizer.engine.strategies.base import (
    RawRecommendations,
    SizingContext,
    UsageState,
    containers_per_workload,
    finalize,
)
from rightsizer.engine.usage import ContainerRegistry


@dataclass(frozen=True)
class VpaStrategy:
    """Decaying histograms → percentiles → margin → confidence → per-pod minimum."""

    aggregation: AggregationSettings = field(default_factory=AggregationSettings)
    estimator: EstimatorSettings = field(default_factory=EstimatorSettings)
    name: str = "vpa"

    def new_state(self) -> UsageAggregates:
        return UsageAggregates(self.aggregation)

    def raw(self, state: UsageAggregates, registry: ContainerRegistry) -> RawRecommendations:
        e = self.estimator
        state.grow_containers(len(registry.containers))
        n_in_pod = containers_per_workload(registry)
        span = np.nan_to_num(state.last_cpu_sample_s - state.first_cpu_sample_s, nan=0.0)
        conf_cpu = confidence(span, state.cpu_sample_count, e.confidence_interval_cpu_s)
        conf_mem = confidence(span, state.cpu_sample_count, e.confidence_interval_memory_s)

        def cpu_millis(p: float) -> np.ndarray:
            return truncate_amounts(state.cpu.percentile(p) * 1000.0)

        memory = state.memory_histogram()
        cpu = estimate(
            cpu_millis(e.target_cpu_percentile),
            cpu_millis(e.lower_bound_cpu_percentile),
            cpu_millis(e.upper_bound_cpu_percentile),
            conf_cpu,
            pod_minimum(e.pod_min_cpu_millicores, n_in_pod),
            e,
        )
        mem = estimate(
            truncate_amounts(memory.percentile(e.target_memory_percentile)),
            truncate_amounts(memory.percentile(e.lower_bound_memory_percentile)),
            truncate_amounts(memory.percentile(e.upper_bound_memory_percentile)),
            conf_mem,
            pod_minimum(e.pod_min_memory_bytes, n_in_pod),
            e,
        )
        unfloored = (
            with_margin(cpu_millis(e.target_cpu_percentile), e.safety_margin_fraction),
            with_margin(
                truncate_amounts(memory.percentile(e.target_memory_percentile)),
                e.safety_margin_fraction,
            ),
        )
        return RawRecommendations(
            cpu=cpu,
            memory=mem,
            cpu_samples=state.cpu_sample_count,
            memory_samples=state.memory_sample_count,
            confidence=conf_cpu,
            peak_memory_bytes=state.peak_memory_bytes,
            oom_kills=state.oom_count,
            history_span_s=span,
            unfloored_target=unfloored,
        )

    def recommend(
        self, state: UsageState, registry: ContainerRegistry, context: SizingContext
    ) -> list[ContainerRecommendation]:
        assert isinstance(state, UsageAggregates)
        return finalize(self.raw(state, registry), registry, context)
