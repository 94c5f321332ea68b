"""Recommendations as patches for a pull request (pure: no I/O).

The new values come from :func:`rightsizer.guardrails.apply.container_change`, the
function Apply mode writes with: increases at once, decreases by at most
``max_step_down_percent`` per change, memory never below the observed peak plus
``memory_peak_margin_percent``, limits never below requests, nothing below
``min_change_percent``. Two renderings:

- ``kustomize``: strategic-merge patches, one YAML document per workload, merged by
  container name (only ``cpu``/``memory`` under ``requests``/``limits`` are stated);
- ``jsonpatch``: RFC 6902 operations per workload, in kustomize's ``patches`` shape
  (``target`` + ``patch``). JSON patch addresses containers by their position in the pod
  template, so it needs the live template; each container's operations start with a
  ``test`` of its name, so a reordered template makes the whole patch fail instead of
  changing the wrong container.

Where the live HPAs are known (``--kube``), a resource an HPA scales on by utilization is
treated as ``hpaResources`` says (default ``Compensate`` for exports): the HPA's target
change is exported next to the request change — in ``kustomize``, a strategic-merge
patch of the HPA with its whole ``spec.metrics`` (an atomic list: it is replaced as a
whole); in ``jsonpatch``, a ``test`` and a ``replace`` of each ``averageUtilization``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.apply import (
    RESOURCES,
    ApplyContext,
    ApplySettings,
    ContainerChange,
    HpaPlan,
    container_outcomes,
)
from rightsizer.model.assessment import Assessment
from rightsizer.model.hpa import HpaInfo, MetricSource, hpa_info
from rightsizer.quantity import QuantityError, cpu_millicores, memory_bytes, quantities

PATCH_FORMATS = ("kustomize", "jsonpatch")
_KINDS = ("requests", "limits")
_ATTR = {"cpu": "cpu_millicores", "memory": "memory_bytes"}


@dataclass(frozen=True)
class TemplateContainer:
    """A container of a live pod template: its name and, when known, its ``resources``
    exactly as the template has them (used for the current values and to choose between
    JSON patch ``add`` and ``replace``)."""

    name: str
    resources: Mapping[str, Any] | None = None

    def current(self) -> tuple[Resources, Resources] | None:
        """(requests, limits) for cpu and memory; None when the resources are unknown."""
        if self.resources is None:
            return None
        pairs = []
        for kind in _KINDS:
            values = self.resources.get(kind) or {}
            try:
                cpu = cpu_millicores(values["cpu"]) if "cpu" in values else None
                mem = memory_bytes(values["memory"]) if "memory" in values else None
            except QuantityError:
                return None
            pairs.append(Resources(cpu, mem))
        return pairs[0], pairs[1]


WorkloadKey = tuple[str, str]
"""(namespace, ``Kind/name``)."""
Templates = Mapping[WorkloadKey, Sequence[str | TemplateContainer]]
"""Per workload, its pod template's containers in order (names, or names and resources)."""
Hpas = Sequence[Mapping[str, Any]]
"""The live HPAs (autoscaling/v2 objects as the API returns them), of every namespace."""


@dataclass(frozen=True)
class HpaChange:
    """An HPA's target changes that go with a workload's request changes, and its
    ``spec.metrics`` as it is (the kustomize patch states the whole list)."""

    plan: HpaPlan
    metrics: tuple[Mapping[str, Any], ...]

    def new_metrics(self) -> list[dict[str, Any]]:
        out = [copy.deepcopy(dict(m)) for m in self.metrics]
        for c in self.plan.changes:
            field_ = "resource" if c.metric.source is MetricSource.RESOURCE else "containerResource"
            out[c.metric.index][field_]["target"]["averageUtilization"] = c.after_percent
        return out


@dataclass(frozen=True)
class WorkloadChanges:
    namespace: str
    workload: str
    """``Kind/name``."""
    changes: tuple[ContainerChange, ...]
    hpa: tuple[HpaChange, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.workload.partition("/")[0]

    @property
    def name(self) -> str:
        return self.workload.partition("/")[2]


@dataclass(frozen=True)
class Plan:
    workloads: tuple[WorkloadChanges, ...]
    checked: int
    """Containers looked at."""
    insufficient_data: int
    """Containers left alone for too little history or confidence."""

    held: tuple[str, ...] = ()
    """Resources held for an HPA target out of bounds (``ns/Kind/name: why``)."""

    @property
    def containers(self) -> int:
        return sum(len(w.changes) for w in self.workloads)

    @property
    def hpa_targets(self) -> int:
        return sum(len(h.plan.changes) for w in self.workloads for h in w.hpa)


class UnknownContainersError(ValueError):
    """Some containers have no place in the known pod templates; they were left out.

    ``output`` holds the patches for everything else; ``missing`` names the ones left out.
    """

    def __init__(self, missing: Sequence[str], output: str) -> None:
        self.missing = list(missing)
        self.output = output
        super().__init__(
            f"{len(self.missing)} container(s) not found in the live pod templates, so "
            "they have no position to patch; left out: " + ", ".join(self.missing)
        )


def _template(templates: Templates | None, key: WorkloadKey) -> list[TemplateContainer] | None:
    if templates is None or key not in templates:
        return None
    return [c if isinstance(c, TemplateContainer) else TemplateContainer(c)
            for c in templates[key]]  # fmt: skip


def _pod_requests(
    template: Sequence[TemplateContainer] | None, rows: Sequence[Assessment]
) -> dict[str, Resources]:
    """Every container of the pod → its requests now: the live template's where it
    knows them, else as the recommendations saw them."""
    out = {r.recommendation.container: r.recommendation.current_requests for r in rows}
    for tc in template or []:
        current = tc.current()
        if current is not None:
            out[tc.name] = current[0]
    return out


def plan_changes(
    rows: Sequence[Assessment], settings: ApplySettings, templates: Templates | None = None,
    hpas: Hpas = (),
) -> Plan:  # fmt: skip
    """The changes Apply mode would make, per workload. Where ``templates`` know a
    container's resources, those are its current values (as in Apply mode); otherwise
    the values the recommendation saw. ``hpas``: the live HPAs (``settings.hpa_resources``
    says what happens to the resources they scale on)."""
    by_hpa_target: dict[WorkloadKey, list[tuple[HpaInfo, tuple[Mapping[str, Any], ...]]]] = {}
    for body in hpas:
        info = hpa_info(body)
        metrics = tuple((body.get("spec") or {}).get("metrics") or [])
        by_hpa_target.setdefault((info.namespace, info.target_ref), []).append((info, metrics))
    by_key: dict[WorkloadKey, list[Assessment]] = {}
    for row in rows:
        rec = row.recommendation
        by_key.setdefault((rec.namespace, rec.workload), []).append(row)
    workloads: list[WorkloadChanges] = []
    held: list[str] = []
    insufficient = 0
    for key, group in sorted(by_key.items()):
        found = by_hpa_target.get(key, [])
        ctx = ApplyContext(
            settings=settings, now_s=0, policy="", policy_generation=0,
            hpa_resources=frozenset(r for info, _ in found for r in info.scaled_resources),
            hpas=tuple(info for info, _ in found),
        )  # fmt: skip
        template = _template(templates, key)
        known = {c.name: c for c in template or []}
        items = []
        for row in sorted(group, key=lambda r: r.recommendation.container):
            tc = known.get(row.recommendation.container)
            items.append((row, tc.current() if tc else None))
        outcomes = container_outcomes(items, _pod_requests(template, group), ctx)
        insufficient += sum(o.insufficient_data is not None for o in outcomes.containers)
        held.extend(f"{key[0]}/{key[1]} {res}: {why}" for res, why in sorted(outcomes.held.items()))
        changes = outcomes.changes
        if not changes:
            continue
        order = [c.name for c in template or []]
        changes.sort(
            key=lambda c: (order.index(c.container), "") if c.container in order
            else (len(order), c.container)
        )  # fmt: skip
        metrics_of = {info.name: m for info, m in found}
        hpa = tuple(HpaChange(p, metrics_of[p.hpa.name]) for p in outcomes.hpa)
        workloads.append(WorkloadChanges(key[0], key[1], tuple(changes), hpa))
    return Plan(tuple(workloads), checked=len(rows), insufficient_data=insufficient,
                held=tuple(held))  # fmt: skip


def _values(r: Resources) -> dict[str, str]:
    return quantities(r.cpu_millicores, r.memory_bytes)


def _resources(change: ContainerChange) -> dict[str, dict[str, str]]:
    out = {}
    for kind, values in (("requests", change.requests), ("limits", change.limits)):
        if v := _values(values):
            out[kind] = v
    return out


def _split_known(
    plan: Plan, templates: Templates | None
) -> tuple[list[tuple[WorkloadChanges, list[tuple[int, TemplateContainer]]]], list[str]]:
    """Each workload's changes with the index and template entry of each container;
    changes whose container is not in ``templates`` are left out and named. Without
    ``templates`` every change is kept (index -1)."""
    kept, missing = [], []
    for w in plan.workloads:
        template = _template(templates, (w.namespace, w.workload))
        placed, changes = [], []
        for c in w.changes:
            if templates is None:
                placed.append((-1, TemplateContainer(c.container)))
                changes.append(c)
                continue
            names = [t.name for t in template or []]
            if c.container not in names:
                where = "workload not found" if template is None else "not in its pod template"
                missing.append(f"{w.namespace}/{w.workload} container {c.container} ({where})")
                continue
            index = names.index(c.container)
            placed.append((index, (template or [])[index]))
            changes.append(c)
        if changes:
            kept.append((WorkloadChanges(w.namespace, w.workload, tuple(changes), w.hpa), placed))
    return kept, missing


def header(plan: Plan, settings: ApplySettings, produced_by: str) -> str:
    return (
        f"# Generated by {produced_by}: new cpu/memory requests and limits for "
        f"{plan.containers} container(s) in {len(plan.workloads)} workload(s), as Apply mode "
        f"would write them (maxStepDownPercent {settings.max_step_down_percent:g}, "
        f"memoryPeakMarginPercent {settings.memory_peak_margin_percent:g}, "
        f"minChangePercent {settings.min_change_percent:g})"
        + (f"; {plan.hpa_targets} HPA target(s) moved with them to keep their scale points "
           f"(hpaResources {settings.hpa_resources})" if plan.hpa_targets else "")
        + ".\n"
        + "".join(f"# HPA {h.plan.hpa.namespace}/{h.plan.hpa.name}: "
                  + "; ".join(c.describe() for c in h.plan.changes) + "\n"
                  for w in plan.workloads for h in w.hpa)
        + "".join(f"# held ({HPA_HELD}): {why}\n" for why in plan.held)
    )  # fmt: skip


HPA_HELD = "HpaTargetOutOfBounds"


def hpa_merge_patch(h: HpaChange) -> dict[str, Any]:
    """One HPA's strategic-merge patch: its whole ``spec.metrics`` with the new targets."""
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": h.plan.hpa.name, "namespace": h.plan.hpa.namespace},
        "spec": {"metrics": h.new_metrics()},
    }  # fmt: skip


def hpa_json_patch(h: HpaChange) -> dict[str, Any]:
    """One HPA's kustomize-style JSON patch entry: ``test`` and ``replace`` per target."""
    ops: list[dict[str, Any]] = []
    for c in h.plan.changes:
        ops.append({"op": "test", "path": c.metric.path, "value": c.before_percent})
        ops.append({"op": "replace", "path": c.metric.path, "value": c.after_percent})
    target = {"group": "autoscaling", "version": "v2", "kind": "HorizontalPodAutoscaler",
              "name": h.plan.hpa.name, "namespace": h.plan.hpa.namespace}  # fmt: skip
    return {"target": target, "patch": ops}


def strategic_merge_patch(w: WorkloadChanges) -> dict[str, Any]:
    """One workload's kustomize strategic-merge patch (containers merge by name)."""
    return {
        "apiVersion": "apps/v1",
        "kind": w.kind,
        "metadata": {"name": w.name, "namespace": w.namespace},
        "spec": {"template": {"spec": {"containers": [
            {"name": c.container, "resources": _resources(c)} for c in w.changes
        ]}}},
    }  # fmt: skip


def render_kustomize(
    plan: Plan,
    settings: ApplySettings,
    produced_by: str = "rightsizer",
    templates: Templates | None = None,
) -> str:
    """Multi-document YAML, one strategic-merge patch per workload, after a comment line.
    With ``templates``, containers not in them are left out (``UnknownContainersError``)."""
    kept, missing = _split_known(plan, templates)
    docs = []
    for w, _ in kept:
        docs.append(strategic_merge_patch(w))
        docs.extend(hpa_merge_patch(h) for h in w.hpa)
    text = header(plan, settings, produced_by)
    if docs:
        text += yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)
    if missing:
        raise UnknownContainersError(missing, text)
    return text


def _ops(index: int, tc: TemplateContainer, change: ContainerChange) -> list[dict[str, Any]]:
    base = f"/spec/template/spec/containers/{index}"
    ops: list[dict[str, Any]] = [{"op": "test", "path": f"{base}/name", "value": change.container}]
    new = _resources(change)
    if tc.resources is not None:
        present = {k: set((tc.resources.get(k) or {}).keys()) for k in _KINDS}
        anything = bool(tc.resources)
    else:  # only the name is known: presence as the recommendation saw it
        before = {"requests": change.before_requests, "limits": change.before_limits}
        present = {k: set(_values(before[k])) for k in _KINDS}
        anything = any(present.values())
    if not anything:
        return [*ops, {"op": "add", "path": f"{base}/resources", "value": new}]
    for kind in _KINDS:
        values = new.get(kind, {})
        if not values:
            continue
        if not present[kind]:
            ops.append({"op": "add", "path": f"{base}/resources/{kind}", "value": values})
            continue
        for res in RESOURCES:
            if res in values:
                op = "replace" if res in present[kind] else "add"
                ops.append({"op": op, "path": f"{base}/resources/{kind}/{res}",
                            "value": values[res]})  # fmt: skip
    return ops


def json_patches(plan: Plan, templates: Templates) -> tuple[list[dict[str, Any]], list[str]]:
    """Kustomize-style ``{"target": …, "patch": [ops]}`` entries, and the containers left
    out because ``templates`` do not place them."""
    kept, missing = _split_known(plan, templates)
    entries = []
    for w, placed in kept:
        ops: list[dict[str, Any]] = []
        for (index, tc), change in zip(placed, w.changes, strict=True):
            ops.extend(_ops(index, tc, change))
        target = {"group": "apps", "version": "v1", "kind": w.kind, "name": w.name,
                  "namespace": w.namespace}  # fmt: skip
        entries.append({"target": target, "patch": ops})
        entries.extend(hpa_json_patch(h) for h in w.hpa)
    return entries, missing


def render_jsonpatch(plan: Plan, templates: Templates) -> str:
    """A JSON list of kustomize-style JSON patch entries. Containers that ``templates``
    do not place raise ``UnknownContainersError`` (its ``output`` has the rest)."""
    entries, missing = json_patches(plan, templates)
    text = json.dumps(entries, indent=2) + "\n"
    if missing:
        raise UnknownContainersError(missing, text)
    return text


def nothing_to_change(plan: Plan) -> str:
    return (
        f"nothing to change: {plan.checked} container(s) checked, "
        f"{plan.insufficient_data} with too little history or confidence, the rest within "
        "the minimum change"
    )
