"""The policy's status describes the policy (issue 14 item 4): totals over every object,
counts per state, the top changes by severity (at most 20), how to list all of them; and
no write when only the heartbeat moved."""

from __future__ import annotations

from typing import Any

from rightsizer.status.build import iso
from rightsizer.status.policy import HEARTBEAT_S, TOP_CHANGES, overview, status_patch

MI, GI = 2**20, 2**30
NOW = 1_800_000_000.0


def kept(
    name: str, now: tuple[int, int], target: tuple[int, int] | None, pods: int = 1,
    severity: str = "warning", state: str = "Recommended",
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    exact: dict[str, Any] = {"requests": {"cpuMillicores": now[0], "memoryBytes": now[1]}}
    if target is not None:
        exact["target"] = {"cpuMillicores": target[0], "memoryBytes": target[1]}
    return f"deployment-{name}", {
        "workload": f"Deployment/{name}", "cpu": "c", "memory": "m", "pods": pods,
        "severity": severity, "state": state, "containers": {"app": exact},
    }  # fmt: skip


def test_totals_and_counts_cover_every_object() -> None:
    objects = [
        kept("a", (1000, GI), (500, GI // 2), pods=2),  # frees 1 core, 1 GiB
        kept("b", (100, 256 * MI), (300, 512 * MI), state="Held (Cooldown)"),  # adds
        kept("c", (100, MI), None, severity="ok", state="InsufficientData"),
    ]
    out = overview("shop", "sizing", objects)
    s = out["summary"]
    assert (s["workloads"], s["containers"], s["insufficientData"]) == (3, 2, 1)
    assert (s["cpuCoresFreed"], s["memoryGiBFreed"]) == (1.0, 1.0)
    assert (s["cpuCoresAdded"], s["memoryGiBAdded"]) == (0.2, 0.25)
    assert s["change"] == "-0.80 cores, -0.75 GiB"
    assert s["states"] == {
        "Recommended": 1, "Annotated": 0, "Applied": 0, "Held": 1, "InsufficientData": 1,
    }  # fmt: skip
    assert out["recommendations"] == {
        "count": 3,
        "labelSelector": "rightsizer.dev/policy=sizing",
        "command": "kubectl get rsr -n shop -l rightsizer.dev/policy=sizing",
    }
    assert "truncated" not in s


def test_the_top_changes_are_the_most_severe_then_the_largest_at_most_20() -> None:
    objects = [kept(f"w{i:03}", (1000 + i, GI), (500, GI), severity="info") for i in range(30)]
    objects += [kept("big", (4000, GI), (500, GI), severity="critical")]
    objects += [kept("fine", (500, GI), (500, GI), severity="ok")]
    top = overview("shop", "sizing", objects)["topChanges"]
    assert len(top) == TOP_CHANGES
    assert top[0] == {
        "workload": "Deployment/big", "recommendation": "deployment-big",
        "severity": "critical", "cpu": "c", "memory": "m", "state": "Recommended",
    }  # fmt: skip
    assert [t["workload"] for t in top[1:3]] == ["Deployment/w029", "Deployment/w028"]
    assert "Deployment/fine" not in {t["workload"] for t in top}


def status(reconciled_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "lastReconcileTime": iso(reconciled_s),
        "conditions": [{"type": "Ready", "status": "True"}],
        "history": {"bootstrapped": True, "readUntil": iso(reconciled_s)},
        **extra,
    }


def test_a_steady_reconcile_writes_nothing_until_the_heartbeat_is_due() -> None:
    stored = status(NOW - 60)
    assert status_patch(stored, status(NOW), NOW) is None
    assert status_patch(stored, status(NOW + HEARTBEAT_S - 61), NOW + HEARTBEAT_S - 61) is None
    assert status_patch(stored, status(NOW + HEARTBEAT_S), NOW + HEARTBEAT_S) is not None
    moved = status(NOW, conditions=[{"type": "Ready", "status": "False"}])
    assert status_patch(stored, moved, NOW) == moved


def test_an_earlier_version_s_workload_list_and_truncated_flag_are_removed() -> None:
    stored = status(NOW, workloads=[{"workload": "Deployment/a"}],
                    summary={"workloads": 1, "truncated": True})  # fmt: skip
    patch = status_patch(stored, status(NOW), NOW)
    assert patch is not None
    assert patch["workloads"] is None and patch["summary"]["truncated"] is None


def test_the_policy_schema_holds_every_field_of_the_overview_each_described() -> None:
    from pathlib import Path

    import yaml

    from tests.unit.test_recommendation_objects import undescribed, unknown_fields

    crd = Path(__file__).resolve().parents[2] / "crds" / "rightsizepolicies.rightsizer.dev.yaml"
    (version,) = yaml.safe_load(crd.read_text())["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    out = overview("shop", "sizing", [kept("a", (1000, GI), (500, GI))])
    assert unknown_fields(out, status, "status") == []
    assert "workloads" not in status["properties"]
    for field in ("summary", "topChanges", "recommendations"):
        missing = undescribed(status["properties"][field], field)
        assert [m for m in missing if not m.endswith(": maxItems")] == []


def test_the_conflict_condition_names_each_workloads_owner_and_object() -> None:
    from rightsizer.status.policy import conflict_message

    assert conflict_message("shop", {}) == ""
    text = conflict_message("shop", {"Deployment/web": "older", "StatefulSet/db": "older"})
    assert text == (
        "Deployment/web belongs to policy older (RightSizeRecommendation shop/deployment-web); "
        "StatefulSet/db belongs to policy older (RightSizeRecommendation shop/statefulset-db)"
    )


def test_a_long_conflict_list_is_cut_and_says_how_to_list_the_rest() -> None:
    from rightsizer.status.policy import CONFLICTS_NAMED, conflict_message

    many = {f"Deployment/w{i:04d}": ("a" if i % 2 else "b") for i in range(1000)}
    text = conflict_message("shop", many)
    assert text.count("belongs to policy") == CONFLICTS_NAMED
    assert text.endswith(
        f"; and {1000 - CONFLICTS_NAMED} more: kubectl get rsr -n shop "
        "-l 'rightsizer.dev/policy in (a,b)'"
    )
    assert len(text) < 2000
