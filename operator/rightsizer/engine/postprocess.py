"""From estimates to requests and limits: rounding, capping, LimitRange, limits.

``vpa-algorithm.md`` §1.6 (rounding, uncapped target, min/max allowed) and §1.7 (pod and
container LimitRange, RequestsOnly, limit scaling). One resource at a time, integer
millicores or bytes; ``None`` means "not set".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rightsizer.engine.policy import (
    ControlledValues,
    LimitMode,
    LimitPolicy,
    LimitRangeItem,
    SizingPolicy,
)
from rightsizer.engine.recommendation import Resources
from rightsizer.quantity import round_up_to_multiple

Amount = int | None


def _set(value: Amount) -> bool:
    return value is not None and value > 0


def cap(value: int, minimum: Amount, maximum: Amount) -> int:
    """Raise to ``minimum``, then cut to ``maximum``; unset or zero bounds are ignored."""
    if minimum is not None and minimum > 0:
        value = max(value, minimum)
    if maximum is not None and maximum > 0:
        value = min(value, maximum)
    return value


def proportional_limit(
    original_limit: Amount,
    original_request: Amount,
    new_request: Amount,
    default_limit: Amount = None,
) -> Amount:
    """Upstream's ``getProportionalResourceLimit`` (§1.7 step 4): keep limit/request.

    No limit (and no LimitRange default) → no limit; no request, or request == limit →
    limit = new request; otherwise ``floor(limit × new request / request)``.
    """
    if not _set(original_limit):
        original_limit = default_limit
    if not _set(original_limit) or not _set(new_request):
        return None
    if not _set(original_request) or original_request == original_limit:
        return new_request
    assert original_limit is not None and original_request is not None
    assert new_request is not None
    return original_limit * new_request // original_request


def boundary_request(
    original_request: Amount, original_limit: Amount, boundary: Amount, default_limit: Amount
) -> Amount:
    """Upstream's ``GetBoundaryRequest``: the request that keeps the limit/request ratio
    with the limit at ``boundary``; no limit → no boundary."""
    if not _set(original_limit):
        original_limit = default_limit
    if not _set(original_limit) or not _set(boundary):
        return None
    if not _set(original_request):
        return boundary
    assert boundary is not None and original_request is not None and original_limit is not None
    return boundary * original_request // original_limit


def container_limit_range_bounds(
    request: Amount, limit: Amount, item: LimitRangeItem, resource: str
) -> tuple[Amount, Amount]:
    """(min, max) for a request under a container LimitRange (§1.7 step 2)."""
    lr_min = getattr(item.min, resource)
    lr_max = getattr(item.max, resource)
    lr_default = getattr(item.default, resource)
    upper = boundary_request(request, limit, lr_max, lr_default)
    lower = boundary_request(request, limit, lr_min, lr_default)
    if _set(lr_min) and (lower is None or lr_min > lower):
        lower = lr_min
    return lower, upper


@dataclass(frozen=True)
class Sized:
    """One resource of one container after post-processing."""

    target: int
    lower_bound: int
    upper_bound: int
    uncapped_target: int
    limit: Amount


_ATTR = {"cpu": "cpu_millicores", "memory": "memory_bytes"}


def size_resource(
    resource: str,
    estimate: tuple[int, int, int],
    current: tuple[Amount, Amount],
    policy: SizingPolicy,
    limit_range: LimitRangeItem | None,
) -> Sized:
    """Round → uncapped target → min/max allowed → LimitRange → RequestsOnly → limit.
    ``estimate``: (target, lower, upper); ``current``: (request, limit)."""
    target, lower, upper = estimate
    current_request, current_limit = current
    attr = _ATTR[resource]
    multiple = policy.round_cpu_millicores if resource == "cpu" else policy.round_memory_bytes
    if resource == "cpu" and policy.cpu_integer:
        multiple = max(multiple, 1000)
    target, lower, upper = (round_up_to_multiple(v, multiple) for v in (target, lower, upper))
    uncapped = target
    lo_allowed = getattr(policy.min_allowed, attr)
    hi_allowed = getattr(policy.max_allowed, attr)
    values = [cap(v, lo_allowed, hi_allowed) for v in (target, lower, upper)]
    if limit_range is not None:
        lr_lo, lr_hi = container_limit_range_bounds(
            current_request, current_limit, limit_range, attr
        )
        # LimitRange first, then the policy's own bounds win (upstream's order).
        values = [cap(cap(v, lr_lo, lr_hi), lo_allowed, hi_allowed) for v in values]
    if policy.controlled_values is ControlledValues.REQUESTS_ONLY and _set(current_limit):
        assert current_limit is not None
        t, lo, hi = (min(v, current_limit) for v in values)
        return Sized(t, lo, hi, uncapped_target=uncapped, limit=current_limit)
    limit_policy: LimitPolicy = policy.cpu_limit if resource == "cpu" else policy.memory_limit
    default_limit = getattr(limit_range.default, attr) if limit_range is not None else None
    t, lo, hi = values
    return Sized(
        t,
        lo,
        hi,
        uncapped_target=uncapped,
        limit=new_limit(limit_policy, t, current_request, current_limit, default_limit),
    )


def new_limit(
    policy: LimitPolicy,
    new_request: int,
    current_request: Amount,
    current_limit: Amount,
    default_limit: Amount,
) -> Amount:
    if policy.mode is LimitMode.KEEP_RATIO:
        return proportional_limit(current_limit, current_request, new_request, default_limit)
    if policy.mode is LimitMode.EQUAL_TO_REQUEST:
        return new_request
    if policy.mode is LimitMode.UNSET:
        return None
    return -(-int(new_request * policy.multiplier * 1000) // 1000)


def apply_pod_limit_range(
    requests: list[Resources], limits: list[Resources], item: LimitRangeItem | None
) -> tuple[list[Resources], list[Resources]]:
    """§1.7 step 1 for one pod's containers: scale requests up to the pod minimum, and
    scale down when the limits together exceed the pod maximum."""
    if item is None or not requests:
        return requests, limits
    for attr in ("cpu_millicores", "memory_bytes"):
        total = sum(getattr(r, attr) or 0 for r in requests)
        pod_min = getattr(item.min, attr)
        if _set(pod_min) and 0 < total < pod_min:
            factor_num, factor_den = pod_min, total
            requests = [_scaled(r, attr, factor_num, factor_den, up=True) for r in requests]
            limits = [_scaled(r, attr, factor_num, factor_den, up=True) for r in limits]
        total_limits = sum(getattr(r, attr) or 0 for r in limits)
        pod_max = getattr(item.max, attr)
        if _set(pod_max) and total_limits > pod_max:
            requests = [_scaled(r, attr, pod_max, total_limits, up=False) for r in requests]
            limits = [_scaled(r, attr, pod_max, total_limits, up=False) for r in limits]
    return requests, limits


def _scaled(r: Resources, attr: str, num: int, den: int, *, up: bool) -> Resources:
    value = getattr(r, attr)
    if value is None:
        return r
    scaled = -(-value * num // den) if up else value * num // den
    return replace(r, **{attr: scaled})
