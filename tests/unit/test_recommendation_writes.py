"""The adapter writing RightSizeRecommendations: a 429 slows the pace and the write is
retried; 409 on create and 404 on delete are not failures; other failures are reported.

The API server is replaced by a fake sender here (and only here): a real kube-apiserver
cannot be made to answer 429 or 500 on demand for one request. The end-to-end tests
(tests/integration/test_recommendation_objects.py) cover the real writes.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from rightsizer.actuation import recommendations as adapter
from rightsizer.actuation.pacing import TokenBucket
from rightsizer.status.recommendation import Action, Write
from tests.unit.helpers import FakeClock as Clock


def answers(
    monkeypatch: pytest.MonkeyPatch, statuses: list[int | None] | dict[str, list[int | None]]
) -> list[Write]:
    """Each send takes the next status (None: accepted) — of its object, when given per
    object name; returns what was sent."""
    sent: list[Write] = []
    lock = threading.Lock()

    def send(_: Any, write: Write) -> None:
        with lock:
            sent.append(write)
            queue = statuses[write.name] if isinstance(statuses, dict) else statuses
            status = queue.pop(0)
        if status is not None:
            exc = ApiException(status=status)
            exc.headers = {"Retry-After": "2"} if status == 429 else {}
            raise exc

    monkeypatch.setattr(adapter, "_send", send)
    return sent


def bucket() -> tuple[TokenBucket, Clock]:
    clock = Clock()
    return TokenBucket(rate=10, burst=10, clock=clock, sleep=clock.sleep), clock


WRITE = Write(Action.PATCH_STATUS, "shop", "deployment-web", {"status": {}})


def test_a_429_slows_the_pace_and_the_write_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = answers(monkeypatch, [429, 429, None])
    pace, clock = bucket()
    report = adapter.perform(None, [WRITE], pace)  # type: ignore[arg-type]
    assert len(sent) == 3 and report.done == {"patch-status": 1} and report.rejected == 2
    assert report.failed == [] and clock.now >= 4.0  # Retry-After: 2, twice
    assert pace.current_rate < 10


def test_present_on_create_and_gone_on_delete_are_not_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers(monkeypatch, {"a": [409], "b": [404], "c": [500]})
    writes = [
        Write(Action.CREATE, "shop", "a", {}),
        Write(Action.DELETE, "shop", "b"),
        Write(Action.PATCH, "shop", "c", {}),
    ]
    report = adapter.perform(None, writes, bucket()[0])  # type: ignore[arg-type]
    assert report.failed == ["patch c: HTTP 500"] and report.requests == 3


def test_a_server_that_keeps_refusing_leaves_the_write_for_next_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers(monkeypatch, [429] * adapter.MAX_ATTEMPTS)
    report = adapter.perform(None, [WRITE], bucket()[0])  # type: ignore[arg-type]
    assert report.failed == ["patch-status deployment-web: HTTP 429"]


def test_objects_are_written_at_once_each_in_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two objects' first writes meet at a barrier: written one after the other, they
    never would (the barrier then breaks after 60 s and the test fails)."""
    barrier = threading.Barrier(2, timeout=60)
    sent: list[Write] = []
    lock = threading.Lock()

    def send(_: Any, write: Write) -> None:
        if write.action is Action.CREATE and write.name in ("a", "b"):
            barrier.wait()
        with lock:
            sent.append(write)

    monkeypatch.setattr(adapter, "_send", send)
    writes = [
        w
        for name in ("a", "b", "c", "d", "e")
        for w in (
            Write(Action.CREATE, "shop", name, {}),
            Write(Action.PATCH_STATUS, "shop", name, {}),
        )
    ]
    report = adapter.perform(None, writes, bucket()[0], in_flight=2)  # type: ignore[arg-type]
    assert report.done == {"create": 5, "patch-status": 5} and report.failed == []
    for name in "abcde":
        mine = [w.action for w in sent if w.name == name]
        assert mine == [Action.CREATE, Action.PATCH_STATUS], name


def test_failures_are_reported_in_the_order_of_the_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers(monkeypatch, {n: [500] for n in "abcdef"})
    writes = [Write(Action.PATCH, "shop", n, {}) for n in "abcdef"]
    report = adapter.perform(None, writes, bucket()[0], in_flight=4)  # type: ignore[arg-type]
    assert report.failed == [f"patch {n}: HTTP 500" for n in "abcdef"]
    assert report.failed_names == set("abcdef") and report.requests == 6
