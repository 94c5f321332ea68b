"""Whether the operator still reconciles its policies (pure: ``now_s`` is passed in).

The liveness probe fails when a valid policy has not finished a reconcile for
``STALE_INTERVALS`` × its interval (plus the longest a reconcile may take): the operator is
then wedged — a dead timer, a stuck thread, a starved pool — and a restart is the cure.
A reconcile that *finishes* with a source error counts as progress: Prometheus being
down is not the operator's fault and a restart would not help.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: How many intervals a valid policy may go without a finished reconcile.
STALE_INTERVALS = 3.0


@dataclass
class PolicyProgress:
    name: str
    """``namespace/name``, for the probe's answer."""
    interval_s: float
    since_s: float
    """When the policy last finished a reconcile (or was first seen)."""


@dataclass
class Liveness:
    """Policy uid → its progress; only valid policies are watched."""

    allowance_s: float
    """The longest one reconcile may take (the per-reconcile source deadline and margin)."""
    policies: dict[str, PolicyProgress] = field(default_factory=dict)

    def seen(self, uid: str, name: str, interval_s: float, now_s: float) -> None:
        """A tick of a valid policy started: watch it from now if it is new."""
        entry = self.policies.get(uid)
        if entry is None:
            self.policies[uid] = PolicyProgress(name, interval_s, now_s)
        else:
            entry.interval_s = interval_s

    def finished(self, uid: str, now_s: float) -> None:
        entry = self.policies.get(uid)
        if entry is not None:
            entry.since_s = now_s

    def forget(self, uid: str) -> None:
        self.policies.pop(uid, None)

    def stale(self, now_s: float) -> list[str]:
        """Policies overdue (sorted names)."""
        return sorted(
            p.name
            for p in list(self.policies.values())
            if now_s - p.since_s > STALE_INTERVALS * p.interval_s + self.allowance_s
        )
