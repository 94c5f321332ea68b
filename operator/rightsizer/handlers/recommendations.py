"""RightSizeRecommendation objects: the step after a reconcile that brings them in line
(``handlers/main.py`` calls ``sync``).

Reading the existing objects costs no request per reconcile: the operator's watch cache
of them (``handlers/caches.py``) answers, as it does for workloads (``docs/design.md``,
"Recommendation objects", "Workload cache"). The
decision is pure (``status/recommendation.py``); the writes are the adapter's
(``actuation/recommendations.py``), paced by one token bucket for the whole operator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

import kopf

from rightsizer.actuation import recommendations as rsr_writes
from rightsizer.actuation import resources
from rightsizer.actuation.pacing import TokenBucket
from rightsizer.controller import observability as obs
from rightsizer.controller.runtime import PolicyRuntime
from rightsizer.handlers import caches
from rightsizer.handlers.settings import OperatorSettings
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.policy.spec import PolicyError, parse_policy_spec
from rightsizer.status import drift
from rightsizer.status.recommendation import (
    PolicyRef,
    Seen,
    desired_objects,
    effective,
    plan_writes,
)

INDEX = caches.RECOMMENDATIONS
_KINDS = ("deployments", "statefulsets", "daemonsets")
operator_log = logging.getLogger("rightsizer.operator")


def start(memo: kopf.Memo, settings: OperatorSettings) -> None:
    memo.recommendation_writes = TokenBucket(
        rate=settings.recommendation_writes_per_second,
        burst=settings.recommendation_write_burst,
        clock=time.monotonic,
        sleep=time.sleep,
    )


def existing(indexes: Mapping[str, Any], namespace: str) -> list[Seen]:
    """The namespace's recommendation objects as the index has them."""
    return list(indexes[INDEX].get(namespace, []))


def owned_workloads(
    indexes: Mapping[str, Any], namespace: str, owned: Collection[str]
) -> list[WorkloadInfo]:
    return [w for kind in _KINDS for w in indexes[kind].get(namespace, []) if w.ref in owned]


def pod_drift(
    memo: kopf.Memo, namespace: str, workloads: Collection[WorkloadInfo]
) -> dict[str, dict[str, dict[str, Any]]] | None:
    """The drift of the workloads sized in place (``status/drift.py``), from one list of
    the namespace's pods; None when none is (and no pods are listed)."""
    sized = drift.in_place_workloads(workloads)
    if not sized:
        return None
    try:
        pods = resources.pods_of(memo.api, namespace)
    except Exception as exc:  # shown without ``running`` until the next reconcile
        operator_log.warning(f"pods of {namespace} not listed ({type(exc).__name__})")
        pods = None
    return drift.drift(sized, pods)


def sync(
    memo: kopf.Memo, indexes: Mapping[str, Any], policy: PolicyRef, spec: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any]], now_s: float,
) -> list[tuple[str, dict[str, Any]]] | None:  # fmt: skip
    """Create, patch or delete the policy's objects (``entries``: each workload's
    ``lastAction`` and ``autoApply``); returns each object as the API server then has it
    (``effective``), None when nothing was planned. Failures are logged and left to the
    next reconcile, which plans again."""
    try:
        return _sync(memo, indexes, policy, spec, entries, now_s)
    except Exception:  # never the tick's end: the next reconcile plans again
        operator_log.exception(f"recommendation objects of {policy.namespace}/{policy.name}")
        return None


def _sync(
    memo: kopf.Memo, indexes: Mapping[str, Any], policy: PolicyRef, spec: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any]], now_s: float,
) -> list[tuple[str, dict[str, Any]]] | None:  # fmt: skip
    runtime: PolicyRuntime | None = memo.runtimes.get(policy.uid)
    if runtime is None or runtime.observed_generation < 0:
        return None
    try:
        settings = parse_policy_spec(dict(spec)).update.settings
    except PolicyError:
        return None  # an invalid spec changes nothing: the objects stay as they were
    workloads = owned_workloads(indexes, policy.namespace, set(runtime.owned))
    desired = desired_objects(
        policy, workloads, runtime.rows, entries, runtime.read_until_s, now_s,
        pod_drift(memo, policy.namespace, workloads),
        list((indexes.get("hpas") or {}).get(policy.namespace, [])), settings.hpa_bounds,
    )  # fmt: skip
    have = existing(indexes, policy.namespace)
    writes = plan_writes(policy, desired, have, settings.min_change_percent)
    runtime.synced = {w.ref: w.containers for w in workloads}
    if not writes:
        return effective(desired, have, writes, ())
    report = rsr_writes.perform(memo.api, writes, memo.recommendation_writes)
    for action, count in report.done.items():
        obs.RECOMMENDATION_WRITES.labels(action).inc(count)
    obs.RECOMMENDATION_REJECTIONS.inc(report.rejected)
    if report.failed:
        operator_log.warning(
            f"recommendation objects of {policy.namespace}/{policy.name}: "
            f"{len(report.failed)} writes left for the next reconcile: "
            + ", ".join(report.failed[:5])
        )
    return effective(desired, have, writes, report.failed_names)
