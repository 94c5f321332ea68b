"""RightSizeRecommendation objects (pure): names, the object built from an assessment, and
the writes planned against what the API server has — none when nothing a person sees has
changed. The CRD's schema holds every field the builder writes, each described."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.model.assessment import assess
from rightsizer.model.workloads import ContainerResources, WorkloadInfo
from rightsizer.status.recommendation import (
    Action,
    PolicyRef,
    desired_objects,
    effective,
    label_value,
    object_name,
    plan_writes,
    readable_cpu,
    readable_memory,
    seen,
)

CRD = Path(__file__).resolve().parents[2] / "crds" / "rightsizerecommendations.rightsizer.dev.yaml"
POLICY = PolicyRef("shop", "sizing", "uid-1")
NOW = 1_800_000_000.0
MI = 2**20
TARGET, CURRENT = Resources(120, 310 * MI), Resources(500, 1024 * MI)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def workload(
    name: str = "web", cpu: int | None = 500, memory: int | None = 1024 * MI
) -> WorkloadInfo:
    return WorkloadInfo(
        "Deployment", "shop", name, f"uid-{name}", {}, {}, 2,
        (ContainerResources("app", Resources(cpu, memory), Resources(1000, memory)),),
    )  # fmt: skip


def rec(
    name: str = "web", target: Resources = TARGET, cpu_samples: int = 4000,
    current: Resources = CURRENT,
) -> ContainerRecommendation:  # fmt: skip
    return ContainerRecommendation(
        "shop", f"Deployment/{name}", "app", target, Resources(100, 300 * MI),
        Resources(200, 400 * MI), target, Resources(None, 400 * MI), cpu_samples, cpu_samples,
        3.0, current, Resources(1000, 1024 * MI), 350.0 * MI, 1, history_span_s=3 * 86_400.0,
    )  # fmt: skip


def build(
    recs: list[ContainerRecommendation], entries: dict[str, dict[str, Any]] | None = None,
    workloads: list[WorkloadInfo] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The objects; each workload's requests now are those its recommendation saw."""
    rows = assess(recs, {}, min_history_s=3600, min_samples=30)
    ws = workloads or [
        workload(r.workload.split("/")[1], r.current_requests.cpu_millicores,
                 r.current_requests.memory_bytes)
        for r in recs
    ]  # fmt: skip
    return desired_objects(POLICY, ws, rows, entries or {}, NOW - 60, NOW)


def as_stored(body: dict[str, Any]) -> dict[str, Any]:
    """What the API server keeps (null status fields are removed by a merge patch)."""
    status = {k: v for k, v in body["status"].items() if v is not None}
    return copy.deepcopy({**body, "status": status})


def test_names_are_deterministic_dns_safe_and_collision_free_when_cut() -> None:
    assert object_name("Deployment", "web") == "deployment-web"
    long_a, long_b = "a" * 250 + "x", "a" * 250 + "y"
    name_a, name_b = object_name("Deployment", long_a), object_name("Deployment", long_b)
    assert name_a != name_b and len(name_a) <= 253 and len(name_b) <= 253
    assert object_name("Deployment", long_a) == name_a
    assert object_name("StatefulSet", long_a) != name_a
    assert DNS_SUBDOMAIN.match(object_name("Deployment", "a." * 126 + "b"))
    assert label_value("web") == "web"
    cut = label_value("x" * 100)
    assert len(cut) <= 63 and LABEL_VALUE.match(cut) and cut != label_value("x" * 99 + "y")


@pytest.mark.parametrize(
    ("millicores", "text"), [(120, "120m"), (2000, "2"), (1500, "1500m"), (0, "0m"), (None, "-")]
)
def test_cpu_reads_as_people_write_it(millicores: int | None, text: str) -> None:
    assert readable_cpu(millicores) == text


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [(310 * MI, "310Mi"), (1536 * MI, "1.5Gi"), (2**30, "1Gi"), (262_144_123, "250Mi"),
     (500, "500"), (None, "-")],
)  # fmt: skip
def test_memory_reads_as_people_write_it(num_bytes: int | None, text: str) -> None:
    assert readable_memory(num_bytes) == text


def test_the_object_names_its_workload_and_policy_and_shows_the_columns() -> None:
    (body,) = build([rec()])
    meta = body["metadata"]
    assert meta["name"] == "deployment-web" and meta["namespace"] == "shop"
    assert meta["labels"] == {
        "rightsizer.dev/policy": "sizing",
        "rightsizer.dev/workload-kind": "Deployment",
        "rightsizer.dev/workload-name": "web",
    }
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "RightSizePolicy", "sizing", "uid-1", True,
    )  # fmt: skip
    assert body["spec"] == {
        "workload": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "policy": {"name": "sizing"},
    }
    status = body["status"]
    assert (status["workload"], status["cpu"], status["memory"]) == (
        "Deployment/web", "500m→120m", "1Gi→310Mi",
    )  # fmt: skip
    assert (status["confidence"], status["state"]) == ("3.0d", "Recommended")
    (c,) = status["containers"]
    assert c["target"] == {"cpu": "120m", "memory": "310Mi"}
    assert c["recommendedLimits"] == {"memory": "400Mi"}
    assert c["exact"]["target"] == {"cpuMillicores": 120, "memoryBytes": 310 * MI}
    assert c["evidence"] == {
        "historyHours": 72.0, "oomKills": 1, "peakMemory": "350Mi", "peakMemoryBytes": 350 * MI,
    }  # fmt: skip
    assert status["conditions"][0]["status"] == "True"


@pytest.mark.parametrize(
    ("entry", "state"),
    [
        ({"autoApply": {"state": "Held", "reason": "Cooldown"}}, "Held (Cooldown)"),
        # the cooldown (or rollout) of our own write: Applied, the hold in autoApply
        (
            {
                "autoApply": {"state": "Held", "reason": "Cooldown"},
                "lastAction": {"type": "Applied"},
            },
            "Applied",
        ),
        (
            {
                "autoApply": {"state": "Held", "reason": "Excluded"},
                "lastAction": {"type": "Applied"},
            },
            "Held (Excluded)",
        ),
        ({"autoApply": {"state": "Applied", "reason": "Applied"}}, "Applied"),
        ({"lastAction": {"type": "Annotated"}}, "Annotated"),
        ({}, "Recommended"),
    ],
)
def test_the_state_comes_from_the_object_s_auto_apply_and_last_action(
    entry: dict[str, Any], state: str
) -> None:
    (body,) = build([rec()], {"Deployment/web": entry})
    assert body["status"]["state"] == state


@pytest.mark.parametrize(
    ("current", "target", "column"),
    [
        (2000, 1238, "2000m→1238m"),
        (2000, 1000, "2→1"),
        (500, 120, "500m→120m"),
        (None, 120, "-→120m"),
    ],
)
def test_the_cpu_column_uses_one_unit_on_both_sides(
    current: int | None, target: int, column: str
) -> None:
    (body,) = build([rec(current=Resources(current, MI), target=Resources(target, MI))])
    assert body["status"]["cpu"] == column


def test_too_little_data_shows_no_target() -> None:
    (body,) = build([rec(cpu_samples=3)])
    status = body["status"]
    assert status["state"] == "InsufficientData" and status["confidence"] == "-"
    (c,) = status["containers"]
    assert "target" not in c and "3 CPU samples" in c["insufficientData"]
    assert status["conditions"][0]["status"] == "False"


def test_first_contact_creates_then_writes_the_status() -> None:
    (body,) = build([rec()])
    writes = plan_writes(POLICY, [body], [], 10)
    assert [w.action for w in writes] == [Action.CREATE, Action.PATCH_STATUS]
    assert "status" not in writes[0].body  # type: ignore[operator]


def test_nothing_new_writes_nothing() -> None:
    (body,) = build([rec()])
    assert plan_writes(POLICY, [body], [seen(as_stored(body))], 10) == []
    # a later reconcile: new times, more samples, the same sizes
    (later,) = build([replace(rec(), cpu_samples=5000)])
    later["status"]["conditions"][0]["lastTransitionTime"] = "2030-01-01T00:00:00Z"
    assert plan_writes(POLICY, [later], [seen(as_stored(body))], 10) == []


@pytest.mark.parametrize(
    ("change", "writes"),
    [
        ({"target": Resources(129, 310 * MI)}, 0),  # 7.5 % < 10 %
        ({"target": Resources(132, 310 * MI)}, 1),  # 10 % — at least the threshold
        ({"target": Resources(120, 400 * MI)}, 1),
        ({"current": Resources(600, 1024 * MI)}, 1),  # a person changed the request
        ({"cpu_samples": 3}, 1),  # the state changes
    ],
)
def test_a_patch_only_when_something_a_person_sees_changes(
    change: dict[str, Any], writes: int
) -> None:
    (before,) = build([rec()])
    (after,) = build([rec(**change)])
    planned = plan_writes(POLICY, [after], [seen(as_stored(before))], 10)
    assert [w.action for w in planned] == [Action.PATCH_STATUS] * writes


def test_a_kept_condition_keeps_its_transition_time_and_removed_fields_are_nulled() -> None:
    (before,) = build([rec()], {"Deployment/web": {"lastAction": {"type": "Annotated"}}})
    stored = as_stored(before)
    stored["status"]["conditions"][0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    (after,) = build([rec(target=Resources(500, 310 * MI))])
    (write,) = plan_writes(POLICY, [after], [seen(stored)], 10)
    status = write.body["status"]  # type: ignore[index]
    assert status["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert status["lastAction"] is None


def test_objects_of_workloads_gone_are_deleted_and_other_policies_objects_kept() -> None:
    (web,) = build([rec()])
    gone = as_stored(build([rec("old")])[0])
    other = as_stored(build([rec("api")])[0])
    other["metadata"]["labels"]["rightsizer.dev/policy"] = "other"
    other["metadata"]["ownerReferences"][0]["uid"] = "uid-2"
    existing = [seen(as_stored(web)), seen(gone), seen(other)]
    writes = plan_writes(POLICY, [web], existing, 10)
    assert [(w.action, w.name) for w in writes] == [(Action.DELETE, "deployment-old")]


def test_an_object_changing_hands_gets_the_new_owner() -> None:
    (body,) = build([rec()])
    stored = as_stored(body)
    stored["metadata"]["labels"]["rightsizer.dev/policy"] = "older"
    stored["metadata"]["ownerReferences"][0]["uid"] = "uid-0"
    (write,) = plan_writes(POLICY, [body], [seen(stored)], 10)
    assert write.action is Action.PATCH
    assert write.body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"  # type: ignore[index]


# -- the CRD --------------------------------------------------------------------------------
def schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    out: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return out


KEYWORDS = {
    "type", "description", "properties", "items", "required", "enum", "format", "nullable",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    """Paths without a description, or with a key that is no schema keyword (a comma in
    an unquoted YAML flow mapping makes one)."""
    missing = [] if "description" in node or path.endswith(".metadata") else [path]
    missing += [f"{path}: {key}" for key in set(node) - KEYWORDS]
    for name, sub in (node.get("properties") or {}).items():
        missing += undescribed(sub, f"{path}.{name}")
    if "items" in node:
        missing += undescribed(node["items"], f"{path}[]")
    return missing


def unknown_fields(value: Any, node: dict[str, Any], path: str) -> list[str]:
    """Fields the API server would prune (not in the structural schema)."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = node.get("properties") or {}
        out = []
        for key, sub in value.items():
            if key not in props:
                out.append(f"{path}.{key}")
            else:
                out += unknown_fields(sub, props[key], f"{path}.{key}")
        return out
    if isinstance(value, list):
        return [m for i, v in enumerate(value) for m in unknown_fields(v, node["items"], path)]
    return []


def test_every_field_of_the_schema_is_described() -> None:
    assert undescribed(schema(), "") == []


def test_the_schema_holds_every_field_the_operator_writes() -> None:
    entry = {
        "autoApply": {"state": "Held", "reason": "Cooldown", "message": "m"},
        "lastAction": {"type": "Applied", "reason": "r", "time": "t", "previous": {"app": {}}},
    }
    for body in (build([rec()], {"Deployment/web": entry})[0], build([rec(cpu_samples=1)])[0]):
        skipped = {"metadata"}
        data = {k: v for k, v in body.items() if k not in skipped}
        assert unknown_fields(data, schema(), "") == []


def test_the_object_shows_the_workload_s_requests_now_not_the_reconcile_s() -> None:
    """Apply mode's write (or a person's) shows at the next tick, before a reconcile."""
    written = workload(cpu=200, memory=512 * MI)
    (body,) = build([rec()], workloads=[written])
    (c,) = body["status"]["containers"]
    assert c["requests"] == {"cpu": "200m", "memory": "512Mi"}
    assert body["status"]["cpu"] == "200m→120m"
    (before,) = build([rec()])
    (write,) = plan_writes(POLICY, [body], [seen(as_stored(before))], 10)
    assert write.action is Action.PATCH_STATUS


def test_a_hold_s_moving_message_alone_writes_nothing() -> None:
    def held(reason: str, message: str) -> dict[str, Any]:
        entry = {"autoApply": {"state": "Held", "reason": reason, "message": message}}
        (body,) = build([rec()], {"Deployment/web": entry})
        return body

    stored = seen(as_stored(held("Cooldown", "next write possible in 5m")))
    assert plan_writes(POLICY, [held("Cooldown", "next write possible in 4m")], [stored], 10) == []
    assert len(plan_writes(POLICY, [held("RolloutLimit", "x")], [stored], 10)) == 1


def test_effective_objects_are_the_written_status_else_the_stored_one() -> None:
    (old_web,) = build([rec()])
    (old_db,) = build([rec("db")])
    (web,) = build([rec(target=Resources(500, 310 * MI))])
    (db,) = build([rec("db", target=Resources(500, 310 * MI))])
    (new,) = build([rec("new")])
    have = [seen(as_stored(old_web)), seen(as_stored(old_db))]
    writes = plan_writes(POLICY, [web, db, new], have, 10)
    out = dict(effective([web, db, new], have, writes, failed={"deployment-db"}))
    assert out["deployment-web"]["cpu"] == "500m→500m"  # written
    assert out["deployment-db"]["cpu"] == "500m→120m"  # its write failed: as stored
    assert out["deployment-new"]["severity"] == "critical"
    failed_create = effective([new], [], plan_writes(POLICY, [new], [], 10), {"deployment-new"})
    assert failed_create == []


def test_drift_is_shown_per_container_and_fits_the_schema() -> None:
    """Workloads sized in place show their drift (``status/drift.py`` builds it)."""
    sized = {"requests": {"cpu": "120m", "memory": "310Mi"}}
    drift = {"app": {
        "template": {"requests": {"cpu": "500m", "memory": "1Gi"}}, "applied": sized,
        "running": [{**sized, "pods": 2, "matches": "Applied"}],
    }}  # fmt: skip
    rows = assess([rec()], {}, min_history_s=3600, min_samples=30)
    (body,) = desired_objects(POLICY, [workload()], rows, {}, NOW - 60, NOW,
                              {"Deployment/web": drift})  # fmt: skip
    (c,) = body["status"]["containers"]
    assert c["drift"] == drift["app"]
    assert unknown_fields({k: v for k, v in body.items() if k != "metadata"}, schema(), "") == []
    (without,) = build([rec()])
    assert "drift" not in without["status"]["containers"][0]
    (write,) = plan_writes(POLICY, [body], [seen(as_stored(without))], 10)
    assert write.action is Action.PATCH_STATUS


def test_the_index_shares_the_strings_of_separately_decoded_objects() -> None:
    """Each watch event is decoded on its own; the index keeps one copy of each key and
    short value (interned), and the projection is equal to the plain one."""
    import json

    body = {
        "metadata": {"namespace": "shop", "name": "deployment-web",
                     "labels": {"rightsizer.dev/policy": "p"},
                     "ownerReferences": [{"uid": "u-1", "controller": True}]},
        "spec": {"workload": {"kind": "Deployment", "name": "web"}},
        "status": {"state": "Recommended", "conditions": [{"type": "Ready", "status": "True"}],
                   "containers": [{"name": "app", "exact": {"target": {"cpuMillicores": 5}}}]},
    }  # fmt: skip
    one, two = (seen(json.loads(json.dumps(body))) for _ in range(2))
    assert one == two
    key_one = next(k for k in one.status["containers"]["app"]["target"])
    key_two = next(k for k in two.status["containers"]["app"]["target"])
    assert key_one is key_two
    assert one.status["state"] is two.status["state"]
    assert next(iter(one.labels)) is next(iter(two.labels))
    assert one.status["containers"] == {"app": {"target": {"cpuMillicores": 5}}}


def _hpa(utilization: int = 60, kind: str = "Deployment", name: str = "web") -> Any:
    from rightsizer.model.hpa import hpa_info

    return hpa_info({
        "metadata": {"name": "web-hpa", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"kind": kind, "name": name}, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": utilization}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {
                "type": "AverageValue", "averageValue": "1Gi"}}},
        ]},
    })  # fmt: skip


def build_hpa(hpas: list[Any], target: Resources = TARGET, bounds: Any = None) -> dict[str, Any]:
    from rightsizer.model.hpa import UtilizationBounds

    rows = assess([rec(target=target)], {}, min_history_s=3600, min_samples=30)
    (body,) = desired_objects(POLICY, [workload()], rows, {}, NOW - 60, NOW, None, hpas,
                              bounds or UtilizationBounds())  # fmt: skip
    return body


def test_the_hpa_target_change_the_recommendation_implies_is_shown_and_fits_the_schema() -> None:
    """500m → 120m: a 60 % cpu utilization target keeps its scale point at 250 %, outside the
    default bounds (held); with wider bounds it is within; AverageValue needs nothing."""
    from rightsizer.model.hpa import UtilizationBounds

    cpu, memory = build_hpa([_hpa(), _hpa(name="other")])["status"]["hpa"]
    assert cpu == {
        "name": "web-hpa", "resource": "cpu", "source": "Resource", "targetType": "Utilization",
        "targetPercent": 60, "compensatedPercent": 250, "withinBounds": False,
        "message": "HPA web-hpa cpu 60%→250% (out of bounds: held)",
    }  # fmt: skip
    assert memory["targetType"] == "AverageValue" and "compensatedPercent" not in memory
    assert memory["message"] == "HPA web-hpa memory AverageValue target: no change needed"
    wide = build_hpa([_hpa()], bounds=UtilizationBounds(10, 300))
    assert wide["status"]["hpa"][0]["withinBounds"] is True
    assert unknown_fields({k: v for k, v in wide.items() if k != "metadata"}, schema(), "") == []
    assert build_hpa([_hpa(name="other")])["status"]["hpa"] is None


def test_an_hpa_added_or_edited_writes_the_status_its_compensation_alone_does_not() -> None:
    without = seen(as_stored(build_hpa([])))
    with_hpa = build_hpa([_hpa()])
    (write,) = plan_writes(POLICY, [with_hpa], [without], 10)
    assert write.action is Action.PATCH_STATUS
    stored = seen(as_stored(with_hpa))
    assert plan_writes(POLICY, [with_hpa], [stored], 10) == []
    # the target moving less than minChangePercent moves compensatedPercent: no write
    nudged = build_hpa([_hpa()], target=Resources(125, 310 * MI))
    assert nudged["status"]["hpa"][0]["compensatedPercent"] == 240
    assert plan_writes(POLICY, [nudged], [stored], 10) == []
    assert len(plan_writes(POLICY, [build_hpa([_hpa(70)])], [stored], 10)) == 1  # edited
    gone = build_hpa([])
    (removal,) = plan_writes(POLICY, [gone], [stored], 10)
    assert removal.body is not None and removal.body["status"]["hpa"] is None
