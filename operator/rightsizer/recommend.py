"""Run a strategy over a samples frame: the offline path behind ``rightsizer recommend``.

Pure: a frame in, recommendations out (no file or network access).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from rightsizer.engine.policy import LimitRangeItem, SizingPolicy
from rightsizer.engine.recommendation import ContainerRecommendation
from rightsizer.engine.strategies import SizingContext, Strategy
from rightsizer.engine.usage import ContainerRegistry
from rightsizer.samples.encode import current_resources, iter_chunks
from rightsizer.samples.frame import drop_duplicate_samples


def recommend_frame(
    frame: pd.DataFrame,
    strategy: Strategy,
    policy: SizingPolicy,
    limit_ranges: Mapping[str, list[LimitRangeItem]] | None = None,
) -> list[ContainerRecommendation]:
    """Recommendations for every container in ``frame``, sorted by key."""
    frame = drop_duplicate_samples(frame)
    registry = ContainerRegistry()
    state = strategy.new_state()
    for chunk in iter_chunks(frame, registry):
        state.add(chunk)
    requests, limits = current_resources(frame)
    context = SizingContext(
        policy=policy,
        current_requests=requests,
        current_limits=limits,
        limit_ranges=limit_ranges or {},
    )
    return strategy.recommend(state, registry, context)
