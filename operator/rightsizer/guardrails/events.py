"""The Event each of our writes gets, and which writes lost theirs in a crash (pure).

A write's Event is queued right after the write and posted by Kopf a moment later; a
``kill -9`` in between loses it. The write's record (``rightsizer.dev/last-applied``)
outlives the crash, so on a policy's first pass in a new process the operator looks up the
Events of its recent writes and posts those that are missing — once: the next process
finds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rightsizer.guardrails.apply import ContainerChange
from rightsizer.guardrails.record import AppliedRecord
from rightsizer.names import EventReason

#: Writes at most this old get their lost Event again. Below the API server's default
#: Event TTL (``--event-ttl``, 1 h): an Event that was posted is still there to be found,
#: so a restart never posts it twice.
REPLAY_WINDOW_S = 1800.0
#: Event timestamps may have whole seconds; an Event counts for a write from this long
#: before the write's time (the next write of a workload is a cooldown later).
TIMESTAMP_SLACK_S = 1.0


@dataclass(frozen=True)
class PostedEvent:
    """An Event as the API server has it: whom it is about, why, and when."""

    kind: str
    name: str
    reason: str
    time_s: float


@dataclass(frozen=True)
class WriteEvent:
    """The Event of one of our writes: ``type``, ``reason``, ``message``."""

    type: str
    reason: str
    message: str


def applied_message(changes: Sequence[ContainerChange], notes: Sequence[str], policy: str) -> str:
    """``app: cpu 1→500m, memory 1.00Gi→512Mi by policy shop/shop`` (notes in brackets)."""
    text = "; ".join(c.text() for c in changes)
    said = "; ".join(n for n in notes if n)
    return text + (f" ({said})" if said else "") + f" by policy {policy}"


def failed_message(failure: str) -> str:
    return f"{failure}; reverted to the previous resources and held until the policy changes"


def write_event(record: AppliedRecord) -> WriteEvent:
    """The Event the write that left ``record`` posts (``Applied``: ResourcesApplied;
    ``Reverted``: RolloutFailed)."""
    if record.state == "Reverted":
        return WriteEvent("Warning", EventReason.ROLLOUT_FAILED, failed_message(record.reason))
    changes = [
        ContainerChange(c, before[0], before[1], *record.applied[c])
        for c, before in sorted(record.previous.items())
        if c in record.applied
    ]
    return WriteEvent(
        "Normal", EventReason.RESOURCES_APPLIED, applied_message(changes, (), record.policy)
    )


def _seconds(text: Any) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def posted_event(event: Mapping[str, Any]) -> PostedEvent:
    """The parts of an Event (as the API returns it) that say whether a write has one."""
    about = event.get("involvedObject") or event.get("regarding") or {}
    times = [
        t
        for key in ("eventTime", "lastTimestamp", "firstTimestamp")
        if (t := _seconds(event.get(key))) is not None
    ]
    return PostedEvent(
        str(about.get("kind", "")), str(about.get("name", "")), str(event.get("reason", "")),
        max(times, default=0.0),
    )  # fmt: skip


def replay_due(record: AppliedRecord | None, policy: str, now_s: float) -> bool:
    """Is ``record`` one of this policy's writes recent enough to replay its Event?"""
    return (
        record is not None
        and record.policy == policy
        and record.state in ("Applied", "Reverted")
        and now_s - record.time_s < REPLAY_WINDOW_S
    )


def lacks_event(record: AppliedRecord, kind: str, name: str, posted: Sequence[PostedEvent]) -> bool:
    """No Event of the write's reason about the workload since the write."""
    reason = write_event(record).reason
    return not any(
        e.kind == kind and e.name == name and e.reason == reason
        and e.time_s >= record.time_s - TIMESTAMP_SLACK_S
        for e in posted
    )  # fmt: skip
