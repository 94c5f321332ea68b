"""A RightSizePolicy's ``spec`` (a dict from the API) → typed ``PolicySpec`` (pure).

The CRD schema and its CEL rules reject most bad input at admission; what they cannot
express (unknown strategy parameters, a percentile a strategy has no use for) raises
``PolicyError`` with a message naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rightsizer.engine.policy import SizingPolicy
from rightsizer.engine.settings import SettingsError, parse_duration_s
from rightsizer.engine.strategies import (
    DEFAULT_PROFILE,
    Strategy,
    build_strategy,
    profile_overrides,
)
from rightsizer.guardrails.apply import ApplySettings
from rightsizer.model.hpa import UtilizationBounds
from rightsizer.model.inplace import InPlaceLimits, UpdateMethod
from rightsizer.policy.matchers import validate_matchers


class PolicyError(ValueError):
    """The policy cannot be used as written; the message names the field."""


class UpdateMode(StrEnum):
    RECOMMEND = "Recommend"
    ANNOTATE = "Annotate"
    APPLY = "Apply"


@dataclass(frozen=True)
class LabelSelector:
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for key, op, values in self.match_expressions:
            present = key in labels
            if op == "In" and (not present or labels[key] not in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class Targets:
    kinds: tuple[str, ...] = ("Deployment", "StatefulSet", "DaemonSet")
    selector: LabelSelector = field(default_factory=LabelSelector)
    names: frozenset[str] = frozenset()
    exclude_containers: frozenset[str] = frozenset()

    def selects(self, kind: str, name: str, labels: Mapping[str, str]) -> bool:
        if kind not in self.kinds:
            return False
        if self.names and name not in self.names:
            return False
        return self.selector.matches(labels)


#: The longest history a policy may read (also the CRD's limit): at the bootstrap's
#: coarser step it is still a few hundred queries, read over a few reconciles.
MAX_HISTORY_S = 90 * 86400.0


@dataclass(frozen=True)
class PrometheusSource:
    url: str
    auth_secret: str | None = None
    label_matchers: str = ""
    history_s: float = 14 * 86400.0
    step_s: float = 60.0
    full_resolution_s: float = 86400.0
    """First contact reads the most recent ``full_resolution_s`` at ``step_s`` …"""
    older_step_s: float = 300.0
    """… and older history at this coarser step (each sample weighted accordingly)."""


@dataclass(frozen=True)
class UpdatePolicy:
    mode: UpdateMode = UpdateMode.RECOMMEND
    settings: ApplySettings = field(default_factory=ApplySettings)
    """Minimum change (also for Annotate mode) and Apply mode's guardrail settings."""
    method: UpdateMethod = UpdateMethod.ROLLOUT
    """How Apply mode writes (``docs/design.md``, "In-place resize")."""
    in_place: InPlaceLimits = field(default_factory=InPlaceLimits)


@dataclass(frozen=True)
class PolicySpec:
    targets: Targets
    prometheus: PrometheusSource | None
    metrics_server: bool
    strategy_name: str
    strategy_overrides: Mapping[str, str]
    """The profile's settings, then the explicit ones (which win)."""
    update: UpdatePolicy
    reconcile_interval_s: float
    strategy_profile: str = DEFAULT_PROFILE

    def strategy(self) -> tuple[Strategy, SizingPolicy]:
        try:
            return build_strategy(self.strategy_name, self.strategy_overrides)
        except (SettingsError, ValueError) as exc:
            raise PolicyError(f"spec.strategy: {exc}") from None


def _duration(value: Any, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration_s(str(value))
    except SettingsError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _selector(data: Mapping[str, Any] | None) -> LabelSelector:
    data = data or {}
    exprs = []
    for i, e in enumerate(data.get("matchExpressions") or []):
        op = e.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(f"spec.targets.selector.matchExpressions[{i}].operator: {op!r}")
        exprs.append((str(e.get("key")), str(op), tuple(str(v) for v in e.get("values") or [])))
    return LabelSelector(
        {str(k): str(v) for k, v in (data.get("matchLabels") or {}).items()}, tuple(exprs)
    )


_PERCENTILE_KEYS = {
    ("headroom", "cpu"): "cpu_percentile",
    ("headroom", "memory"): "memory_request_percentile",
    ("vpa", "cpu"): "target_cpu_percentile",
    ("vpa", "memory"): "target_memory_percentile",
    ("percentile", "cpu"): "cpu_percentile",
}


def _strategy_overrides(
    strategy: Mapping[str, Any], resources: Mapping[str, Any]
) -> dict[str, str]:
    name = str(strategy.get("name", "headroom"))
    try:
        overrides = profile_overrides(name, str(strategy.get("profile", DEFAULT_PROFILE)))
    except ValueError as exc:
        raise PolicyError(f"spec.strategy.profile: {exc}") from None
    overrides.update({str(k): str(v) for k, v in (strategy.get("parameters") or {}).items()})
    for res, field_name in (("cpu", "cpuPercentile"), ("memory", "memoryPercentile")):
        if field_name in strategy:
            key = _PERCENTILE_KEYS.get((name, res))
            if key is None:
                raise PolicyError(
                    f"spec.strategy.{field_name}: strategy {name} has no such setting"
                )
            overrides[key] = str(strategy[field_name])
    for res, prefix in (("cpu", "cpu"), ("memory", "memory")):
        bounds = resources.get(res) or {}
        if "minAllowed" in bounds:
            overrides[f"min_{prefix}"] = str(bounds["minAllowed"])
        if "maxAllowed" in bounds:
            overrides[f"max_{prefix}"] = str(bounds["maxAllowed"])
        limit = (resources.get("limits") or {}).get(res) or {}
        if "policy" in limit:
            policy = str(limit["policy"])
            overrides[f"{prefix}_limit"] = (
                f"x{limit.get('multiplier', 1)}" if policy == "Multiplier" else policy
            )
    if "controlledValues" in resources:
        overrides["controlled_values"] = str(resources["controlledValues"])
    return overrides


def _matchers(value: Any, where: str) -> str:
    text = str(value)
    try:
        validate_matchers(text)
    except ValueError as exc:
        raise PolicyError(f"{where}.labelMatchers: {exc}") from None
    return text


def _history(value: Any, where: str) -> float:
    history_s = _duration(value, f"{where}.history", 14 * 86400)
    if history_s > MAX_HISTORY_S:
        raise PolicyError(f"{where}.history must be at most {MAX_HISTORY_S / 86400:g}d")
    return history_s


def parse_policy_spec(spec: Mapping[str, Any]) -> PolicySpec:
    """The spec with the CRD's defaults filled in; raises ``PolicyError``."""
    source = spec.get("source") or {}
    strategy = spec.get("strategy") or {}
    parsed = PolicySpec(
        targets=_targets(spec.get("targets") or {}),
        prometheus=_prometheus(source.get("prometheus")),
        metrics_server=bool((source.get("metricsServer") or {}).get("enabled", True)),
        strategy_name=str(strategy.get("name", "headroom")),
        strategy_overrides=_strategy_overrides(strategy, spec.get("resources") or {}),
        update=_update(spec.get("update") or {}),
        reconcile_interval_s=_duration(
            spec.get("reconcileInterval"), "spec.reconcileInterval", 300.0
        ),
        strategy_profile=str(strategy.get("profile", DEFAULT_PROFILE)),
    )
    parsed.strategy()  # fail now, with the field named, rather than at reconcile time
    return parsed


def _targets(targets: Mapping[str, Any]) -> Targets:
    return Targets(
        kinds=tuple(targets.get("kinds") or ("Deployment", "StatefulSet", "DaemonSet")),
        selector=_selector(targets.get("selector")),
        names=frozenset(targets.get("names") or ()),
        exclude_containers=frozenset(targets.get("excludeContainers") or ()),
    )


def _prometheus(prom: Mapping[str, Any] | None) -> PrometheusSource | None:
    if not prom:
        return None
    url = str(prom.get("url", ""))
    if not url.startswith(("http://", "https://")):
        raise PolicyError("spec.source.prometheus.url must start with http:// or https://")
    where = "spec.source.prometheus"
    bootstrap = prom.get("bootstrap") or {}
    step_s = _duration(prom.get("step"), f"{where}.step", 60.0)
    # An olderStep at or below step reads everything at step (no coarse part).
    older_step_s = max(
        step_s, _duration(bootstrap.get("olderStep"), f"{where}.bootstrap.olderStep", 300.0)
    )
    if not math.isclose(older_step_s / step_s, round(older_step_s / step_s)):
        raise PolicyError(f"{where}.bootstrap.olderStep must be a whole multiple of {where}.step")
    return PrometheusSource(
        url=url,
        auth_secret=(prom.get("authSecretRef") or {}).get("name"),
        label_matchers=_matchers(prom.get("labelMatchers", ""), where),
        history_s=_history(prom.get("history"), where),
        step_s=step_s,
        full_resolution_s=_duration(
            bootstrap.get("fullResolution"), f"{where}.bootstrap.fullResolution", 86400.0
        ),
        older_step_s=older_step_s,
    )


def _update(update: Mapping[str, Any]) -> UpdatePolicy:
    mode = update.get("mode", "Recommend")
    try:
        update_mode = UpdateMode(mode)
    except ValueError:
        raise PolicyError(f"spec.update.mode: unknown mode {mode!r}") from None
    method = update.get("method", UpdateMethod.ROLLOUT.value)
    try:
        update_method = UpdateMethod(method)
    except ValueError:
        raise PolicyError(f"spec.update.method: unknown method {method!r}") from None
    in_place = update.get("inPlace") or {}
    return UpdatePolicy(
        mode=update_mode,
        method=update_method,
        in_place=InPlaceLimits(
            max_pods_per_workload=max(1, int(in_place.get("maxPodsPerWorkload", 1))),
            max_pods_per_namespace=max(1, int(in_place.get("maxPodsPerNamespace", 10))),
            deferred_timeout_s=_duration(
                in_place.get("deferredTimeout"), "spec.update.inPlace.deferredTimeout", 300.0
            ),
        ),
        settings=ApplySettings(
            min_change_percent=float(update.get("minChangePercent", 10)),
            cooldown_s=_duration(update.get("cooldown"), "spec.update.cooldown", 86400.0),
            max_step_down_percent=float(update.get("maxStepDownPercent", 50)),
            min_confidence=float(update.get("minConfidence", 1)),
            memory_peak_margin_percent=float(update.get("memoryPeakMarginPercent", 10)),
            max_concurrent_rollouts=max(1, int(update.get("maxConcurrentRollouts", 2))),
            allow_gitops_managed=bool(update.get("allowGitOpsManaged", False)),
            hpa_resources=_hpa_resources(update.get("hpaResources", "Skip")),
            hpa_bounds=_hpa_bounds(update.get("hpaUtilizationBounds") or {}),
        ),
    )


HPA_RESOURCES = ("Skip", "Allow", "Compensate")


def _hpa_resources(value: Any) -> str:
    if value not in HPA_RESOURCES:
        raise PolicyError(f"spec.update.hpaResources: unknown choice {value!r}")
    return str(value)


def _hpa_bounds(bounds: Mapping[str, Any]) -> UtilizationBounds:
    low, high = int(bounds.get("minPercent", 10)), int(bounds.get("maxPercent", 200))
    if not 0 < low < high:
        raise PolicyError(
            "spec.update.hpaUtilizationBounds: minPercent must be positive and below maxPercent"
        )
    return UtilizationBounds(low, high)
