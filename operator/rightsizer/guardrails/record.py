"""Our last write to a workload, as kept in its ``rightsizer.dev/last-applied`` annotation
(written atomically with the resources, so a restart never loses it): the record and its
JSON codec (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rightsizer.engine.recommendation import Resources


@dataclass(frozen=True)
class HpaTarget:
    """One HPA utilization target moved with the requests (``hpaResources: Compensate``)."""

    hpa: str
    """The HPA's name (in the workload's namespace)."""
    index: int
    """The metric's position in its ``spec.metrics``."""
    resource: str
    before_percent: int
    after_percent: int

    def text(self) -> str:
        return f"HPA {self.hpa} {self.resource} target {self.before_percent}%→{self.after_percent}%"


@dataclass(frozen=True)
class AppliedRecord:
    """Our last write to a workload, kept in its ``rightsizer.dev/last-applied`` annotation
    (written atomically with the resources, so a restart never loses it)."""

    policy: str
    generation: int
    time_s: float
    state: str
    """``Applied`` or ``Reverted``."""
    reason: str
    previous: Mapping[str, tuple[Resources, Resources]]
    """Container → (requests, limits) before the write."""
    applied: Mapping[str, tuple[Resources, Resources]]
    method: str = "Rollout"
    """How it was written: ``Rollout`` (the pod template) or ``InPlace`` (the workload's
    ``rightsizer.dev/pod-resources`` annotation and its running pods' ``resize``)."""
    hpa: tuple[HpaTarget, ...] = field(default=())
    """HPA targets moved in the same step (``hpaResources: Compensate``)."""


def _res_json(r: Resources) -> dict[str, int]:
    out = {}
    if r.cpu_millicores is not None:
        out["cpuMillicores"] = r.cpu_millicores
    if r.memory_bytes is not None:
        out["memoryBytes"] = r.memory_bytes
    return out


def _res_from(data: Mapping[str, Any]) -> Resources:
    cpu, mem = data.get("cpuMillicores"), data.get("memoryBytes")
    return Resources(None if cpu is None else int(cpu), None if mem is None else int(mem))


def record_json(record: AppliedRecord) -> dict[str, Any]:
    def pairs(m: Mapping[str, tuple[Resources, Resources]]) -> dict[str, Any]:
        return {c: {"requests": _res_json(rq), "limits": _res_json(lm)}
                for c, (rq, lm) in sorted(m.items())}  # fmt: skip

    return {
        "policy": record.policy, "generation": record.generation, "time": record.time_s,
        "state": record.state, "reason": record.reason,
        "previous": pairs(record.previous), "applied": pairs(record.applied),
        **({"method": record.method} if record.method != "Rollout" else {}),
        **({"hpa": [hpa_target_json(h) for h in record.hpa]} if record.hpa else {}),
    }  # fmt: skip


def hpa_target_json(h: HpaTarget) -> dict[str, Any]:
    return {"name": h.hpa, "metric": h.index, "resource": h.resource,
            "previous": h.before_percent, "applied": h.after_percent}  # fmt: skip


def _hpa_from(data: Any) -> tuple[HpaTarget, ...]:
    return tuple(
        HpaTarget(str(h["name"]), int(h["metric"]), str(h["resource"]), int(h["previous"]),
                  int(h["applied"]))
        for h in data or []
    )  # fmt: skip


def parse_record(data: Mapping[str, Any]) -> AppliedRecord | None:
    """The record from its JSON form; None when it is not one of ours (or is damaged)."""
    try:

        def pairs(m: Mapping[str, Any]) -> dict[str, tuple[Resources, Resources]]:
            return {str(c): (_res_from(v.get("requests") or {}), _res_from(v.get("limits") or {}))
                    for c, v in m.items()}  # fmt: skip

        return AppliedRecord(
            policy=str(data["policy"]), generation=int(data["generation"]),
            time_s=float(data["time"]), state=str(data["state"]), reason=str(data["reason"]),
            previous=pairs(data.get("previous") or {}), applied=pairs(data.get("applied") or {}),
            method=str(data.get("method", "Rollout")), hpa=_hpa_from(data.get("hpa")),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def revert_record(record: AppliedRecord, reason: str, now_s: float) -> AppliedRecord:
    """Reverting swaps what was applied for what was there before."""
    return replace(
        record, time_s=now_s, state="Reverted", reason=reason,
        previous=record.applied, applied=record.previous,
        hpa=tuple(replace(h, before_percent=h.after_percent, after_percent=h.before_percent)
                  for h in record.hpa),
    )  # fmt: skip
