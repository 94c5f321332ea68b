"""``hpaResources: Compensate`` in Apply mode's decision and pass (issue 16 items 1–2).

The decision is pure and tested as such. The pass is tested with fake ports for the one
thing a real server cannot produce on demand at a chosen moment: an HPA whose target
another writer moves between our read and our patch (the real adapter's answer to that is
tested in tests/integration/test_hpa_targets.py, the whole path end to end in
tests/integration/test_hpa_e2e.py)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from rightsizer.actuation.hpa import HpaChangedError
from rightsizer.actuation.resources import ResourcesWrite, WriteRejectedError
from rightsizer.controller.autoapply import ApplyPorts, apply_pass
from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.apply import ApplySettings, applied_record, decide
from rightsizer.guardrails.record import parse_record, record_json, revert_record
from rightsizer.model.hpa import HpaInfo, TargetChange, UtilizationBounds, hpa_info
from rightsizer.model.workloads import ContainerResources
from rightsizer.names import RECORD_ANNOTATION
from rightsizer.policy.spec import PolicyError, parse_policy_spec
from tests.unit.test_guardrails_apply import MI, NOW, applied, ctx, opted_in, row, workload

COMPENSATE = ApplySettings(hpa_resources="Compensate")


def hpa(percent: int = 60, *, kind: str = "Resource", target: str = "Utilization") -> HpaInfo:
    body = {"name": "cpu", "target": {"type": target}}
    if target == "Utilization":
        body["target"]["averageUtilization"] = percent  # type: ignore[index]
    else:
        body["target"]["averageValue"] = "300m"  # type: ignore[index]
    if kind == "ContainerResource":
        body["container"] = "app"
    field = "resource" if kind == "Resource" else "containerResource"
    return hpa_info({
        "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "7",
                     "annotations": {}},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2,
                 "maxReplicas": 8, "metrics": [{"type": kind, field: body}]},
    })  # fmt: skip


def compensating(h: HpaInfo, **settings: Any) -> Any:
    return ctx(hpa_resources=h.scaled_resources, hpas=(h,),
               settings=replace(COMPENSATE, **settings))  # fmt: skip


def test_a_lowered_cpu_request_moves_the_hpa_target_to_keep_the_scale_point() -> None:
    d = decide(workload(), [row()], compensating(hpa(60)))
    assert d.writes
    (c,) = d.changes
    assert c.requests.cpu_millicores == 500  # 1000m → 500m (one bounded step)
    ((plan),) = d.hpa
    (change,) = plan.changes
    assert (change.before_percent, change.after_percent) == (60, 120)
    assert change.after_percent * c.requests.cpu_millicores == 60 * 1000  # same scale point
    record = applied_record(d, compensating(hpa(60)))
    (target,) = record.hpa
    assert (target.hpa, target.resource, target.before_percent, target.after_percent) == (
        "web", "cpu", 60, 120)  # fmt: skip
    again = parse_record(json.loads(json.dumps(record_json(record))))
    assert again == record
    assert revert_record(record, "failed", NOW).hpa[0].after_percent == 60


def test_skip_and_allow_move_no_hpa_target() -> None:
    h = hpa(60)
    skip = decide(workload(), [row()], ctx(hpa_resources=h.scaled_resources, hpas=(h,)))
    assert skip.changes[0].requests.cpu_millicores == 1000 and not skip.hpa
    allow = decide(
        workload(),
        [row()],
        ctx(
            hpa_resources=h.scaled_resources,
            hpas=(h,),
            settings=ApplySettings(hpa_resources="Allow"),
        ),
    )
    assert allow.changes[0].requests.cpu_millicores == 500 and not allow.hpa


def test_the_pod_level_metric_is_compensated_on_the_sum_of_the_containers() -> None:
    sidecar = ContainerResources("sidecar", Resources(200, 64 * MI), Resources())
    w = workload()
    w = replace(w, containers=(*w.containers, sidecar))
    d = decide(w, [row()], compensating(hpa(60)))
    (change,) = d.hpa[0].changes
    assert (change.request_before, change.request_after) == (1200, 700)
    assert change.after_percent == round(60 * 1200 / 700)  # 103
    one = decide(w, [row()], compensating(hpa(60, kind="ContainerResource")))
    assert one.hpa[0].changes[0].after_percent == 120  # the container's own request


def test_a_target_out_of_bounds_holds_that_resource_with_its_own_reason() -> None:
    d = decide(workload(), [row()], compensating(hpa(150)))  # 150 → 300 > 200
    (c,) = d.changes
    assert c.requests.cpu_millicores == 1000 and c.limits.cpu_millicores == 2000
    assert c.requests.memory_bytes == 512 * MI  # memory still written
    assert not d.hpa
    assert any("HpaTargetOutOfBounds" in n and "300%" in n for n in d.notes), d.notes
    wider = decide(workload(), [row()], compensating(hpa(150), hpa_bounds=UtilizationBounds(
        10, 400)))  # fmt: skip
    assert wider.hpa[0].changes[0].after_percent == 300


def test_only_a_held_resource_to_change_holds_the_workload_as_out_of_bounds() -> None:
    only_cpu = row(mem=1024 * MI, lim_mem=1024 * MI, peak=100 * MI)
    d = decide(workload(), [only_cpu], compensating(hpa(150)))
    assert d.hold is not None and d.hold.reason == "HpaTargetOutOfBounds"
    assert "150%→300%" in d.hold.message


def test_an_average_value_target_needs_no_change_and_says_so() -> None:
    d = decide(workload(), [row()], compensating(hpa(target="AverageValue")))
    assert d.changes[0].requests.cpu_millicores == 500 and not d.hpa
    assert any("AverageValue" in n and "no change needed" in n for n in d.notes), d.notes


def test_the_policy_reads_compensate_and_its_bounds() -> None:
    spec = {"targets": {"kinds": ["Deployment"]}, "update": {
        "mode": "Apply", "hpaResources": "Compensate",
        "hpaUtilizationBounds": {"minPercent": 20, "maxPercent": 150}}}  # fmt: skip
    s = parse_policy_spec(spec).update.settings
    assert s.hpa_resources == "Compensate" and s.hpa_bounds == UtilizationBounds(20, 150)
    assert parse_policy_spec({"targets": {"kinds": ["Deployment"]}}).update.settings == (
        ApplySettings())  # fmt: skip
    assert ApplySettings().hpa_resources == "Skip"
    assert ApplySettings().hpa_bounds == UtilizationBounds(10, 200)
    with pytest.raises(PolicyError):
        parse_policy_spec(
            {**spec, "update": {"hpaUtilizationBounds": {"minPercent": 200, "maxPercent": 100}}}
        )
    with pytest.raises(PolicyError):
        parse_policy_spec({**spec, "update": {"hpaResources": "Sometimes"}})


class FakeHpa:
    """The HPA as a server would keep it, with its ``test`` ops: a move starting from a
    target it does not have is refused as ``HpaChangedError``."""

    def __init__(self, percent: int) -> None:
        self.percent = percent
        self.calls: list[tuple[str, int, int]] = []
        self.reads = 0
        self.moved_by_someone: int | None = None

    def info(self) -> HpaInfo:
        return hpa(self.percent)

    def read(self, namespace: str, name: str) -> HpaInfo:
        self.reads += 1
        return self.info()

    def move(self, h: HpaInfo, changes: Sequence[TargetChange], dry_run: bool) -> None:
        if self.moved_by_someone is not None:
            self.percent, self.moved_by_someone = self.moved_by_someone, None
        for c in changes:
            self.calls.append(("dry-run" if dry_run else "write", c.before_percent,
                               c.after_percent))  # fmt: skip
            if c.before_percent != self.percent:
                raise HpaChangedError(f"target is {self.percent}%")
        if not dry_run:
            for c in changes:
                self.percent = c.after_percent


def run(fake: FakeHpa, write: Any, info: Any = None, **kw: Any) -> Any:
    info = info or workload()
    return apply_pass(
        opted_in(rows=[row()], workloads=[info], hpas=[fake.info()],
                 settings=COMPENSATE, **kw),
        ports=ApplyPorts(write=write, pods=lambda ns: [], hpa_read=fake.read,
                         hpa_move=fake.move),
        pod_checks={},
    )  # fmt: skip


def test_the_pass_moves_the_hpa_dry_run_first_then_writes_the_workload() -> None:
    fake = FakeHpa(60)
    order: list[str] = []

    def write(plan: ResourcesWrite, redecide: Any) -> tuple[ResourcesWrite, int]:
        order.append(f"workload after HPA at {fake.percent}%")
        return plan, 2

    result = run(fake, write)
    assert fake.calls == [("dry-run", 60, 120), ("write", 60, 120)]
    assert order == ["workload after HPA at 120%"]
    action = result.last_actions["Deployment/web"]
    assert action["hpa"] == [{"name": "web", "metric": 0, "resource": "cpu",
                              "previous": 60, "applied": 120}]  # fmt: skip
    events = {e.reason: e for e in result.events}
    assert (events["HpaTargetMoved"].target or {})["kind"] == "HorizontalPodAutoscaler"
    assert "60%→120%" in events["HpaTargetMoved"].message
    assert "60%→120%" in events["ResourcesApplied"].message
    assert "target 60%→120%" in result.states["Deployment/web"]["message"]


def test_a_target_moved_meanwhile_is_read_again_and_decided_again() -> None:
    fake = FakeHpa(60)
    fake.moved_by_someone = 70  # someone sets 70 % between our read and our patch
    written: list[ResourcesWrite] = []

    def write(plan: ResourcesWrite, redecide: Any) -> tuple[ResourcesWrite, int]:
        written.append(plan)
        return plan, 2

    result = run(fake, write)
    assert fake.reads == 1
    assert fake.calls[-1] == ("write", 70, 140) and fake.percent == 140
    (plan,) = written
    assert plan.record["hpa"][0]["previous"] == 70
    assert result.states["Deployment/web"]["state"] == "Applied"


def test_a_refused_workload_write_puts_the_hpa_target_back() -> None:
    fake = FakeHpa(60)

    def write(plan: ResourcesWrite, redecide: Any) -> Any:
        raise WriteRejectedError("HTTP 422: admission said no")

    result = run(fake, write)
    assert fake.calls[-1] == ("write", 120, 60) and fake.percent == 60
    assert result.states["Deployment/web"]["reason"] == "ApplyRejected"


def test_a_refused_hpa_write_writes_nothing_to_the_workload() -> None:
    fake = FakeHpa(60)

    def move(h: HpaInfo, changes: Sequence[TargetChange], dry_run: bool) -> None:
        raise WriteRejectedError("HTTP 403: forbidden")

    def write(plan: ResourcesWrite, redecide: Any) -> Any:
        raise AssertionError("nothing may be written")

    result = apply_pass(
        opted_in(rows=[row()], workloads=[workload()], hpas=[fake.info()], settings=COMPENSATE),
        ports=ApplyPorts(write=write, pods=lambda ns: [], hpa_read=fake.read, hpa_move=move),
        pod_checks={},
    )
    assert result.states["Deployment/web"]["reason"] == "ApplyRejected"
    assert "HPA" in result.states["Deployment/web"]["message"]


def test_a_failed_rollout_puts_the_hpa_target_back_with_the_requests() -> None:
    fake = FakeHpa(120)
    record = replace(applied(NOW - 120), hpa=applied_record(
        decide(workload(), [row()], compensating(hpa(60))), ctx()).hpa)  # fmt: skip
    info = workload(annotations={RECORD_ANNOTATION: json.dumps(record_json(record))},
                    selector={"app": "web"})  # fmt: skip
    oom = {"name": "app", "lastState": {"terminated": {"reason": "OOMKilled"}}}
    pods = [{"metadata": {"name": "web-new", "labels": {"app": "web"},
                          "creationTimestamp": "2027-01-15T08:00:00Z"},
             "status": {"containerStatuses": [oom]}}]  # fmt: skip
    writes: list[ResourcesWrite] = []

    def write(plan: ResourcesWrite, redecide: Any) -> tuple[ResourcesWrite, int]:
        writes.append(plan)
        return plan, 2

    result = apply_pass(
        opted_in(rows=[row()], workloads=[info], hpas=[fake.info()], settings=COMPENSATE),
        ports=ApplyPorts(write=write, pods=lambda ns: pods, hpa_read=fake.read, hpa_move=fake.move),
        pod_checks={},
    )  # fmt: skip
    assert writes[0].record["state"] == "Reverted"
    assert fake.calls == [("write", 120, 60)] and fake.percent == 60
    assert result.last_actions["Deployment/web"]["hpa"][0] == {
        "name": "web",
        "metric": 0,
        "resource": "cpu",
        "previous": 120,
        "applied": 60,
    }
    assert any(e.reason == "HpaTargetMoved" and "put back" in e.message for e in result.events)


def hpa_replicas(replicas: int, usage_per_pod: float, request: int, target: int) -> int:
    """The HPA controller's rule: ceil(replicas × utilization ÷ target), unchanged within
    its 10 % tolerance, between minReplicas 2 and maxReplicas 20."""
    ratio = usage_per_pod / request * 100 / target
    if abs(ratio - 1) <= 0.1:
        return replicas
    return min(20, max(2, math.ceil(replicas * ratio)))


def closed_loop(choice: str, rounds: int = 6) -> list[tuple[int, int, int]]:
    """A fixed total load (1200m) shared by the HPA's replicas; each round the operator
    recommends from the per-pod usage as it is (× 1.15, a stand-in for the strategy's
    percentile and headroom), Apply mode decides, the HPA settles. (request, target,
    replicas) after each round."""
    load, request, target, replicas = 1200.0, 1000, 60, 2
    out = []
    for _ in range(rounds):
        per_pod = load / replicas
        w = workload(containers=(ContainerResources(
            "app", Resources(request, 1024 * MI), Resources(None, 1024 * MI)),))  # fmt: skip
        h = hpa(target)
        recommended = row(cpu=int(per_pod * 1.15), mem=1024 * MI, lim_cpu=None,
                          lim_mem=1024 * MI, peak=100 * MI)  # fmt: skip
        settings = replace(COMPENSATE, hpa_resources=choice)
        d = decide(w, [recommended], ctx(hpa_resources=h.scaled_resources, hpas=(h,),
                                         settings=settings))  # fmt: skip
        if d.writes:
            request = d.changes[0].requests.cpu_millicores or request
            target = d.hpa[0].changes[0].after_percent if d.hpa else target
        for _ in range(10):  # the HPA settles
            replicas = hpa_replicas(replicas, load / replicas, request, target)
        out.append((request, target, replicas))
    return out


def test_per_pod_usage_is_a_fixed_point_with_compensation_and_ratchets_without() -> None:
    """Item 3's rule (docs/design.md): per-pod usage is used as it is. With the scale point
    kept, one write and then nothing moves; with ``Allow`` each lowered request adds
    replicas, which lowers per-pod usage, which lowers the next recommendation."""
    kept = closed_loop("Compensate")
    print("Compensate:", kept)
    assert kept[0] == (690, 87, 2)  # 1000m → 690m, 60 % → 87 %, still 2 replicas
    assert all(r == kept[0] for r in kept)  # a fixed point
    ratchet = closed_loop("Allow")
    print("Allow:", ratchet)
    requests = [r for r, _, _ in ratchet]
    assert requests == sorted(requests, reverse=True) and requests[-1] < kept[0][0] / 3
    assert ratchet[-1][2] >= 3 * kept[0][2]


@pytest.mark.parametrize("conflict", [False, True])
def test_in_place_moves_the_hpa_with_the_annotation_and_puts_it_back_on_a_conflict(
    conflict: bool,
) -> None:
    """The in-place methods: the HPA target moves right before the annotation write that
    starts the resizes (the record carries it); a 409 on that write puts it back."""
    from rightsizer.actuation.kubernetes import AnnotateConflictError
    from rightsizer.model.inplace import UpdateMethod

    fake = FakeHpa(60)
    annotated: list[dict[str, Any]] = []

    def annotate(w: Any, annotations: Any, rv: str) -> None:
        annotated.append({"hpa at": fake.percent, **annotations})
        if conflict:
            raise AnnotateConflictError("409")

    def write(plan: Any, redecide: Any) -> Any:
        raise AssertionError("the template is not written in place")

    result = apply_pass(
        opted_in(rows=[row()], workloads=[workload()], hpas=[fake.info()], settings=COMPENSATE,
                 method=UpdateMethod.IN_PLACE, resize_served=True),
        ports=ApplyPorts(write=write, pods=lambda ns: [], annotate=annotate,
                         hpa_read=fake.read, hpa_move=fake.move),
        pod_checks={},
    )  # fmt: skip
    (written,) = annotated
    assert written["hpa at"] == 120  # the HPA first
    record = json.loads(written[RECORD_ANNOTATION])
    assert record["method"] == "InPlace" and record["hpa"][0]["applied"] == 120
    if conflict:
        assert fake.calls[-1] == ("write", 120, 60) and fake.percent == 60
        assert "Deployment/web" not in result.last_actions
    else:
        assert fake.percent == 120
        assert result.last_actions["Deployment/web"]["hpa"][0]["previous"] == 60
