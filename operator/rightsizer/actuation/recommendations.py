"""Writes of RightSizeRecommendation objects (adapter): performs what
``status/recommendation.py::plan_writes`` decided, paced by a token bucket.

A 429 (too many requests, API Priority and Fairness included) slows the bucket and the
write is retried; any other failure is counted and left: the next reconcile plans the
write again from what the API server has, so nothing is lost. A create that finds the
object there (409: our index had not seen it yet) and a delete or patch that finds it gone
(404) are not failures.

Writes to different objects go ``WRITES_IN_FLIGHT`` at a time (one request waits on the
API server for about a round trip, so one policy writing in sequence reached ~50 writes
per second at 10,000 objects whatever the pace); the writes of one object keep their
order (create, then its status).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer import names
from rightsizer.actuation.pacing import TokenBucket
from rightsizer.status.recommendation import Action, Write

#: Attempts per write when the server keeps answering 429.
MAX_ATTEMPTS = 5
#: Objects written at once by one call of ``perform`` (all calls share one pace).
WRITES_IN_FLIGHT = 4
WRITE_TIMEOUT_S = (5.0, 30.0)
_MERGE = "application/merge-patch+json"


@dataclass
class WriteReport:
    done: Counter[str] = field(default_factory=Counter)
    """Action → writes the API server accepted."""
    requests: int = 0
    rejected: int = 0
    """429 answers (each slowed the pace and was retried)."""
    failed: list[str] = field(default_factory=list)
    """``action name: HTTP status`` of writes left for the next reconcile."""
    failed_names: set[str] = field(default_factory=set)
    """Names of the objects those writes were for."""


def _send(api: client.CustomObjectsApi, write: Write) -> None:
    g, v, p = names.GROUP, names.VERSION, names.RECOMMENDATION_PLURAL
    ns, name, body = write.namespace, write.name, dict(write.body or {})
    t = WRITE_TIMEOUT_S
    if write.action is Action.CREATE:
        api.create_namespaced_custom_object(g, v, ns, p, body, _request_timeout=t)
    elif write.action is Action.PATCH:
        api.patch_namespaced_custom_object(
            g, v, ns, p, name, body, _content_type=_MERGE, _request_timeout=t
        )
    elif write.action is Action.PATCH_STATUS:
        api.patch_namespaced_custom_object_status(
            g, v, ns, p, name, body, _content_type=_MERGE, _request_timeout=t
        )
    else:
        api.delete_namespaced_custom_object(g, v, ns, p, name, _request_timeout=t)


def _retry_after_s(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _harmless(write: Write, status: int | None) -> bool:
    if write.action is Action.CREATE:
        return status == 409
    return status == 404


def perform(
    api: ApiClient,
    writes: Sequence[Write],
    bucket: TokenBucket,
    in_flight: int = WRITES_IN_FLIGHT,
) -> WriteReport:
    """Send the writes, each after a token from ``bucket``: up to ``in_flight`` objects at
    once, each object's writes in their order. The report lists failures in the order of
    the objects' first writes."""
    custom = client.CustomObjectsApi(api)
    by_object: dict[tuple[str, str], list[Write]] = {}
    for write in writes:
        by_object.setdefault((write.namespace, write.name), []).append(write)
    groups = list(by_object.values())

    def send_in_order(group: list[Write]) -> WriteReport:
        return _perform_in_order(custom, group, bucket)

    if in_flight <= 1 or len(groups) <= 1:
        reports = [send_in_order(group) for group in groups]
    else:
        workers = min(in_flight, len(groups))
        with ThreadPoolExecutor(workers, thread_name_prefix="rsr-write") as pool:
            reports = list(pool.map(send_in_order, groups))
    total = WriteReport()
    for report in reports:
        total.done.update(report.done)
        total.requests += report.requests
        total.rejected += report.rejected
        total.failed.extend(report.failed)
        total.failed_names |= report.failed_names
    return total


def _perform_in_order(
    custom: client.CustomObjectsApi, writes: Sequence[Write], bucket: TokenBucket
) -> WriteReport:
    report = WriteReport()
    for write in writes:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            bucket.acquire()
            report.requests += 1
            try:
                _send(custom, write)
            except ApiException as exc:
                if exc.status == 429 and attempt < MAX_ATTEMPTS:
                    report.rejected += 1
                    bucket.rejected(_retry_after_s(exc))
                    continue
                if not _harmless(write, exc.status):
                    report.failed.append(f"{write.action} {write.name}: HTTP {exc.status}")
                    report.failed_names.add(write.name)
                break
            bucket.succeeded()
            report.done[write.action.value] += 1
            break
    return report
