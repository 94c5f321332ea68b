"""Strategies by name, with their ``--set`` settings tables.

``build_strategy("vpa", {"target_cpu_percentile": "95"})`` returns the strategy and the
sizing policy (bounds, limits, rounding) with the overrides applied.
"""

from __future__ import annotations

from collections.abc import Mapping

from rightsizer.engine.aggregation import AggregationSettings
from rightsizer.engine.estimators import EstimatorSettings
from rightsizer.engine.policy import SizingPolicy
from rightsizer.engine.settings import (
    Setting,
    apply_overrides,
    parse_bool,
    parse_controlled_values,
    parse_cpu_millicores,
    parse_duration_s,
    parse_float,
    parse_limit_policy,
    parse_memory_bytes,
    parse_non_negative,
    parse_percent_as_fraction,
)
from rightsizer.engine.strategies import headroom
from rightsizer.engine.strategies.base import SizingContext, Strategy
from rightsizer.engine.strategies.percentile import PercentileSettings, PercentileStrategy
from rightsizer.engine.strategies.vpa import VpaStrategy

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "STRATEGY_NAMES",
    "SizingContext",
    "Strategy",
    "build_strategy",
    "profile_overrides",
    "settings_table",
]

STRATEGY_NAMES = ("vpa", "percentile", "headroom")
PROFILES = headroom.PROFILES
DEFAULT_PROFILE = headroom.DEFAULT_PROFILE


POLICY_SETTINGS = [
    Setting("min_cpu", "policy", "min_allowed.cpu_millicores", parse_cpu_millicores,
            "never recommend less CPU (quantity, e.g. 50m)"),
    Setting("max_cpu", "policy", "max_allowed.cpu_millicores", parse_cpu_millicores,
            "never recommend more CPU (quantity, e.g. 4)"),
    Setting("min_memory", "policy", "min_allowed.memory_bytes", parse_memory_bytes,
            "never recommend less memory (quantity, e.g. 128Mi)"),
    Setting("max_memory", "policy", "max_allowed.memory_bytes", parse_memory_bytes,
            "never recommend more memory (quantity, e.g. 8Gi)"),
    Setting("controlled_values", "policy", "controlled_values", parse_controlled_values,
            "RequestsAndLimits (default) or RequestsOnly (cap at the current limit)"),
    Setting("cpu_limit", "policy", "cpu_limit", parse_limit_policy,
            "CPU limit policy: KeepRatio, EqualToRequest, Unset or x<factor>"),
    Setting("memory_limit", "policy", "memory_limit", parse_limit_policy,
            "memory limit policy: KeepRatio, EqualToRequest, Unset or x<factor>"),
    Setting("round_cpu", "policy", "round_cpu_millicores", parse_cpu_millicores,
            "round CPU up to a multiple of this (quantity, default 1m)"),
    Setting("round_memory", "policy", "round_memory_bytes", parse_memory_bytes,
            "round memory up to a multiple of this (quantity)"),
    Setting("cpu_integer", "policy", "cpu_integer", parse_bool,
            "round CPU up to whole cores (true/false)"),
]  # fmt: skip

VPA_SETTINGS = [
    *(
        Setting(f"{bound}_{res}_percentile", "estimator", f"{bound}_{res}_percentile",
                parse_percent_as_fraction, f"{bound.replace('_', ' ')} {res} percentile (0–100)")
        for res in ("cpu", "memory")
        for bound in ("target", "lower_bound", "upper_bound")
    ),
    Setting("safety_margin_fraction", "estimator", "safety_margin_fraction", parse_non_negative,
            "added to every estimate (default 0.15)"),
    Setting("confidence_interval_cpu", "estimator", "confidence_interval_cpu_s",
            parse_duration_s, "history that gives confidence 1 for CPU bounds (default 24h)"),
    Setting("confidence_interval_memory", "estimator", "confidence_interval_memory_s",
            parse_duration_s, "history that gives confidence 1 for memory bounds (default 24h)"),
    Setting("upper_bound_confidence_multiplier", "estimator",
            "upper_bound_confidence_multiplier", parse_float, "default 1.0"),
    Setting("upper_bound_confidence_exponent", "estimator",
            "upper_bound_confidence_exponent", parse_float, "default 1.0"),
    Setting("lower_bound_confidence_multiplier", "estimator",
            "lower_bound_confidence_multiplier", parse_float, "default 0.001"),
    Setting("lower_bound_confidence_exponent", "estimator",
            "lower_bound_confidence_exponent", parse_float, "default -2.0"),
    Setting("pod_min_cpu", "estimator", "pod_min_cpu_millicores", parse_cpu_millicores,
            "per-pod minimum CPU split across containers (default 25m)"),
    Setting("pod_min_memory", "estimator", "pod_min_memory_bytes", parse_memory_bytes,
            "per-pod minimum memory split across containers (default 250Mi)"),
    Setting("cpu_half_life", "aggregation", "cpu_half_life_s", parse_duration_s,
            "half-life of CPU sample weights (default 24h)"),
    Setting("memory_half_life", "aggregation", "memory_half_life_s", parse_duration_s,
            "half-life of memory peak weights (default 24h)"),
    Setting("memory_aggregation_interval", "aggregation", "memory_aggregation_interval_s",
            parse_duration_s, "one memory peak per pod per interval (default 24h)"),
    Setting("memory_aggregation_interval_count", "aggregation",
            "memory_aggregation_interval_count", lambda t: int(parse_non_negative(t)),
            "a container no workload has any more is forgotten after interval × this (default 8)"),
    Setting("oom_bump_up_ratio", "aggregation", "oom_bump_up_ratio", parse_float,
            "memory after an OOM ≥ used × this (default 1.2)"),
    Setting("oom_min_bump_up", "aggregation", "oom_min_bump_up_bytes",
            lambda t: float(parse_memory_bytes(t)),
            "memory after an OOM ≥ used + this (default 100Mi)"),
    *POLICY_SETTINGS,
]  # fmt: skip

PERCENTILE_SETTINGS = [
    Setting("cpu_percentile", "settings", "cpu_percentile", parse_percent_as_fraction,
            "CPU request = this percentile of samples (0–100, default 95)"),
    Setting("memory_buffer_ratio", "settings", "memory_buffer_ratio", parse_float,
            "memory request = peak × this (default 1.15)"),
    Setting("min_cpu_request", "settings", "min_cpu_millicores", parse_cpu_millicores,
            "CPU request floor (default 10m)"),
    Setting("min_memory_request", "settings", "min_memory_bytes", parse_memory_bytes,
            "memory request floor (default 100Mi)"),
    *POLICY_SETTINGS,
]  # fmt: skip

HEADROOM_SETTINGS = [*headroom.SETTINGS, *POLICY_SETTINGS]


def settings_table(name: str) -> list[Setting]:
    if name == "vpa":
        return VPA_SETTINGS
    if name == "percentile":
        return PERCENTILE_SETTINGS
    if name == "headroom":
        return HEADROOM_SETTINGS
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}")


def profile_overrides(name: str, profile: str | None) -> dict[str, str]:
    """The settings a profile stands for. Profiles are points of the default strategy,
    ``headroom``; the others accept only ``Balanced`` (their own defaults), so that a
    policy with the CRD's default profile works with every strategy."""
    if profile is None:
        return {}
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if name != "headroom":
        if profile == DEFAULT_PROFILE:
            return {}
        raise ValueError(
            f"profile {profile} is a setting of the headroom strategy; "
            f"{name} has its own settings (use {DEFAULT_PROFILE} or leave it out)"
        )
    return dict(PROFILES[profile])


def build_strategy(
    name: str, overrides: Mapping[str, str] | None = None, profile: str | None = None
) -> tuple[Strategy, SizingPolicy]:
    """The named strategy and its sizing policy: its defaults, then the ``profile``'s
    settings, then ``overrides`` (explicit settings win over the profile's)."""
    table = settings_table(name)
    overrides = {**profile_overrides(name, profile), **(overrides or {})}
    if name == "vpa":
        objs = apply_overrides(
            {
                "aggregation": AggregationSettings(),
                "estimator": EstimatorSettings(),
                "policy": SizingPolicy(),
            },
            table,
            overrides,
        )
        return VpaStrategy(objs["aggregation"], objs["estimator"]), objs["policy"]
    if name == "headroom":
        objs = apply_overrides(
            {
                "settings": headroom.HeadroomSettings(),
                "policy": headroom.HeadroomStrategy.default_policy(),
            },
            table,
            overrides,
        )
        return headroom.HeadroomStrategy(objs["settings"]), objs["policy"]
    objs = apply_overrides(
        {"settings": PercentileSettings(), "policy": PercentileStrategy.default_policy()},
        table,
        overrides,
    )
    return PercentileStrategy(objs["settings"]), objs["policy"]
