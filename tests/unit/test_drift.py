"""Drift on the recommendation objects (``status/drift.py``): the template's values, the
values applied to pods, and how many pods run each set of values."""

from __future__ import annotations

import json
from typing import Any

from rightsizer import names
from rightsizer.model.workloads import workload_info
from rightsizer.status.drift import drift
from rightsizer.status.recommendation import PolicyRef, plan_writes, seen, status_changed

TEMPLATE = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
APPLIED = {"requests": {"cpu": "120m", "memory": "310Mi"}}


def deployment(name: str = "web", *, sized: bool = True) -> Any:
    annotations = {}
    if sized:
        annotations[names.POD_RESOURCES_ANNOTATION] = json.dumps(
            {"policy": "p", "time": "2026-11-30T20:00:00Z", "containers": {"app": APPLIED}}
        )
    return workload_info("Deployment", {
        "metadata": {"namespace": "shop", "name": name, "annotations": annotations},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}}, "template": {
            "spec": {"containers": [{"name": "app", "resources": TEMPLATE}]}}},
    })  # fmt: skip


def pod(owner: str, resources: dict[str, Any], actual: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {
        "metadata": {"namespace": "shop", "name": f"{owner}-abc12-{id(resources)}",
                     "labels": {"pod-template-hash": "abc12"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": f"{owner}-abc12", "controller": True}]},
        "spec": {"containers": [{"name": "app", "resources": resources}]},
        "status": {},
    }  # fmt: skip
    if actual is not None:
        body["status"]["containerStatuses"] = [{"name": "app", "resources": actual}]
    return body


SIZED = {"requests": {"cpu": "120m", "memory": "310Mi"}, "limits": {"memory": "1Gi"}}


def test_pods_are_counted_per_set_of_values_in_force() -> None:
    pods = [
        pod("web", SIZED),
        pod("web", SIZED, actual=SIZED),
        # Resized in spec, the kubelet not there yet: what is in force counts.
        pod("web", SIZED, actual=TEMPLATE),
        pod("other", SIZED),  # another workload's
    ]
    [(ref, containers)] = drift([deployment(), deployment("plain", sized=False)], pods).items()
    assert ref == "Deployment/web"
    entry = containers["app"]
    assert entry["template"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                 "limits": {"memory": "1Gi"}}  # fmt: skip
    assert entry["applied"] == {"requests": {"cpu": "120m", "memory": "310Mi"}}
    assert entry["running"] == [
        {**SIZED, "pods": 2, "matches": "Applied"},
        {**TEMPLATE, "pods": 1, "matches": "Template"},
    ]


def test_no_pod_list_means_no_running_counts_and_unsized_workloads_show_none() -> None:
    assert "running" not in drift([deployment()], None)["Deployment/web"]["app"]
    assert drift([deployment("plain", sized=False)], []) == {}
    # Values neither applied nor the template's (a pod edited by hand).
    odd = {"requests": {"cpu": "300m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    [entry] = drift([deployment()], [pod("web", odd)])["Deployment/web"]["app"]["running"]
    assert entry["matches"] == "Neither" and entry["pods"] == 1


def test_a_change_in_running_counts_is_a_change_a_person_sees() -> None:
    before = {"containers": [{"name": "app", "exact": {}, "drift": {"running": [{"pods": 1}]}}]}
    after = {"containers": [{"name": "app", "exact": {}, "drift": {"running": [{"pods": 2}]}}]}
    kept = seen({"metadata": {"name": "x"}, "status": before}).status
    assert status_changed(kept, after, 10.0)
    assert not status_changed(kept, before, 10.0)
    # Objects written before drift existed (none kept) stay unchanged without drift.
    old = seen({"metadata": {"name": "x"}, "status": {"containers": [{"name": "app"}]}}).status
    old.pop("drift")
    assert not status_changed(old, {"containers": [{"name": "app"}]}, 10.0)
    assert plan_writes(PolicyRef("shop", "p", "u"), [], [], 10.0) == []
