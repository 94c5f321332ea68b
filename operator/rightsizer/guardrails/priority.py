"""How far a pod is from its recommendation: upstream VPA updater's priority
(``vpa-algorithm.md`` §2; oracle case 14). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rightsizer.engine.recommendation import Resources

_ATTRS = ("cpu_millicores", "memory_bytes")
#: Memory is compared in milli-units as upstream does (``MilliValue``).
_MILLI = {"cpu_millicores": 1, "memory_bytes": 1000}


@dataclass(frozen=True)
class ContainerTarget:
    """A container's recommendation as the updater sees it."""

    target: Resources
    lower_bound: Resources = field(default_factory=Resources)
    upper_bound: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class UpdatePriority:
    outside_recommended_range: bool
    """Some request is below the lower bound, above the upper bound, or missing."""
    scale_up: bool
    """Some target is above its request (or a request is missing)."""
    resource_diff: float
    """Σ over resources of |Σ requests − Σ targets| / max(Σ requests, 1)."""


def update_priority(
    requests: Sequence[Resources], targets: Sequence[ContainerTarget]
) -> UpdatePriority:
    """Priority of one pod whose containers have ``requests`` and ``targets`` (same order)."""
    outside = scale_up = False
    total_request = dict.fromkeys(_ATTRS, 0)
    total_target: dict[str, int] = {}
    for request, rec in zip(requests, targets, strict=True):
        for attr in _ATTRS:
            target = getattr(rec.target, attr)
            if target is None:
                continue
            m = _MILLI[attr]
            total_target[attr] = total_target.get(attr, 0) + target * m
            current = getattr(request, attr)
            if current is None:
                scale_up = outside = True
                continue
            total_request[attr] += current * m
            scale_up |= target > current
            lower, upper = getattr(rec.lower_bound, attr), getattr(rec.upper_bound, attr)
            if (lower is not None and current < lower) or (upper is not None and current > upper):
                outside = True
    diff = 0.0
    for attr, recommended in total_target.items():
        req = max(float(total_request[attr]), 1.0)
        diff += abs(req - recommended) / req
    return UpdatePriority(outside, scale_up, diff)
