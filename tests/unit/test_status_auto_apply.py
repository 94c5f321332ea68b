"""Annotate and Apply modes' state on the recommendation objects: read back after a
restart, shown per workload, and Apply mode's condition merged into the policy's status
without a write when nothing changed."""

from __future__ import annotations

from typing import Any

from rightsizer.status.auto_apply import object_entries, stored_entries, told_states
from rightsizer.status.build import Condition, status_after_pass
from rightsizer.status.recommendation import Seen

OPTED_IN = Condition("AutoApplyBlocked", False, "NamespaceOptedIn", "")
WHEN = (1_800_000_000.0, 3)


def obj(name: str, owner: str, **status: Any) -> Seen:
    return Seen(
        "shop", f"deployment-{name}", {}, owner,
        {"workload": {"kind": "Deployment", "name": name}}, status,
    )  # fmt: skip


def test_what_was_done_and_told_is_read_back_from_the_policy_s_own_objects() -> None:
    objects = [
        obj("a", "uid-1", autoApply={"state": "Held", "reason": "Cooldown"}),
        obj("b", "uid-1", lastAction={"type": "Annotated"}, autoApply=None),
        obj("c", "uid-2", autoApply={"state": "Held", "reason": "Excluded"}),  # another's
        obj("d", "uid-1"),
    ]
    stored = stored_entries(objects, "uid-1")
    assert stored == {
        "Deployment/a": {"autoApply": {"state": "Held", "reason": "Cooldown"}},
        "Deployment/b": {"lastAction": {"type": "Annotated"}},
    }
    told = told_states(stored, {"Deployment/b": {"reason": "RolloutLimit"}})
    assert told == {
        "Deployment/a": {"state": "Held", "reason": "Cooldown"},
        "Deployment/b": {"reason": "RolloutLimit"},
    }


def test_the_objects_show_this_process_s_actions_else_their_own_and_the_last_pass() -> None:
    stored = {
        "Deployment/a": {"lastAction": {"type": "Annotated", "time": "old"}},
        "Deployment/b": {"lastAction": {"type": "Applied"}, "autoApply": {"state": "Held"}},
    }
    actions = {"Deployment/a": {"type": "Annotated", "time": "new"}}
    states = {"Deployment/c": {"state": "Held", "reason": "Cooldown"}}
    out = object_entries(stored, actions, states)
    assert out == {
        "Deployment/a": {"lastAction": {"type": "Annotated", "time": "new"}},
        "Deployment/b": {"lastAction": {"type": "Applied"}},  # no state in the last pass
        "Deployment/c": {"autoApply": {"state": "Held", "reason": "Cooldown"}},
    }
    # outside Apply mode: no auto-apply state at all
    assert "autoApply" not in object_entries(stored, {}, None).get("Deployment/b", {})


def test_the_condition_is_merged_and_nothing_written_when_unchanged() -> None:
    first = status_after_pass(None, {"conditions": []}, OPTED_IN, WHEN)
    assert first is not None and [c["type"] for c in first["conditions"]] == ["AutoApplyBlocked"]
    assert status_after_pass(None, first, OPTED_IN, WHEN) is None
    # a new status from this tick's reconcile is always passed on
    assert status_after_pass({"observedGeneration": 3}, first, OPTED_IN, WHEN) is not None
