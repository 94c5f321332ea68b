"""The in-place path's pure planning (``rightsizer.model.inplace``): the pod-resources
annotation, and which pods of a workload are resized now and what their state says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rightsizer.engine.recommendation import Resources
from rightsizer.model.inplace import (
    InPlaceLimits,
    InPlacePlan,
    InPlaceState,
    parse_pod_resources,
    plan_workload,
    pod_resources_text,
    pods_of,
    resizing_pods,
    sized_containers,
)
from rightsizer.model.pods import PodContainer, PodInfo, ResizeState, pod_info
from rightsizer.model.workloads import ContainerResources

MI = 2**20
T0 = 1_800_000_000.0
OLD = ContainerResources("app", Resources(1000, 1024 * MI), Resources(2000, 1024 * MI))
NEW = ContainerResources("app", Resources(120, 310 * MI), Resources(2000, 1024 * MI))
WANTED = {"app": NEW}
LIMITS = InPlaceLimits(max_pods_per_workload=1, max_pods_per_namespace=10, deferred_timeout_s=300)


def pod(
    name: str,
    wanted: ContainerResources = OLD,
    actual: ContainerResources | None = OLD,
    *,
    state: ResizeState = ResizeState.DONE,
    restart_on: frozenset[str] = frozenset(),
    oom_s: float | None = None,
    phase: str = "Running",
) -> PodInfo:
    container = PodContainer("app", wanted, actual, restart_on=restart_on, oom_killed_s=oom_s)
    return PodInfo(
        "ns", name, f"uid-{name}", (container,), resize_state=state, resize_message="why",
        labels={"app": "web"}, phase=phase,
    )  # fmt: skip


def plan(pods: list[PodInfo], **kw: Any) -> InPlacePlan:
    args: dict[str, Any] = {
        "since_s": T0, "now_s": T0 + 60, "limits": LIMITS, "budget": 10,
        "restarts_allowed": True,
    }  # fmt: skip
    args.update(kw)
    return plan_workload(pods, WANTED, **args)


def test_the_annotation_has_the_shape_the_webhook_reads() -> None:
    text = pod_resources_text("ns/p", T0, {"app": (NEW.requests, NEW.limits)})
    data = json.loads(text)
    assert data == {
        "policy": "ns/p",
        "time": "2027-01-15T08:00:00Z",
        "containers": {
            "app": {
                "requests": {"cpu": "120m", "memory": str(310 * MI)},
                "limits": {"cpu": "2000m", "memory": str(1024 * MI)},
            }
        },
    }
    parsed = parse_pod_resources(text)
    assert parsed is not None
    assert parsed.containers["app"] == (NEW.requests, NEW.limits)
    assert parse_pod_resources("{not json") is None
    assert parse_pod_resources(None) is None
    assert parse_pod_resources('{"containers": {}}') is None  # no policy: not ours


def test_sized_containers_take_the_annotation_where_it_names_one() -> None:
    side = ContainerResources("side", Resources(10, MI), Resources())
    parsed = parse_pod_resources(
        pod_resources_text("ns/p", T0, {"app": (NEW.requests, NEW.limits)})
    )
    assert sized_containers((OLD, side), parsed) == (NEW, side)
    assert sized_containers((OLD, side), None) == (OLD, side)


def test_one_pod_at_a_time_per_workload() -> None:
    p = plan([pod("a"), pod("b"), pod("c")])
    assert p.state == InPlaceState.RESIZING
    assert [x.name for x, _ in p.resize] == ["a"]
    # a is asked and not in force yet: nobody else now.
    p = plan([pod("a", NEW, OLD), pod("b"), pod("c")])
    assert p.resize == () and p.in_flight == 1
    # a is done: b next.
    p = plan([pod("a", NEW, NEW), pod("b"), pod("c")])
    assert [x.name for x, _ in p.resize] == ["b"]
    assert p.in_force == 1


def test_the_namespace_budget_bounds_new_resizes() -> None:
    wide = InPlaceLimits(max_pods_per_workload=5)
    assert len(plan([pod("a"), pod("b"), pod("c")], limits=wide, budget=2).resize) == 2
    assert plan([pod("a")], limits=wide, budget=0).resize == ()
    assert resizing_pods([pod("a", NEW, OLD), pod("b"), pod("c", state=ResizeState.DEFERRED)]) == 2


def test_done_when_every_running_pod_has_the_values_in_force() -> None:
    p = plan([pod("a", NEW, NEW), pod("b", NEW, NEW), pod("c", phase="Pending")])
    assert p.state == InPlaceState.DONE and p.pods == 2 and p.in_force == 2


@pytest.mark.parametrize(
    ("state", "now_s", "expected"),
    [
        (ResizeState.INFEASIBLE, T0 + 60, InPlaceState.INFEASIBLE),
        (ResizeState.ERROR, T0 + 60, InPlaceState.ERROR),
        (ResizeState.DEFERRED, T0 + 60, InPlaceState.RESIZING),  # the kubelet retries
        (ResizeState.DEFERRED, T0 + 301, InPlaceState.INFEASIBLE),  # past the bound
    ],
)
def test_the_kubelet_s_answer(state: ResizeState, now_s: float, expected: InPlaceState) -> None:
    p = plan([pod("a", NEW, OLD, state=state), pod("b")], now_s=now_s)
    assert p.state == expected
    if expected != InPlaceState.RESIZING:
        assert p.resize == ()
    else:  # a deferred pod is in flight: no second one for this workload
        assert p.resize == () and p.in_flight == 1


def test_an_infeasible_answer_to_someone_else_s_ask_is_not_ours() -> None:
    other = ContainerResources("app", Resources(30000, 1024 * MI), Resources(40000, 1024 * MI))
    p = plan([pod("a", other, OLD, state=ResizeState.INFEASIBLE)])
    assert p.state == InPlaceState.RESIZING
    assert [x.name for x, _ in p.resize] == ["a"]


def test_an_oom_kill_after_the_write_is_reported_one_before_is_not() -> None:
    assert plan([pod("a", NEW, NEW, oom_s=T0 + 30)]).state == InPlaceState.OOM_KILLED
    assert plan([pod("a", NEW, NEW, oom_s=T0 - 3600)]).state == InPlaceState.DONE
    # Not watched any more (since = +inf): never.
    p = plan([pod("a", NEW, NEW, oom_s=T0 + 30)], since_s=float("inf"))
    assert p.state == InPlaceState.DONE


def test_a_qos_change_is_refused() -> None:
    guaranteed = ContainerResources("app", Resources(1000, 1024 * MI), Resources(1000, 1024 * MI))
    p = plan([pod("a", guaranteed, guaranteed)])
    assert p.state == InPlaceState.REFUSED and "QoS" in p.message


def test_restarting_resizes_wait_for_the_rollout_limit() -> None:
    restarts = pod("a", restart_on=frozenset({"memory"}))
    held = plan([restarts], restarts_allowed=False)
    assert held.state == InPlaceState.RESTARTS_HELD
    go = plan([restarts], restarts_allowed=True)
    assert go.restarting and [x.name for x, _ in go.resize] == ["a"]
    plain = plan([pod("b")], restarts_allowed=False)
    assert not plain.restarting and len(plain.resize) == 1


def test_pods_not_yet_reported_or_terminating_are_left_for_later() -> None:
    unreported = pod("a", OLD, None)
    assert plan([unreported]).resize == ()
    body = {
        "metadata": {"name": "x", "namespace": "ns", "deletionTimestamp": "2027-01-01T00:00:00Z",
                     "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "resources": {},
            "lastState": {"terminated": {"reason": "OOMKilled",
                                         "finishedAt": "2027-01-15T08:00:30Z"}}}]},
    }  # fmt: skip
    info = pod_info(body)
    assert info.terminating
    assert info.containers[0].oom_killed_s == T0 + 30
    assert plan([info]).pods == 0
    assert pods_of([info], {"app": "web"}) == [info]
    assert pods_of([info], {}) == []
