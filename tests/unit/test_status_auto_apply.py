"""Apply mode's part of the status: merged in, within budget, and no write when unchanged."""

from __future__ import annotations

from typing import Any

from rightsizer.status.auto_apply import status_after_pass, told_states
from rightsizer.status.build import Condition

OPTED_IN = Condition("AutoApplyBlocked", False, "NamespaceOptedIn", "")
WHEN = (1_800_000_000.0, 3)


def stored() -> dict[str, Any]:
    return {"workloads": [{"workload": "Deployment/web"}], "conditions": []}


def test_a_pass_s_actions_and_states_are_merged_into_the_entries() -> None:
    out = status_after_pass(
        None, stored(), {"Deployment/web": {"type": "Applied"}},
        {"Deployment/web": {"state": "Applied"}}, OPTED_IN, WHEN,
    )  # fmt: skip
    assert out is not None
    (entry,) = out["workloads"]
    assert entry["lastAction"] == {"type": "Applied"} and entry["autoApply"]["state"] == "Applied"
    assert [c["type"] for c in out["conditions"]] == ["AutoApplyBlocked"]


def test_nothing_to_write_when_the_pass_changes_nothing_stored() -> None:
    first = status_after_pass(None, stored(), {}, {}, OPTED_IN, WHEN)
    assert first is not None
    assert status_after_pass(None, first, {}, {}, OPTED_IN, WHEN) is None
    # a new status from this tick's reconcile is always written
    assert status_after_pass(first, first, {}, {}, OPTED_IN, WHEN) is not None


def test_holds_told_are_remembered_beyond_the_status() -> None:
    status = {"workloads": [{"workload": "Deployment/a", "autoApply": {"reason": "Cooldown"}}]}
    told = told_states(status, {"Deployment/b": {"reason": "RolloutLimit"}})
    assert told == {
        "Deployment/a": {"reason": "Cooldown"},
        "Deployment/b": {"reason": "RolloutLimit"},
    }
