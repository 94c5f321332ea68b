"""Apply mode's guardrails, one by one (pure decisions; the e2e tests show them on the
sandbox)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from rightsizer.controller.autoapply import ApplyInput
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.guardrails.apply import ApplyContext, ApplySettings, QuotaRoom, decide
from rightsizer.guardrails.record import AppliedRecord, parse_record, record_json, revert_record
from rightsizer.guardrails.rollout import (
    PodHealth,
    RolloutState,
    pod_failure,
    pod_health,
    rollout_state,
)
from rightsizer.model.assessment import Assessment, Severity
from rightsizer.model.workloads import (
    ContainerResources,
    RolloutStatus,
    WorkloadInfo,
    workload_info,
)

MI = 2**20
NOW = 1_800_000_000.0
POLICY = "apps/rightsize"


def workload(**kw: Any) -> WorkloadInfo:
    base = WorkloadInfo(
        "Deployment", "apps", "web", "uid-1", {}, {}, 2,
        (ContainerResources("app", Resources(1000, 1024 * MI), Resources(2000, 1024 * MI)),),
    )  # fmt: skip
    return replace(base, **kw)


def row(
    cpu: int = 300, mem: int = 400 * MI, *, peak: float = 350 * MI, confidence: float = 3.0,
    enough: bool = True, lim_cpu: int | None = 600, lim_mem: int | None = 400 * MI,
) -> Assessment:  # fmt: skip
    rec = ContainerRecommendation(
        "apps", "Deployment/web", "app", Resources(cpu, mem), Resources(cpu, mem),
        Resources(cpu, mem), Resources(cpu, mem), Resources(lim_cpu, lim_mem), 5000, 5000,
        confidence, Resources(1000, 1024 * MI), Resources(2000, 1024 * MI), peak, 0, 3 * 86400,
    )  # fmt: skip
    return Assessment(rec, 2, enough, "" if enough else "too little history",
                     Severity.WARNING, Severity.WARNING)  # fmt: skip


def opted_in(**kw: Any) -> ApplyInput:
    """A pass's input in an opted-in namespace, with nothing else in it."""
    base: dict[str, Any] = {
        "policy": POLICY, "generation": 3, "settings": ApplySettings(),
        "namespace_labels": {"rightsizer.dev/auto-apply": "enabled"}, "hpas": [],
        "quotas": [], "limit_ranges": [], "previous_states": {}, "now_s": NOW,
    }  # fmt: skip
    return ApplyInput(**{**base, **kw})


def ctx(**kw: Any) -> ApplyContext:
    settings = kw.pop("settings", ApplySettings())
    return ApplyContext(settings=settings, now_s=NOW, policy=POLICY, policy_generation=3, **kw)


def applied(rec_time: float, state: str = "Applied", generation: int = 3) -> AppliedRecord:
    return AppliedRecord(
        POLICY, generation, rec_time, state, "RecommendationApplied",
        {"app": (Resources(1000, 1024 * MI), Resources(2000, 1024 * MI))},
        {"app": (Resources(500, 900 * MI), Resources(1000, 900 * MI))},
    )  # fmt: skip


def test_a_plain_decrease_is_written_in_one_bounded_step_above_the_memory_peak() -> None:
    d = decide(workload(), [row()], ctx())
    assert d.writes and d.hold is None
    (c,) = d.changes
    assert c.requests.cpu_millicores == 500  # 1000m → 300m asked; at most 50 % down per write
    # memory: 1 GiB → 400 Mi asked, step allows 512 Mi, the peak 350 Mi + 10 % = 385 Mi
    assert c.requests.memory_bytes == 512 * MI
    assert c.limits.cpu_millicores == 1000 and c.limits.memory_bytes == 512 * MI
    assert c.before_requests == Resources(1000, 1024 * MI)


def test_memory_never_goes_below_the_peak_plus_margin() -> None:
    settings = ApplySettings(max_step_down_percent=100)
    d = decide(workload(), [row(mem=100 * MI, peak=600 * MI, lim_mem=100 * MI)],
               ctx(settings=settings))  # fmt: skip
    (c,) = d.changes
    assert c.requests.memory_bytes == pytest.approx(660 * MI, abs=1)
    assert c.limits.memory_bytes is not None and c.limits.memory_bytes >= 660 * MI


def test_increases_apply_at_once_and_limits_stay_above_requests() -> None:
    d = decide(workload(), [row(cpu=3000, mem=2048 * MI, lim_cpu=None, lim_mem=None)], ctx())
    (c,) = d.changes
    assert c.requests == Resources(3000, 2048 * MI)
    assert c.limits.cpu_millicores == 3000 and c.limits.memory_bytes == 2048 * MI


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (workload(annotations={"rightsizer.dev/exclude": "true"}), "Excluded"),
        (workload(annotations={"argocd.argoproj.io/tracking-id": "x"}), "GitOpsManaged"),
        (workload(labels={"app.kubernetes.io/managed-by": "Helm"}), "GitOpsManaged"),
        (workload(labels={"kustomize.toolkit.fluxcd.io/name": "apps"}), "GitOpsManaged"),
    ],
)
def test_workload_markers_hold(info: WorkloadInfo, reason: str) -> None:
    d = decide(info, [row()], ctx())
    assert not d.writes and d.hold is not None and d.hold.reason == reason


def test_gitops_managed_workloads_are_written_when_the_policy_allows() -> None:
    info = workload(labels={"app.kubernetes.io/managed-by": "Helm"})
    assert decide(info, [row()], ctx(settings=ApplySettings(allow_gitops_managed=True))).writes


def test_rollout_in_progress_holds() -> None:
    d = decide(workload(), [row()], ctx(rollout=RolloutState(complete=False)))
    assert d.hold is not None and d.hold.reason == "RolloutInProgress"


def test_cooldown_holds_until_it_has_passed() -> None:
    d = decide(workload(), [row()], ctx(record=applied(NOW - 3600)))
    assert d.hold is not None and d.hold.reason == "Cooldown" and "23.0h" in d.hold.message
    assert decide(workload(), [row()], ctx(record=applied(NOW - 86401))).writes


def test_a_reverted_workload_is_held_until_the_policy_changes() -> None:
    reverted = revert_record(applied(NOW - 60), "ProgressDeadlineExceeded", NOW - 30)
    d = decide(workload(), [row()], ctx(record=reverted))
    assert d.hold is not None and d.hold.reason == "HeldAfterFailedRollout"
    assert "ProgressDeadlineExceeded" in d.hold.message
    later = ApplyContext(ApplySettings(), NOW, POLICY, 4, record=reverted)  # spec edited
    assert decide(workload(), [row()], later).writes


@pytest.mark.parametrize(
    ("recommendation", "settings"),
    [(row(enough=False), ApplySettings()), (row(confidence=0.5), ApplySettings())],
)
def test_too_little_data_holds(recommendation: Assessment, settings: ApplySettings) -> None:
    d = decide(workload(), [recommendation], ctx(settings=settings))
    assert d.hold is not None and d.hold.reason == "InsufficientData"


def test_a_confidence_just_below_the_minimum_reads_below_it() -> None:
    d = decide(workload(), [row(confidence=0.999)], ctx())
    assert d.hold is not None and d.hold.reason == "InsufficientData"
    assert "confidence 0.99 below 1" in d.hold.message


def test_small_changes_hold() -> None:
    d = decide(workload(), [row(cpu=950, mem=1000 * MI, lim_cpu=None, lim_mem=None,
                                 peak=100 * MI)], ctx())  # fmt: skip
    assert d.hold is not None and d.hold.reason == "BelowMinimumChange"


def test_resources_an_hpa_scales_on_are_left_alone() -> None:
    d = decide(workload(), [row()], ctx(hpa_resources=frozenset({"cpu"})))
    (c,) = d.changes
    assert c.requests.cpu_millicores == 1000 and c.limits.cpu_millicores == 2000
    assert c.requests.memory_bytes == 512 * MI
    assert any("HPA" in n for n in d.notes)
    allowed = ctx(hpa_resources=frozenset({"cpu"}), settings=ApplySettings(hpa_resources="Allow"))
    assert decide(workload(), [row()], allowed).changes[0].requests.cpu_millicores == 500


def test_only_hpa_resources_to_change_holds_as_below_minimum() -> None:
    d = decide(workload(), [row(mem=1024 * MI, lim_mem=1024 * MI, peak=100 * MI)],
               ctx(hpa_resources=frozenset({"cpu"})))  # fmt: skip
    assert d.hold is not None and d.hold.reason == "BelowMinimumChange"


def test_limit_range_bounds_hold() -> None:
    lr = LimitRangeItem("Container", min=Resources(600, None))
    d = decide(workload(), [row()], ctx(limit_ranges=[lr]))
    assert d.hold is not None and d.hold.reason == "LimitRangeViolation"
    assert "below the LimitRange min" in d.hold.message


def test_quota_room_counts_replicas_and_surge() -> None:
    grow = row(cpu=1500, mem=1024 * MI, lim_cpu=None, lim_mem=None, peak=100 * MI)
    # +500m × 2 replicas = 1 core at the end; surge pod: 1.5 cores next to the old pods
    quota = QuotaRoom("q", {"requests.cpu": 10.0}, {"requests.cpu": 8.8})
    d = decide(workload(), [grow], ctx(quotas=[quota], surge_pods=1))
    assert d.hold is not None and d.hold.reason == "QuotaExceeded"
    assert "needs 1.5 more, 1.2 left" in d.hold.message
    no_surge = decide(workload(), [grow], ctx(quotas=[quota], surge_pods=0))
    assert no_surge.writes  # 1 core fits the 1.2 left


def test_at_most_n_rollouts_in_flight() -> None:
    d = decide(workload(), [row()], ctx(rollouts_in_flight=2))
    assert d.hold is not None and d.hold.reason == "RolloutLimit"
    assert decide(workload(), [row()], ctx(rollouts_in_flight=1)).writes


def test_the_record_round_trips_through_json() -> None:
    rec = applied(NOW)
    assert parse_record(record_json(rec)) == rec
    assert parse_record({"policy": "x"}) is None
    back = revert_record(rec, "why", NOW + 5)
    assert back.applied == rec.previous and back.previous == rec.applied


def test_rollout_states() -> None:
    assert rollout_state(RolloutStatus(2, 2, 2, 2, 2, 2)).complete
    assert not rollout_state(RolloutStatus(3, 2, 2, 2, 2, 2)).complete  # not observed yet
    assert not rollout_state(RolloutStatus(2, 2, 2, 1, 2, 3)).complete  # old pods remain
    failed = rollout_state(RolloutStatus(2, 2, 2, 1, 1, 2, deadline_exceeded=True))
    assert failed == RolloutState(False, "ProgressDeadlineExceeded")


def test_pods_created_after_the_write_that_fail_mark_the_rollout_failed() -> None:
    old = PodHealth("web-old", NOW - 100, oom_killed=("app",))
    assert pod_failure([old], NOW) is None  # older than our write: not ours to judge
    new = pod_health({
        "metadata": {"name": "web-new", "creationTimestamp": "2027-01-15T08:00:00Z"},
        "status": {"containerStatuses": [
            {"name": "app", "lastState": {"terminated": {"reason": "OOMKilled"}}}]},
    })  # fmt: skip
    assert new.oom_killed == ("app",)
    assert pod_failure([old, new], new.created_s) == "pod web-new: app OOMKilled"
    looping = pod_health({
        "metadata": {"name": "web-2", "creationTimestamp": "2027-01-15T08:00:00Z"},
        "status": {"containerStatuses": [
            {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    })  # fmt: skip
    assert "CrashLoopBackOff" in (pod_failure([looping], looping.created_s) or "")


def test_inventory_reads_rollout_status_and_surge() -> None:
    body = {
        "metadata": {"name": "web", "namespace": "apps", "generation": 4, "resourceVersion": "9"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"rollingUpdate": {"maxSurge": "50%"}},
                 "template": {"spec": {"containers": [{"name": "app"}]}}},
        "status": {"observedGeneration": 4, "updatedReplicas": 4, "availableReplicas": 4,
                   "replicas": 4, "conditions": [{"type": "Progressing",
                                                  "reason": "ProgressDeadlineExceeded"}]},
    }  # fmt: skip
    info = workload_info("Deployment", body)
    assert info.rollout.surge_pods == 2 and info.rollout.deadline_exceeded
    assert info.selector == {"app": "web"} and info.resource_version == "9"
    default = workload_info("Deployment", {**body, "spec": {**body["spec"], "strategy": {}}})
    assert default.rollout.surge_pods == 1  # 25 % of 4


def test_apply_pass_reverts_a_write_whose_new_pods_are_oom_killed() -> None:
    """The pass lists the namespace's pods once, finds the watched workload's new pod
    OOM-killed, writes the recorded previous values back and holds the workload."""
    from rightsizer.actuation.resources import ResourcesWrite
    from rightsizer.controller.autoapply import ApplyPorts, apply_pass
    from rightsizer.names import RECORD_ANNOTATION

    record = applied(NOW - 120)
    info = workload(annotations={RECORD_ANNOTATION: json.dumps(record_json(record))},
                    selector={"app": "web"})  # fmt: skip
    pods = [
        {"metadata": {"name": "web-new", "labels": {"app": "web"},
                      "creationTimestamp": "2027-01-15T08:00:00Z"},
         "status": {"containerStatuses": [
             {"name": "app", "lastState": {"terminated": {"reason": "OOMKilled"}}}]}},
        {"metadata": {"name": "other", "labels": {"app": "other"},
                      "creationTimestamp": "2027-01-15T08:00:00Z"}},
    ]  # fmt: skip
    writes: list[ResourcesWrite] = []
    listed: list[str] = []

    def write(plan: ResourcesWrite, redecide: Any) -> tuple[ResourcesWrite, int]:
        writes.append(plan)
        return plan, 2

    # web-new was created at NOW (2027-01-15T08:00:00Z), two minutes after the write
    result = apply_pass(
        opted_in(rows=[row()], workloads=[info]),
        ports=ApplyPorts(write=write, pods=lambda ns: listed.append(ns) or pods),  # type: ignore[func-returns-value]
        pod_checks={},
    )
    assert listed == ["apps"]
    (revert,) = writes
    assert revert.containers == {"app": record.previous["app"]}
    assert revert.resource_version == ""  # a revert must land
    assert revert.record["state"] == "Reverted" and "OOMKilled" in revert.record["reason"]
    assert result.states["Deployment/web"]["reason"] == "HeldAfterFailedRollout"
    assert any(e.reason == "RolloutFailed" and e.type == "Warning" for e in result.events)
    assert result.last_actions["Deployment/web"]["type"] == "Reverted"


def test_no_writes_while_the_usage_source_fails() -> None:
    from rightsizer.controller.autoapply import ApplyPorts, apply_pass

    def write(plan: Any, redecide: Any) -> Any:
        raise AssertionError("nothing may be written")

    result = apply_pass(
        opted_in(rows=[row()], workloads=[workload()], source_ok=False),
        ports=ApplyPorts(write=write, pods=lambda ns: []),
        pod_checks={},
    )
    assert result.states["Deployment/web"]["reason"] == "SourceUnavailable"
    assert result.writes == 0


def test_holds_that_follow_our_own_write_are_not_events() -> None:
    """After a write: RolloutInProgress, then Cooldown — in the status, without an Event
    each (ResourcesApplied said it); someone else's rollout is still an Event."""
    from rightsizer.controller.autoapply import ApplyPorts, apply_pass
    from rightsizer.names import RECORD_ANNOTATION

    rolling = RolloutStatus(generation=5, observed_generation=4, desired=2)
    ours = workload(annotations={RECORD_ANNOTATION: json.dumps(record_json(applied(NOW - 5)))},
                    rollout=rolling)  # fmt: skip
    theirs = workload(rollout=rolling)

    def run(info: WorkloadInfo) -> Any:
        return apply_pass(
            opted_in(
                rows=[row()],
                workloads=[info],
                previous_states={"Deployment/web": {"reason": "Applied"}},
            ),
            ports=ApplyPorts(write=lambda *a: (None, 0), pods=lambda ns: []),
            pod_checks={"": NOW},
        )

    mine = run(ours)
    assert mine.states["Deployment/web"]["reason"] == "RolloutInProgress" and not mine.events
    other = run(theirs)
    assert [e.reason for e in other.events] == ["RolloutInProgress"]


def _deployment_after_our_write(
    since_write_s: float, *, deadline_exceeded: bool, progress_deadline_s: float | None
) -> WorkloadInfo:
    from rightsizer.names import RECORD_ANNOTATION

    record = applied(NOW - since_write_s)
    status = RolloutStatus(generation=5, observed_generation=5, desired=2, updated=2,
                           available=0, total=2, deadline_exceeded=deadline_exceeded,
                           progress_deadline_s=progress_deadline_s)  # fmt: skip
    return workload(annotations={RECORD_ANNOTATION: json.dumps(record_json(record))},
                    rollout=status)  # fmt: skip


def _pass(info: WorkloadInfo) -> tuple[Any, list[Any]]:
    from rightsizer.controller.autoapply import ApplyPorts, apply_pass

    writes: list[Any] = []
    result = apply_pass(
        opted_in(rows=[row()], workloads=[info]),
        ports=ApplyPorts(
            write=lambda plan, redecide: writes.append(plan) or (plan, 1), pods=lambda ns: []
        ),
        pod_checks={"": NOW},
    )
    return result, writes


@pytest.mark.parametrize(
    ("since_write_s", "progress_deadline_s"),
    [
        (610.0, 600.0),  # Kubernetes' default deadline: exceeded just after it, at ~10 min
        (47 * 60.0, 600.0),  # and still exceeded 47 minutes later
        (3 * 3600.0, 1800.0),  # a longer deadline, seen hours after the write
    ],
)
def test_a_deadline_exceeded_after_our_write_is_reverted_whatever_its_age(
    since_write_s: float, progress_deadline_s: float
) -> None:
    """The watch used to end at 10 minutes, exactly when Kubernetes' default deadline
    passes: a write that could never roll out stayed Applied for good."""
    info = _deployment_after_our_write(
        since_write_s, deadline_exceeded=True, progress_deadline_s=progress_deadline_s
    )
    result, writes = _pass(info)
    (revert,) = writes
    assert revert.record["state"] == "Reverted"
    assert "ProgressDeadlineExceeded" in revert.record["reason"]
    assert result.states["Deployment/web"]["reason"] == "HeldAfterFailedRollout"
    assert any(e.reason == "RolloutFailed" for e in result.events)


def test_the_watch_lasts_the_progress_deadline_plus_a_margin() -> None:
    from rightsizer.guardrails.rollout import DEADLINE_MARGIN_S, MIN_WATCH_S, watch_s, watched

    long = RolloutStatus(progress_deadline_s=1800.0)
    assert watch_s(long) == 1800.0 + DEADLINE_MARGIN_S
    assert watched(long, 1800.0) and not watched(long, 1800.0 + DEADLINE_MARGIN_S)
    assert watch_s(RolloutStatus(progress_deadline_s=600.0)) == 600.0 + DEADLINE_MARGIN_S
    assert watch_s(RolloutStatus(progress_deadline_s=60.0)) == MIN_WATCH_S
    assert watch_s(RolloutStatus()) == MIN_WATCH_S  # StatefulSets, DaemonSets
    body = {"metadata": {"name": "web", "namespace": "apps"}, "spec": {"replicas": 1}}
    assert workload_info("Deployment", body).rollout.progress_deadline_s == 600.0
    body["spec"]["progressDeadlineSeconds"] = 90  # type: ignore[index]
    assert workload_info("Deployment", body).rollout.progress_deadline_s == 90.0


def test_the_watch_follows_the_install_settings() -> None:
    from rightsizer.guardrails.rollout import RolloutWatch, watch_s, watched

    short = RolloutWatch(min_s=5.0, deadline_margin_s=5.0)
    assert watch_s(RolloutStatus(progress_deadline_s=15.0), short) == 20.0
    assert watch_s(RolloutStatus(), short) == 5.0
    assert watch_s(RolloutStatus(progress_deadline_s=1.0), short) == 6.0
    assert not watched(RolloutStatus(progress_deadline_s=15.0), 20.0, short)
    exceeded = RolloutStatus(progress_deadline_s=15.0, deadline_exceeded=True)
    assert watched(exceeded, 10 * 3600.0, short)  # whatever its age


def test_a_healthy_old_write_is_no_longer_watched() -> None:
    info = _deployment_after_our_write(3600.0, deadline_exceeded=False, progress_deadline_s=600.0)
    _, writes = _pass(info)
    assert all(w.record.get("state") != "Reverted" for w in writes)


def test_each_writes_event_is_posted_before_the_next_write() -> None:
    """A crash in the middle of a pass (here: the second write dies) loses no Event of a
    write already made: each is posted right after its write, not after the pass."""
    from rightsizer.controller.autoapply import ApplyPorts, apply_pass

    web, api = workload(), workload(name="api", uid="uid-2")
    api_row = row()
    api_row = replace(
        api_row, recommendation=replace(api_row.recommendation, workload="Deployment/api")
    )
    posted: list[str] = []

    def post(event: Any) -> None:
        posted.append(f"{event.reason} {event.target['metadata']['name']}")

    def write(plan: Any, redecide: Any) -> Any:
        if plan.name == "web":
            raise RuntimeError("the operator is killed here")
        return plan, 2

    with pytest.raises(RuntimeError):
        apply_pass(
            opted_in(rows=[row(), api_row], workloads=[web, api]),
            ports=ApplyPorts(write=write, pods=lambda ns: [], event=post),
            pod_checks={},
        )
    assert posted == ["ResourcesApplied api"]
