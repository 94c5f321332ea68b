"""One Apply-mode pass over a policy's workloads (orchestration; decisions are pure in
``guardrails``, writes go through the ports given).

Runs on every tick of a policy in Apply mode, with the recommendations of its last
reconcile and the workloads as the indexes see them now, so a namespace losing its
opt-in label, a rollout finishing or a cooldown ending take effect at the next tick.
For each workload it first watches our own last write (reverting it when the rollout
fails), then decides whether to write again. A policy's first pass in a process also posts
the Events of its recent writes that a crash lost (``guardrails.events``).
"""

from __future__ import annotations

from rightsizer.controller.apply.in_place import in_place_condition, pod_resources_after
from rightsizer.controller.apply.ports import ApplyInput, ApplyPorts, ApplyResult
from rightsizer.controller.apply.records import IN_PLACE, last_action, record_of
from rightsizer.controller.apply.rollout import ApplyRun
from rightsizer.names import (
    AUTO_APPLY_ENABLED,
    AUTO_APPLY_LABEL,
    ConditionType,
)
from rightsizer.status.build import Condition

__all__ = [
    "ApplyInput",
    "ApplyPorts",
    "ApplyResult",
    "apply_pass",
    "in_place_condition",
    "last_action",
    "pod_resources_after",
    "record_of",
]


def apply_pass(inp: ApplyInput, *, ports: ApplyPorts, pod_checks: dict[str, float]) -> ApplyResult:
    """One pass over the policy's workloads: watch our last writes (revert the failed
    ones), then decide and write. ``pod_checks`` is the caller's memory between passes
    (when the namespace's pods were last listed)."""
    run = ApplyRun(inp, ports)
    if inp.replay_events:
        run.replay_lost_events()
    if inp.namespace_labels.get(AUTO_APPLY_LABEL) != AUTO_APPLY_ENABLED:
        return ApplyResult(
            Condition(ConditionType.AUTO_APPLY_BLOCKED, True, "NamespaceNotOptedIn",
                      f"label the namespace {AUTO_APPLY_LABEL}=enabled to allow writes"),
            events=run.result.events, api_requests=run.result.api_requests,
            replayed=run.result.replayed, replayed_events=run.result.replayed_events,
        )  # fmt: skip
    run.check_pods(pod_checks)
    condition = in_place_condition(inp.method, inp.resize_served)
    if condition is not None:
        run.result.conditions.append(condition)
    for w in sorted(inp.workloads, key=lambda w: w.ref):
        record = run.records[w.ref]
        if record is not None and record.policy == inp.policy:
            run.result.last_actions[w.ref] = last_action(record)  # survives a lost status
        if record is not None and record.policy == inp.policy and record.method == IN_PLACE:
            if inp.resize_served and run.in_place_progress(w, record):
                continue
        elif run.reverted(w):
            continue
        run.decide_and_write(w)
    return run.result
