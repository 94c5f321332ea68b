"""Moving an HPA's utilization target against the real API server (issue 16 groundwork):
the JSON patch tests the target it starts from, so a concurrent edit fails it whole; the
previous targets are recorded on the HPA; a dry run changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.actuation.hpa import HpaChangedError, move_targets, read_hpa
from rightsizer.engine.recommendation import Resources
from rightsizer.model.hpa import HPA_RECORD_ANNOTATION, compensate, hpa_info, revert_changes

pytestmark = pytest.mark.k8s


def hpa_body(annotations: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {
                    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "ContainerResource", "containerResource": {
                    "name": "memory", "container": "app",
                    "target": {"type": "Utilization", "averageUtilization": 70}}},
            ],
        },
    }  # fmt: skip


def targets(hpa: dict[str, Any]) -> list[int]:
    return [
        (m.get("resource") or m.get("containerResource"))["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    ]


@pytest.mark.parametrize("annotations", [None, {"team": "shop"}], ids=["bare", "annotated"])
def test_targets_move_with_the_requests_and_back(
    k8s_api: ApiClient, namespace: str, annotations: dict[str, str] | None
) -> None:
    client.AutoscalingV2Api(k8s_api).create_namespaced_horizontal_pod_autoscaler(
        namespace, hpa_body(annotations)
    )
    info = hpa_info(read_hpa(k8s_api, namespace, "web"))
    before = {"app": Resources(1000, 1024 * 2**20), "proxy": Resources(250, 128 * 2**20)}
    after = {"app": Resources(500, 896 * 2**20), "proxy": Resources(250, 128 * 2**20)}
    plan = compensate(info, before, after)
    # pod CPU 1250m → 750m: 60 % → 100 %; the app's memory 1024 → 896 MiB: 70 % → 80 %
    assert [(c.before_percent, c.after_percent) for c in plan.changes] == [(60, 100), (70, 80)]

    dry = move_targets(k8s_api, info, plan.changes, "2026-11-30T12:00:00Z", dry_run=True)
    assert targets(dry) == [100, 80]
    assert targets(read_hpa(k8s_api, namespace, "web")) == [60, 70]  # nothing stored

    stored = move_targets(k8s_api, info, plan.changes, "2026-11-30T12:00:00Z")
    assert targets(stored) == [100, 80]
    record = json.loads(stored["metadata"]["annotations"][HPA_RECORD_ANNOTATION])
    assert record["targets"] == {"0": [60, 100], "1": [70, 80]}
    if annotations:
        assert stored["metadata"]["annotations"]["team"] == "shop"

    # the same change again starts from a target that is no longer there: refused whole
    with pytest.raises(HpaChangedError):
        move_targets(k8s_api, info, plan.changes, "2026-11-30T12:05:00Z")
    assert targets(read_hpa(k8s_api, namespace, "web")) == [100, 80]

    back = move_targets(
        k8s_api, hpa_info(read_hpa(k8s_api, namespace, "web")), revert_changes(plan.changes),
        "2026-11-30T12:10:00Z",
    )  # fmt: skip
    assert targets(back) == [60, 70]
