"""Is a workload's rollout done, going, or failed? (pure)

A rollout fails when the Deployment controller reports ``ProgressDeadlineExceeded``, or
when pods created since our write are OOM-killed or crash-looping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rightsizer.model.workloads import RolloutStatus


@dataclass(frozen=True)
class RolloutState:
    complete: bool = True
    failed: str | None = None
    """Why the rollout failed (e.g. ProgressDeadlineExceeded), None when it has not."""


@dataclass(frozen=True)
class PodHealth:
    """What a pod's status says about its containers (from the API, see ``pod_health``)."""

    name: str
    created_s: float
    oom_killed: tuple[str, ...] = ()
    """Containers whose last termination was an OOM kill."""
    crash_looping: tuple[str, ...] = ()
    """Containers waiting in CrashLoopBackOff."""
    labels: Mapping[str, str] = field(default_factory=dict)

    def selected_by(self, match_labels: Mapping[str, str]) -> bool:
        return bool(match_labels) and all(self.labels.get(k) == v for k, v in match_labels.items())


#: How long after our write a rollout is watched when the workload has no progress deadline
#: (StatefulSets, DaemonSets) or a shorter one.
MIN_WATCH_S = 600.0
#: Watched this much past a Deployment's progress deadline: the controller sets
#: ``ProgressDeadlineExceeded`` on its next sync after the deadline, not at it.
DEADLINE_MARGIN_S = 120.0


@dataclass(frozen=True)
class RolloutWatch:
    """How long our writes' rollouts are watched (install-time settings of the operator:
    ``RIGHTSIZER_ROLLOUT_WATCH_SECONDS``, ``RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS``)."""

    min_s: float = MIN_WATCH_S
    """At least this long, whatever the workload's progress deadline (or lack of one)."""
    deadline_margin_s: float = DEADLINE_MARGIN_S
    """At least this long past a Deployment's ``progressDeadlineSeconds``."""


DEFAULT_WATCH = RolloutWatch()


def watch_s(r: RolloutStatus, watch: RolloutWatch = DEFAULT_WATCH) -> float:
    """How long after our write its rollout is watched: at least the workload's progress
    deadline plus a margin (a watch that ends before the deadline never sees it pass)."""
    deadline = r.progress_deadline_s
    if deadline is None:
        return watch.min_s
    return max(watch.min_s, deadline + watch.deadline_margin_s)


def watched(r: RolloutStatus, since_write_s: float, watch: RolloutWatch = DEFAULT_WATCH) -> bool:
    """Is our write's rollout still watched? Within ``watch_s``, and whatever its age while
    the controller reports ``ProgressDeadlineExceeded``."""
    return r.deadline_exceeded or since_write_s < watch_s(r, watch)


def rollout_state(r: RolloutStatus) -> RolloutState:
    if r.deadline_exceeded:
        return RolloutState(False, "ProgressDeadlineExceeded")
    done = (
        r.observed_generation >= r.generation
        and r.updated >= r.desired
        and r.available >= r.desired
        and r.total <= r.desired
    )
    return RolloutState(done, None)


def pod_failure(pods: Sequence[PodHealth], since_s: float) -> str | None:
    """Why the pods created at or after ``since_s`` show the new resources do not work."""
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.created_s + 1 < since_s:  # creation times have whole seconds
            continue
        if pod.oom_killed:
            return f"pod {pod.name}: {', '.join(pod.oom_killed)} OOMKilled"
        if pod.crash_looping:
            return f"pod {pod.name}: {', '.join(pod.crash_looping)} in CrashLoopBackOff"
    return None


def _seconds(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def pod_health(pod: Mapping[str, Any]) -> PodHealth:
    """The parts of a pod (as the API returns it) that tell whether its containers fail."""
    meta = pod.get("metadata") or {}
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    oom = tuple(
        str(s.get("name"))
        for s in statuses
        if ((s.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled"
        or ((s.get("state") or {}).get("terminated") or {}).get("reason") == "OOMKilled"
    )
    looping = tuple(
        str(s.get("name"))
        for s in statuses
        if ((s.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
    )
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return PodHealth(str(meta.get("name", "")), _seconds(str(meta.get("creationTimestamp", ""))),
                     oom, looping, labels)  # fmt: skip
