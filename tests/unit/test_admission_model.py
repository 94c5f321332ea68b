"""The admission webhook's decision (``model/admission.py``): which workload owns a pod,
what it changes, and when it keeps the template's values."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from rightsizer import names
from rightsizer.engine.policy import LimitRangeItem
from rightsizer.engine.recommendation import Resources
from rightsizer.model.admission import (
    Owner,
    PodResourcesError,
    WorkloadFacts,
    decide,
    owner_of,
    parse_pod_resources,
    policy_modes,
)
from rightsizer.model.inplace import pod_resources_text
from rightsizer.model.workloads import PolicyInfo

#: As the in-place path names a policy in pod-resources: namespace/name.
POLICY = "shop/sizer"


def pod(*containers: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels if labels is not None else {"app": "web"}},
        "spec": {"containers": list(containers)},
    }


def container(name: str, requests: dict[str, str] | None = None,
              limits: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"name": name, "image": "x", "resources": resources}


def facts(containers: dict[str, Any], mode: str | None = "Apply", **extra: str) -> WorkloadFacts:
    value = json.dumps({"policy": POLICY, "time": "2026-11-30T20:00:00Z", "containers": containers})
    return WorkloadFacts(
        annotations={names.POD_RESOURCES_ANNOTATION: value, **extra},
        selector={"app": "web"},
        policy_modes={} if mode is None else {POLICY: mode},
    )


def test_owner_of_a_deployment_pod_is_the_replicaset_name_less_its_hash() -> None:
    meta = {
        "labels": {"pod-template-hash": "7d4b9c"},
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-api-7d4b9c",
             "controller": True},
        ],
    }  # fmt: skip
    assert owner_of(meta) == Owner("Deployment", "web-api")


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_owner_of_statefulset_and_daemonset_pods_is_direct(kind: str) -> None:
    meta = {"ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": "db",
                                 "controller": True}]}  # fmt: skip
    assert owner_of(meta) == Owner(kind, "db")


@pytest.mark.parametrize(
    "meta",
    [
        {},  # a bare pod
        {
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "controller": True}
            ]
        },
        # A ReplicaSet without the Deployment's hash label: one of its own.
        {
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs-1", "controller": True}
            ]
        },
        # The hash is not the name's suffix.
        {
            "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-xyz",
                    "controller": True,
                }
            ],
        },
        # Not the controller.
        {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}]},
    ],
)
def test_no_owner_for_pods_that_are_not_a_workloads(meta: dict[str, Any]) -> None:
    assert owner_of(meta) is None


def test_the_annotation_values_are_set_and_the_change_is_noted() -> None:
    given = pod(container("app", {"cpu": "500m", "memory": "1Gi"}, {"memory": "2Gi"}),
                container("sidecar", {"cpu": "10m"}))  # fmt: skip
    decision = decide(given, facts({"app": {"requests": {"cpu": "120m", "memory": "310Mi"}}}))
    assert decision.changed
    assert list(decision.containers) == [0]
    assert decision.containers[0]["resources"] == {
        "requests": {"cpu": "120m", "memory": "310Mi"},
        "limits": {"memory": "2Gi"},
    }
    assert decision.containers[0]["image"] == "x"
    assert decision.note.startswith("app: cpu request 500m→120m; memory request 1Gi→310Mi")
    assert f"policy {POLICY}" in decision.note
    # The pod given is left as it was (the handler patches).
    assert given["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"


def test_equal_values_written_differently_are_no_change() -> None:
    decision = decide(pod(container("app", {"cpu": "0.5", "memory": "1024Mi"})),
                      facts({"app": {"requests": {"cpu": "500m", "memory": "1Gi"}}}))  # fmt: skip
    assert decision == decide(pod(), None)
    assert not decision.changed and not decision.note


def test_a_request_above_its_limit_keeps_the_template_values() -> None:
    decision = decide(
        pod(container("app", {"memory": "256Mi"}, {"memory": "512Mi"})),
        facts({"app": {"requests": {"memory": "1Gi"}}}),
    )
    assert not decision.changed
    assert decision.note.startswith("skipped: container app: the memory request would exceed")


def test_a_change_of_qos_class_keeps_the_template_values() -> None:
    # Guaranteed (requests = limits) would become Burstable.
    guaranteed = container("app", {"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})
    decision = decide(pod(guaranteed), facts({"app": {"requests": {"cpu": "200m"}}}))
    assert not decision.changed
    assert "QoS class would change from Guaranteed to Burstable" in decision.note
    # Requests and limits moved together keep it Guaranteed.
    both = {"requests": {"cpu": "200m"}, "limits": {"cpu": "200m"}}
    assert decide(pod(guaranteed), facts({"app": both})).changed
    # BestEffort (nothing set) would become Burstable.
    decision = decide(pod(container("app")), facts({"app": {"requests": {"cpu": "100m"}}}))
    assert not decision.changed
    assert "from BestEffort to Burstable" in decision.note


def test_pods_of_other_workloads_and_stale_policies_are_left_alone() -> None:
    sized = {"app": {"requests": {"cpu": "100m"}}}
    given = pod(container("app", {"cpu": "500m"}))
    assert decide(given, WorkloadFacts({}, {"app": "web"}, {POLICY: "Apply"})) == decide(
        given, None
    )
    # Labels that do not match the workload's selector: not its pod.
    assert not decide(pod(container("app", {"cpu": "500m"}), labels={"app": "x"}),
                      facts(sized)).note  # fmt: skip
    gone = decide(given, facts(sized, mode=None))
    assert not gone.changed and gone.note == f"skipped: the policy '{POLICY}' is gone"
    recommend = decide(given, facts(sized, mode="Recommend"))
    assert not recommend.changed and "is in mode Recommend" in recommend.note
    excluded = decide(given, facts(sized, **{names.EXCLUDE_ANNOTATION: "true"}))
    assert not excluded.changed and names.EXCLUDE_ANNOTATION in excluded.note
    pod_level = pod(container("app", {"cpu": "500m"}))
    pod_level["spec"]["resources"] = {"limits": {"cpu": "2"}}
    assert "pod-level resources" in decide(pod_level, facts(sized)).note


def test_an_unreadable_annotation_is_noted_not_applied() -> None:
    broken = WorkloadFacts({names.POD_RESOURCES_ANNOTATION: "{"}, {}, {POLICY: "Apply"})
    decision = decide(pod(container("app", {"cpu": "500m"})), broken)
    assert not decision.changed and "not JSON" in decision.note
    with pytest.raises(PodResourcesError, match="container app: requests"):
        parse_pod_resources(json.dumps({"containers": {"app": {"requests": {"cpu": "lots"}}}}))


def test_unset_values_are_added() -> None:
    decision = decide(pod(container("app", {"cpu": "500m"})),
                      facts({"app": {"requests": {"cpu": "100m", "memory": "64Mi"}}}))  # fmt: skip
    assert decision.containers[0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert "memory request unset→64Mi" in decision.note


def test_values_a_limitrange_would_refuse_keep_the_template_values() -> None:
    """The API server's LimitRanger runs after the webhook: a value outside its bounds
    would refuse the pod, so the pod keeps its template's values."""
    given = pod(container("app", {"cpu": "500m", "memory": "1Gi"}))
    sized = {"app": {"requests": {"cpu": "120m", "memory": "310Mi"}}}
    floor = LimitRangeItem("Container", min=Resources(200, None))
    decision = decide(given, replace(facts(sized), limit_ranges=[floor]))
    assert not decision.changed
    assert decision.note.startswith("skipped: container app's request: cpu below the LimitRange")
    pod_cap = LimitRangeItem("Pod", max=Resources(None, 256 * 2**20))
    capped = decide(given, replace(facts(sized), limit_ranges=[pod_cap]))
    assert "the pod's requests: memory above the LimitRange's Pod max" in capped.note
    roomy = LimitRangeItem("Container", min=Resources(100, None), max=Resources(4000, 2**32))
    assert decide(given, replace(facts(sized), limit_ranges=[roomy])).changed


def test_an_increase_a_quota_has_no_room_for_keeps_the_template_values() -> None:
    given = pod(container("app", {"cpu": "500m", "memory": "1Gi"}))
    grow = {"app": {"requests": {"cpu": "900m"}}}
    quota = {"name": "team", "hard": {"requests.cpu": "2"}, "used": {"requests.cpu": "1500m"}}
    decision = decide(given, replace(facts(grow), quotas=[quota]))
    assert not decision.changed
    assert decision.note.startswith("skipped: ResourceQuota team: requests.cpu would exceed")
    # Room enough, or a decrease (never refused for more than the template asks): set.
    roomy = {**quota, "used": {"requests.cpu": "500m"}}
    assert decide(given, replace(facts(grow), quotas=[roomy])).changed
    shrink = {"app": {"requests": {"cpu": "100m"}}}
    assert decide(given, replace(facts(shrink), quotas=[quota])).changed


def test_only_a_policy_that_sizes_pods_in_place_lets_the_webhook_size_them() -> None:
    from rightsizer.model.admission import sizing_mode

    def spec(**update: str) -> dict[str, Any]:
        return {"update": update}

    assert sizing_mode(spec(mode="Apply", method="InPlace")) == "Apply"
    assert sizing_mode(spec(mode="Apply", method="InPlaceOrRollout")) == "Apply"
    assert sizing_mode(spec(mode="Apply", method="Rollout")) == "Apply with method Rollout"
    assert sizing_mode(spec(mode="Apply")) == "Apply with method Rollout"  # the default
    assert sizing_mode(spec(mode="Annotate", method="InPlace")) == "Annotate"
    assert sizing_mode({}) == "Recommend"
    rollout = facts({"app": {"requests": {"cpu": "120m"}}}, mode=sizing_mode(spec(mode="Apply")))
    note = decide(pod(container("app", {"cpu": "500m"})), rollout).note
    assert note == f"skipped: the policy '{POLICY}' is in mode Apply with method Rollout"


def test_the_annotation_the_in_place_path_writes_finds_its_policy() -> None:
    """pod-resources as the operator writes it (its own codec, policy "namespace/name")
    against the modes of the namespace's policies as the webhook builds them: the pod is
    sized. (The webhook once keyed the modes by bare name: every pod was "skipped: the
    policy 'shop/sizer' is gone".)"""
    text = pod_resources_text(
        "shop/sizer", 0.0, {"app": (Resources(120, 310 * 2**20), Resources(None, None))}
    )
    in_place = {"update": {"mode": "Apply", "method": "InPlace"}}
    policies = [PolicyInfo("shop", "sizer", "u1", "", in_place),
                PolicyInfo("shop", "other", "u2", "", {})]  # fmt: skip
    facts = WorkloadFacts({names.POD_RESOURCES_ANNOTATION: text}, {"app": "web"},
                          policy_modes(policies))  # fmt: skip
    decision = decide(pod(container("app", {"cpu": "500m", "memory": "1Gi"})), facts)
    assert decision.changed, decision.note
    assert decision.containers[0]["resources"]["requests"] == {
        "cpu": "120m",
        "memory": str(310 * 2**20),
    }
    assert policy_modes(policies) == {"shop/sizer": "Apply", "shop/other": "Recommend"}
