"""In-place resize decisions (pure): QoS class, resize policies, pending resizes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsizer.engine.recommendation import Resources
from rightsizer.model.pods import (
    PodContainer,
    PodInfo,
    QosClass,
    ResizeState,
    plan_resize,
    pod_info,
    qos_class,
    resize_patch,
)
from rightsizer.model.workloads import ContainerResources

MI = 2**20


def res(cpu: int | None = None, mem: int | None = None) -> Resources:
    return Resources(cpu, None if mem is None else mem * MI)


UNSET = Resources()


def cr(name: str, requests: Resources, limits: Resources = UNSET) -> ContainerResources:
    return ContainerResources(name, requests, limits)


def pod(*containers: ContainerResources, restart_on: frozenset[str] = frozenset()) -> PodInfo:
    return PodInfo(
        "ns", "p", "uid", tuple(PodContainer(c.name, c, restart_on=restart_on) for c in containers)
    )


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        ([cr("a", res(), res())], QosClass.BEST_EFFORT),
        ([cr("a", res(100, 64), res(100, 64))], QosClass.GUARANTEED),
        ([cr("a", res(), res(100, 64))], QosClass.GUARANTEED),  # requests default to limits
        ([cr("a", res(100, 64), res(200, 64))], QosClass.BURSTABLE),
        ([cr("a", res(100))], QosClass.BURSTABLE),
        ([cr("a", res(100, 64), res(100, 64)), cr("b", res(), res())], QosClass.BURSTABLE),
    ],
)
def test_qos_class_follows_the_api_servers_rules(
    containers: list[ContainerResources], expected: QosClass
) -> None:
    assert qos_class(containers) == expected


def test_a_burstable_pod_is_resized_in_place() -> None:
    p = pod(cr("app", res(500, 512), res(None, 1024)))
    decision = plan_resize(p, {"app": cr("app", res(120, 300), res(None, 600))})
    assert decision.needed and not decision.restarts
    assert decision.resize == (cr("app", res(120, 300), res(None, 600)),)
    assert resize_patch(decision.resize) == {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "resources": {
                        "requests": {"cpu": "120m", "memory": str(300 * MI)},
                        "limits": {"memory": str(600 * MI)},
                    },
                }
            ]
        }
    }


def test_a_resize_that_would_change_the_qos_class_is_refused() -> None:
    guaranteed = pod(cr("app", res(500, 512), res(500, 512)))
    decision = plan_resize(guaranteed, {"app": cr("app", res(120, 300))})
    assert not decision.needed
    assert "from Guaranteed to Burstable" in decision.refused


def test_a_guaranteed_pod_stays_guaranteed_when_requests_and_limits_move_together() -> None:
    guaranteed = pod(cr("app", res(500, 512), res(500, 512)))
    decision = plan_resize(guaranteed, {"app": cr("app", res(200, 300), res(200, 300))})
    assert decision.needed


def test_restart_policies_are_reported() -> None:
    p = pod(cr("app", res(500, 512)), restart_on=frozenset({"memory"}))
    assert plan_resize(p, {"app": cr("app", res(200))}).restarts == ()
    assert plan_resize(p, {"app": cr("app", res(None, 300))}).restarts == ("app",)


def test_nothing_to_do_and_pending_resizes() -> None:
    p = pod(cr("app", res(500, 512)))
    assert plan_resize(p, {"app": cr("app", res(500, 512))}).resize == ()
    assert plan_resize(p, {"other": cr("other", res(1))}).resize == ()
    for state in (ResizeState.DEFERRED, ResizeState.IN_PROGRESS):
        busy = PodInfo("ns", "p", "u", p.containers, resize_state=state)
        assert state.value in plan_resize(busy, {"app": cr("app", res(100))}).refused


def test_a_request_above_its_limit_is_refused() -> None:
    p = pod(cr("app", res(500, 512), res(None, 600)))
    assert "exceed the limit" in plan_resize(p, {"app": cr("app", res(None, 700))}).refused


def body(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "shop",
            "name": "web-1",
            "uid": "u1",
            "ownerReferences": [{"uid": "rs1"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                    "resizePolicy": [
                        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
                        {"resourceName": "memory", "restartPolicy": "RestartContainer"},
                    ],
                }
            ]
        },
        "status": {
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 2,
                    "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
                }
            ],
            **status,
        },
    }


def test_pod_info_reads_what_resize_needs() -> None:
    info = pod_info(body())
    (c,) = info.containers
    assert c.wanted == cr("app", Resources(250, 256 * MI))
    assert c.actual == cr("app", Resources(500, 256 * MI))
    assert c.restart_on == frozenset({"memory"}) and c.restart_count == 2
    assert info.qos_class == QosClass.BURSTABLE and info.owner_uids == ("rs1",)
    assert info.resize_state == ResizeState.DONE


@pytest.mark.parametrize(
    ("condition", "state"),
    [
        ({"type": "PodResizePending", "reason": "Infeasible"}, ResizeState.INFEASIBLE),
        ({"type": "PodResizePending", "reason": "Deferred"}, ResizeState.DEFERRED),
        ({"type": "PodResizeInProgress"}, ResizeState.IN_PROGRESS),
        ({"type": "PodResizeInProgress", "reason": "Error"}, ResizeState.ERROR),
        ({"type": "Ready"}, ResizeState.DONE),
    ],
)
def test_resize_conditions(condition: dict[str, str], state: ResizeState) -> None:
    info = pod_info(body(conditions=[{**condition, "status": "True", "message": "m"}]))
    assert info.resize_state == state


values = st.one_of(st.none(), st.integers(1, 4000))


@given(
    st.lists(st.tuples(values, values, values, values), min_size=1, max_size=4),
    st.lists(st.tuples(values, values, values, values), min_size=1, max_size=4),
)
def test_an_allowed_resize_never_changes_the_qos_class(
    before: list[tuple[int | None, ...]], after: list[tuple[int | None, ...]]
) -> None:
    def build(rows: list[tuple[int | None, ...]]) -> list[ContainerResources]:
        return [
            cr(f"c{i}", Resources(a, b), Resources(c, d)) for i, (a, b, c, d) in enumerate(rows)
        ]

    current = build(before)
    wanted = {c.name: c for c in build(after)}
    decision = plan_resize(pod(*current), wanted)
    if decision.needed:
        changed = {c.name: c for c in decision.resize}
        result = [changed.get(c.name, c) for c in current]
        assert qos_class(result) == qos_class(current)
