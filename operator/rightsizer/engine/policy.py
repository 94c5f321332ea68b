"""How recommendations are bounded and turned into requests and limits (pure data).

``SizingPolicy`` is what a RightSizePolicy's ``resources`` section and the CLI's ``--set``
options become: min/max allowed, which values are controlled, the limit policy per
resource and rounding. ``LimitRangeItem`` is a namespace's LimitRange, already parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rightsizer.engine.recommendation import Resources
from rightsizer.quantity import cpu_millicores, memory_bytes


class ControlledValues(StrEnum):
    REQUESTS_AND_LIMITS = "RequestsAndLimits"
    """Requests follow the recommendation; limits follow by the limit policy."""
    REQUESTS_ONLY = "RequestsOnly"
    """Only requests change, capped at the current limit; limits stay as they are."""


class LimitMode(StrEnum):
    KEEP_RATIO = "KeepRatio"
    """Keep the current limit/request ratio (upstream VPA); no limit stays no limit."""
    EQUAL_TO_REQUEST = "EqualToRequest"
    """Limit = request (Guaranteed QoS for that resource)."""
    UNSET = "Unset"
    """No limit."""
    MULTIPLIER = "Multiplier"
    """Limit = request × multiplier, rounded up."""


@dataclass(frozen=True)
class LimitPolicy:
    mode: LimitMode = LimitMode.KEEP_RATIO
    multiplier: float = 1.0

    def __post_init__(self) -> None:
        if self.mode is LimitMode.MULTIPLIER and not (
            math.isfinite(self.multiplier) and self.multiplier >= 1.0
        ):
            raise ValueError("a limit multiplier must be a finite number ≥ 1")

    @classmethod
    def parse(cls, text: str) -> LimitPolicy:
        """``KeepRatio``, ``EqualToRequest``, ``Unset`` or ``x2.5`` / ``Multiplier:2.5``."""
        raw = text.strip()
        lowered = raw.lower().replace("-", "").replace("_", "")
        for mode in LimitMode:
            if lowered == mode.value.lower():
                if mode is LimitMode.MULTIPLIER:
                    break
                return cls(mode)
        for prefix in ("multiplier:", "x", "×"):
            if raw.lower().startswith(prefix):
                try:
                    return cls(LimitMode.MULTIPLIER, float(raw[len(prefix) :]))
                except ValueError:
                    break
        raise ValueError(
            f"unknown limit policy {text!r}: use KeepRatio, EqualToRequest, Unset or x<factor>"
        )


@dataclass(frozen=True)
class SizingPolicy:
    """Bounds, controlled values, limit policies and rounding for recommendations."""

    min_allowed: Resources = field(default_factory=Resources)
    max_allowed: Resources = field(default_factory=Resources)
    controlled_values: ControlledValues = ControlledValues.REQUESTS_AND_LIMITS
    cpu_limit: LimitPolicy = field(default_factory=LimitPolicy)
    memory_limit: LimitPolicy = field(default_factory=LimitPolicy)
    round_cpu_millicores: int = 1
    """Round non-zero CPU up to a multiple of this (``--round-cpu-millicores``)."""
    round_memory_bytes: int = 1
    """Round non-zero memory up to a multiple of this (``--round-memory-bytes``)."""
    cpu_integer: bool = False
    """Round CPU up to whole cores (VPA's integer-CPU post-processor)."""

    def __post_init__(self) -> None:
        if self.round_cpu_millicores < 1 or self.round_memory_bytes < 1:
            raise ValueError("rounding multiples must be ≥ 1")
        for name, lo, hi in (
            ("cpu", self.min_allowed.cpu_millicores, self.max_allowed.cpu_millicores),
            ("memory", self.min_allowed.memory_bytes, self.max_allowed.memory_bytes),
        ):
            if lo is not None and hi is not None and hi > 0 and lo > hi:
                raise ValueError(f"min_allowed.{name} must not exceed max_allowed.{name}")


@dataclass(frozen=True)
class LimitRangeItem:
    """One item of a LimitRange (``type: Container`` or ``type: Pod``)."""

    type: str = "Container"
    min: Resources = field(default_factory=Resources)
    max: Resources = field(default_factory=Resources)
    default: Resources = field(default_factory=Resources)
    """Default *limit* (the LimitRange ``default`` field)."""
    default_request: Resources = field(default_factory=Resources)


def _resources(data: Any, where: str) -> Resources:
    if data is None:
        return Resources()
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of resource quantities")
    cpu = data.get("cpu")
    mem = data.get("memory")
    return Resources(
        cpu_millicores=None if cpu is None else cpu_millicores(cpu),
        memory_bytes=None if mem is None else memory_bytes(mem),
    )


def parse_limit_range(manifest: dict[str, Any]) -> list[LimitRangeItem]:
    """The items of a LimitRange object (as a dict from YAML or the API)."""
    if manifest.get("kind", "LimitRange") != "LimitRange":
        raise ValueError(f"expected a LimitRange, got kind {manifest.get('kind')!r}")
    spec = manifest.get("spec") or {}
    items = []
    for i, item in enumerate(spec.get("limits") or []):
        where = f"spec.limits[{i}]"
        items.append(
            LimitRangeItem(
                type=str(item.get("type", "Container")),
                min=_resources(item.get("min"), f"{where}.min"),
                max=_resources(item.get("max"), f"{where}.max"),
                default=_resources(item.get("default"), f"{where}.default"),
                default_request=_resources(item.get("defaultRequest"), f"{where}.defaultRequest"),
            )
        )
    return items


def _pick(values: list[int | None], choose: Any) -> int | None:
    present = [v for v in values if v is not None and v > 0]
    return choose(present) if present else None


def merge_items(items: list[LimitRangeItem], kind: str) -> LimitRangeItem | None:
    """Several LimitRanges in one namespace: lowest max, highest min, last default (§1.7)."""
    chosen = [i for i in items if i.type == kind]
    if not chosen:
        return None

    def merged(attr: str, choose: Any) -> Resources:
        return Resources(
            _pick([getattr(i, attr).cpu_millicores for i in chosen], choose),
            _pick([getattr(i, attr).memory_bytes for i in chosen], choose),
        )

    def last(attr: str) -> Resources:
        return Resources(
            _pick([getattr(i, attr).cpu_millicores for i in chosen], lambda v: v[-1]),
            _pick([getattr(i, attr).memory_bytes for i in chosen], lambda v: v[-1]),
        )

    return LimitRangeItem(
        type=kind,
        min=merged("min", max),
        max=merged("max", min),
        default=last("default"),
        default_request=last("default_request"),
    )
