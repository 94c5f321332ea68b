"""Apply mode's in-place methods where the sandbox cannot show them: a cluster that does
not serve ``pods/resize`` (the sandbox's v1.36 API server always does, so the pass is run
with ports that record what it would write — the only stand-ins here), the policy's
condition, the annotation after a write or a revert, and the spec's method."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rightsizer.controller.autoapply import (
    ApplyPorts,
    apply_pass,
    in_place_condition,
    pod_resources_after,
)
from rightsizer.engine.recommendation import Resources
from rightsizer.guardrails.record import parse_record, record_json
from rightsizer.model.inplace import UpdateMethod, parse_pod_resources, pod_resources_text
from rightsizer.names import POD_RESOURCES_ANNOTATION
from rightsizer.policy.spec import PolicyError, parse_policy_spec
from tests.unit.test_guardrails_apply import MI, NOW, POLICY, applied, opted_in, row, workload

TEMPLATE = (Resources(1000, 1024 * MI), Resources(2000, 1024 * MI))
NEW = (Resources(500, 512 * MI), Resources(2000, 1024 * MI))


def test_in_place_condition() -> None:
    assert in_place_condition(UpdateMethod.ROLLOUT, False) is None
    served = in_place_condition(UpdateMethod.IN_PLACE, True)
    assert served is not None and served.status is True and served.reason == "Served"
    held = in_place_condition(UpdateMethod.IN_PLACE, False)
    assert held is not None and held.status is False and held.reason == "NotServed"
    falls = in_place_condition(UpdateMethod.IN_PLACE_OR_ROLLOUT, False)
    assert falls is not None and falls.status is False and falls.reason == "FallingBackToRollout"


def test_the_annotation_is_removed_when_it_would_only_repeat_the_template() -> None:
    w = workload()
    text = pod_resources_after(w, POLICY, NOW, {"app": NEW})
    assert text is not None
    parsed = parse_pod_resources(text)
    assert parsed is not None and parsed.containers == {"app": NEW}
    sized = workload(annotations={POD_RESOURCES_ANNOTATION: text})
    assert pod_resources_after(sized, POLICY, NOW, {"app": TEMPLATE}) is None  # reverted


def test_an_annotation_naming_other_containers_keeps_them() -> None:
    other = pod_resources_text(POLICY, NOW, {"side": (Resources(10, MI), Resources())})
    sized = workload(annotations={POD_RESOURCES_ANNOTATION: other})
    parsed = parse_pod_resources(pod_resources_after(sized, POLICY, NOW, {"app": NEW}))
    assert parsed is not None and set(parsed.containers) == {"app", "side"}


@pytest.mark.parametrize("method", [UpdateMethod.IN_PLACE, UpdateMethod.IN_PLACE_OR_ROLLOUT])
def test_without_pods_resize_in_place_holds_and_in_place_or_rollout_rolls_out(
    method: UpdateMethod,
) -> None:
    written: list[Any] = []

    def write(plan: Any, redecide: Any) -> Any:
        written.append(plan)
        return plan, 2

    def never(*args: Any) -> None:
        raise AssertionError("no in-place write without pods/resize")

    result = apply_pass(
        opted_in(rows=[row()], workloads=[workload()], method=method, resize_served=False),
        ports=ApplyPorts(write=write, pods=lambda ns: [], annotate=never, resize=never),
        pod_checks={},
    )
    condition = result.conditions[0]
    assert condition.type == "InPlaceResize" and condition.status is False
    entry = result.states["Deployment/web"]
    if method == UpdateMethod.IN_PLACE:
        assert entry["reason"] == "InPlaceUnavailable" and written == []
        assert any(e.reason == "InPlaceUnavailable" for e in result.events)
    else:
        assert entry["state"] == "Applied" and len(written) == 1
        assert result.last_actions["Deployment/web"]["method"] == "Rollout"


def test_the_record_carries_its_method_and_old_records_read_as_rollouts() -> None:
    from dataclasses import replace

    rec = replace(applied(NOW), method="InPlace")
    data = record_json(rec)
    assert data["method"] == "InPlace"
    assert parse_record(json.loads(json.dumps(data))) == rec
    old = record_json(applied(NOW))
    assert "method" not in old  # byte-identical to records written before the field
    parsed = parse_record(old)
    assert parsed is not None and parsed.method == "Rollout"


def test_the_spec_s_method() -> None:
    base: dict[str, Any] = {"source": {"metricsServer": {"enabled": True}}}
    assert parse_policy_spec(base).update.method == UpdateMethod.ROLLOUT
    in_place = {"maxPodsPerWorkload": 3, "deferredTimeout": "2m"}
    update = {"mode": "Apply", "method": "InPlace", "inPlace": in_place}
    spec = parse_policy_spec({**base, "update": update})
    assert spec.update.method == UpdateMethod.IN_PLACE
    assert spec.update.in_place.max_pods_per_workload == 3
    assert spec.update.in_place.deferred_timeout_s == 120
    with pytest.raises(PolicyError, match=r"spec.update.method"):
        parse_policy_spec({**base, "update": {"method": "Recreate"}})
