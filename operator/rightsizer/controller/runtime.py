"""What the operator keeps in memory per policy between reconciles."""

from __future__ import annotations

from dataclasses import dataclass, field

from rightsizer.engine.strategies.base import UsageState
from rightsizer.engine.usage import ContainerRegistry


@dataclass
class PolicyRuntime:
    signature: str
    """Strategy name and settings; a change starts the history anew."""
    registry: ContainerRegistry = field(default_factory=ContainerRegistry)
    state: UsageState | None = None
    read_until_s: float | None = None
    """Usage has been read up to here (Prometheus or metrics-server)."""
    bootstrapped: bool = False
    restored_from_checkpoint: bool = False
    last_checkpoint_s: float = 0.0
    last_reconcile_s: float = 0.0
    last_metrics_poll_s: float = 0.0
    observed_generation: int = -1
    source_ok: bool = True
