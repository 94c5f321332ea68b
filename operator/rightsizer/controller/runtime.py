"""What the operator keeps in memory per policy between reconciles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rightsizer.engine.retention import LastSeen
from rightsizer.engine.strategies.base import UsageState
from rightsizer.engine.usage import ContainerRegistry
from rightsizer.model.assessment import Assessment


@dataclass
class PolicyRuntime:
    signature: str
    """Strategy name and settings; a change starts the history anew."""
    registry: ContainerRegistry = field(default_factory=ContainerRegistry)
    state: UsageState | None = None
    seen: LastSeen = field(default_factory=LastSeen)
    """When each container and pod last had a sample (what forgetting goes by)."""
    last_gc_s: float | None = None
    """Usage time (``read_until_s``) of the last garbage collection."""
    read_until_s: float | None = None
    """Usage has been read up to here (Prometheus or metrics-server)."""
    bootstrapped: bool = False
    restored_from_checkpoint: bool = False
    last_checkpoint_s: float = 0.0
    last_reconcile_s: float = 0.0
    last_metrics_poll_s: float = 0.0
    observed_generation: int = -1
    source_ok: bool = True
    catching_up: bool = False
    """The last read stopped at the query budget: the next one comes soon."""
    source_problem: str | None = None
    """The last reconcile's source problem (a fixed ``SourceProblem`` message)."""
    rows: list[Assessment] = field(default_factory=list)
    """The last reconcile's recommendations (what Apply mode writes)."""
    owned: list[str] = field(default_factory=list)
    """Workloads (``Kind/name``) the policy owned at the last reconcile."""
    apply_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → Apply mode's state as last told (``autoApply``), so a hold's Event is
    sent once."""
    shown_states: dict[str, dict[str, Any]] | None = None
    """Workload → the last Apply-mode pass's state, for the recommendation objects (None:
    no pass yet in this process)."""
    last_actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Workload → the last Annotate or Apply action taken in this process (the objects
    keep the earlier ones)."""
    acted: bool = False
    """Annotate or Apply mode did or decided something new since the objects were last
    brought in line."""
    synced: dict[str, Any] | None = None
    """Workload → its containers' resources when the objects were last brought in line
    (a change, ours or a person's, syncs them at the next tick)."""
    checkpoint_problem: str | None = None
    """Why the last checkpoint was not saved (``SaveResult`` value), so its Event is sent
    once, not at every checkpoint."""
    pod_checks: dict[str, float] = field(default_factory=dict)
    """When the namespace's pods were last checked for our writes' failures."""
    events_replayed: bool = False
    """The Events a crash lost of the policy's recent writes were posted (Apply mode's
    first pass in this process)."""
