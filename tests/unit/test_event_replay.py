"""The Events of writes a crash lost are posted by the next process's first pass, once
(pure; ``test_apply_recovery_e2e.py`` kills a real operator mid-pass)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from rightsizer.controller.autoapply import ApplyPorts, ApplyResult, apply_pass
from rightsizer.guardrails.events import REPLAY_WINDOW_S, posted_event, write_event
from rightsizer.guardrails.record import AppliedRecord, parse_record, record_json, revert_record
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.names import RECORD_ANNOTATION
from tests.unit.test_guardrails_apply import NOW, POLICY, applied, opted_in, row, workload


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_event(name: str, reason: str, t: float, kind: str = "Deployment") -> dict[str, Any]:
    """An Event as the API server returns it (whole-second timestamps, as Kopf's are
    stored)."""
    return {
        "metadata": {"name": f"kopf-event-{name}", "namespace": "apps"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": kind, "name": name,
                           "namespace": "apps"},
        "reason": reason, "type": "Normal", "message": "…",
        "firstTimestamp": _iso(t), "lastTimestamp": _iso(t), "eventTime": None,
    }  # fmt: skip


def recorded(record: AppliedRecord, name: str = "web") -> WorkloadInfo:
    return workload(name=name, annotations={RECORD_ANNOTATION: json.dumps(record_json(record))})


def first_pass(
    workloads: Sequence[WorkloadInfo], events: Sequence[Mapping[str, Any]] | None, **kw: Any
) -> tuple[ApplyResult, list[str]]:
    """A first pass in a new process (no recommendations: nothing is written); returns the
    result and the reasons for which Events were listed."""
    listed: list[str] = []

    def list_events(namespace: str, reason: str) -> Sequence[Mapping[str, Any]] | None:
        listed.append(reason)
        return None if events is None else [e for e in events if e["reason"] == reason]

    result = apply_pass(
        opted_in(**{"rows": [], "workloads": list(workloads), "replay_events": True, **kw}),
        ports=ApplyPorts(write=lambda plan, redecide: (plan, 1), pods=lambda ns: [],
                         events=list_events),
        pod_checks={"": NOW},
    )  # fmt: skip
    return result, listed


def test_a_write_whose_event_was_lost_gets_it_from_its_record() -> None:
    result, listed = first_pass([recorded(applied(NOW - 60))], events=[])
    (event,) = result.events
    assert (event.type, event.reason) == ("Normal", "ResourcesApplied")
    assert event.message == f"app: cpu 1→500m, memory 1Gi→900Mi by policy {POLICY}"
    assert event.target is not None and event.target["metadata"]["name"] == "web"
    assert listed == ["ResourcesApplied"] and result.replayed and result.replayed_events == 1


def test_an_event_posted_since_the_write_is_not_posted_again() -> None:
    # Posted in the write's second (timestamps are whole seconds): it counts.
    write_s = NOW - 60.7
    result, _ = first_pass([recorded(applied(write_s))], [api_event("web", "ResourcesApplied",
                                                                     write_s)])  # fmt: skip
    assert result.events == [] and result.replayed


@pytest.mark.parametrize(
    "event",
    [
        api_event("web", "ResourcesApplied", NOW - 3600),  # an earlier write's
        api_event("api", "ResourcesApplied", NOW - 30),  # another workload's
        api_event("web", "ResourcesApplied", NOW - 30, kind="StatefulSet"),
        api_event("web", "Cooldown", NOW - 30),  # another reason
    ],
)
def test_only_an_event_of_the_same_write_counts(event: dict[str, Any]) -> None:
    result, _ = first_pass([recorded(applied(NOW - 60))], [event])
    assert [e.reason for e in result.events] == ["ResourcesApplied"]


def test_a_revert_whose_event_was_lost_gets_its_warning() -> None:
    reverted = revert_record(applied(NOW - 900), "ProgressDeadlineExceeded", NOW - 60)
    result, listed = first_pass([recorded(reverted)], events=[])
    (event,) = result.events
    assert (event.type, event.reason) == ("Warning", "RolloutFailed")
    assert event.message.startswith("ProgressDeadlineExceeded; reverted")
    assert listed == ["RolloutFailed"]


def test_old_writes_and_other_policies_writes_are_left_alone_without_a_request() -> None:
    old = recorded(applied(NOW - REPLAY_WINDOW_S - 1))
    theirs = recorded(
        AppliedRecord("other/policy", 1, NOW - 60, "Applied", "RecommendationApplied", {}, {}),
        name="api",
    )
    result, listed = first_pass([old, theirs, workload(name="bare")], events=[])
    assert result.events == [] and listed == [] and result.replayed


def test_events_that_cannot_be_listed_are_looked_for_at_the_next_pass() -> None:
    result, _ = first_pass([recorded(applied(NOW - 60))], events=None)
    assert result.events == [] and not result.replayed


def test_only_the_first_pass_looks() -> None:
    result, listed = first_pass([recorded(applied(NOW - 60))], events=[], replay_events=False)
    assert result.events == [] and listed == [] and not result.replayed


def test_a_namespace_no_longer_opted_in_still_gets_the_lost_events() -> None:
    result, _ = first_pass([recorded(applied(NOW - 60))], events=[], namespace_labels={})
    assert [e.reason for e in result.events] == ["ResourcesApplied"]
    assert result.condition.reason == "NamespaceNotOptedIn" and result.replayed


def test_the_replayed_event_says_what_the_write_s_own_event_said() -> None:
    """One helper words both (a write's own Event may add notes, e.g. an HPA's)."""
    posted: list[Any] = []
    plans: list[Any] = []
    apply_pass(
        opted_in(rows=[row()], workloads=[workload()]),
        ports=ApplyPorts(write=lambda plan, redecide: plans.append(plan) or (plan, 1),
                         pods=lambda ns: [], event=posted.append),
        pod_checks={},
    )  # fmt: skip
    (own,) = [e for e in posted if e.reason == "ResourcesApplied"]
    (plan,) = plans
    record = parse_record(plan.record)
    assert record is not None and write_event(record).message == own.message


def test_api_events_are_read_for_whom_why_and_when() -> None:
    e = posted_event(api_event("web", "ResourcesApplied", NOW))
    assert (e.kind, e.name, e.reason, e.time_s) == ("Deployment", "web", "ResourcesApplied", NOW)
    later = datetime.fromtimestamp(NOW + 0.25, UTC).isoformat()  # MicroTime
    micro = {**api_event("web", "ResourcesApplied", NOW), "eventTime": later}
    assert posted_event(micro).time_s == NOW + 0.25
    assert posted_event({}).time_s == 0.0
    assert write_event(applied(NOW)).reason == "ResourcesApplied"
