"""What an Apply-mode pass reads (``ApplyInput``), writes through (``ApplyPorts``) and
returns (``ApplyResult``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rightsizer.actuation.resources import ResourcesWrite
from rightsizer.controller.reconcile import Event
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.guardrails.apply import (
    ApplySettings,
)
from rightsizer.guardrails.rollout import (
    RolloutWatch,
)
from rightsizer.model.assessment import Assessment
from rightsizer.model.hpa import HpaInfo, TargetChange
from rightsizer.model.inplace import (
    InPlaceLimits,
    UpdateMethod,
)
from rightsizer.model.pods import PodInfo
from rightsizer.model.workloads import ContainerResources, WorkloadInfo
from rightsizer.status.build import Condition


@dataclass
class ApplyPorts:
    write: Callable[
        [ResourcesWrite, Callable[[dict[str, Any]], ResourcesWrite | None] | None],
        tuple[ResourcesWrite | None, int],
    ]
    """Dry-run + server-side apply (``actuation.resources.write``); raises
    ``WriteRejectedError``."""
    pods: Callable[[str], Sequence[Mapping[str, Any]]]
    """All pods of a namespace (one list request, however many workloads are watched)."""
    event: Callable[[Event], None] = field(default=lambda event: None)
    """Posts an Event at once: each write's Event goes out right after the write, so a
    crash later in the pass loses none."""
    events: Callable[[str, str], Sequence[Mapping[str, Any]] | None] = field(
        default=lambda namespace, reason: []
    )
    """The Events of a namespace with a reason (None: they cannot be listed now), to find
    the writes whose Event a crash lost."""
    annotate: Callable[[WorkloadInfo, Mapping[str, str | None], str], None] = field(
        default=lambda workload, annotations, resource_version: None
    )
    """Merge-patch the workload's own annotations (None removes one), with a
    resourceVersion precondition when one is given (``AnnotateConflictError``); raises
    ``WriteRejectedError``. In-place methods only."""
    resize: Callable[[PodInfo, Sequence[ContainerResources]], object] = field(
        default=lambda pod, resize: None
    )
    """Resize a running pod through ``pods/resize``; raises ``WriteRejectedError``."""
    opted_in: Callable[[str], bool] | None = None
    """The namespace's opt-in label read from the API server now, right before an in-place
    write (None: the index's labels are taken as they are)."""
    hpa_read: Callable[[str, str], HpaInfo] | None = None
    """An HPA (namespace, name) as the API server has it now (``Compensate``)."""
    hpa_move: Callable[[HpaInfo, Sequence[TargetChange], bool], object] = field(
        default=lambda hpa, changes, dry_run: None
    )
    """Move an HPA's targets (``actuation.hpa.move_targets``; the bool: dry-run only);
    raises ``HpaChangedError`` (decide again) or ``WriteRejectedError``."""


@dataclass
class ApplyResult:
    condition: Condition
    last_actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → the action taken now (Applied, Reverted)."""
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → ``{state, reason, message}``: what auto-apply does with it now."""
    events: list[Event] = field(default_factory=list)
    writes: int = 0
    api_requests: int = 0
    replayed: bool = False
    """The lost Events of recent writes were looked for (and posted); not again in this
    process."""
    replayed_events: int = 0
    """How many of them were posted."""
    conditions: list[Condition] = field(default_factory=list)
    """More conditions of the policy (``InPlaceResize`` for the in-place methods)."""
    pods_resized: int = 0


@dataclass(frozen=True)
class ApplyInput:
    """Everything one Apply-mode pass decides from, as the caller read it."""

    policy: str
    """``namespace/name`` of the policy."""
    generation: int
    settings: ApplySettings
    rows: Sequence[Assessment]
    """The last reconcile's recommendations."""
    workloads: Sequence[WorkloadInfo]
    """The workloads the policy owns."""
    namespace_labels: Mapping[str, str]
    hpas: Sequence[HpaInfo]
    """The HPAs of the namespace."""
    quotas: Sequence[Mapping[str, Any]]
    limit_ranges: Sequence[LimitRangeItem]
    previous_states: Mapping[str, Mapping[str, Any]]
    """Workload → the state already told (no second Event for the same hold)."""
    now_s: float
    source_ok: bool = True
    """False while the usage source fails: no writes."""
    watch: RolloutWatch = field(default_factory=RolloutWatch)
    """How long our writes' rollouts are watched (install-time settings)."""
    replay_events: bool = False
    """The policy's first pass in this process: post the Events of its recent writes that
    a crash lost (see ``ApplyResult.replayed``)."""
    method: UpdateMethod = UpdateMethod.ROLLOUT
    in_place: InPlaceLimits = field(default_factory=InPlaceLimits)
    resize_served: bool = False
    """The cluster serves ``pods/resize``."""
