"""The adapter writing RightSizeRecommendations: a 429 slows the pace and the write is
retried; 409 on create and 404 on delete are not failures; other failures are reported.

The API server is replaced by a fake sender here (and only here): a real kube-apiserver
cannot be made to answer 429 or 500 on demand for one request. The end-to-end tests
(tests/integration/test_recommendation_objects.py) cover the real writes.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from rightsizer.actuation import recommendations as adapter
from rightsizer.actuation.pacing import TokenBucket
from rightsizer.status.recommendation import Action, Write
from tests.unit.helpers import FakeClock as Clock


def answers(monkeypatch: pytest.MonkeyPatch, statuses: list[int | None]) -> list[Write]:
    """Each send takes the next status (None: accepted); returns what was sent."""
    sent: list[Write] = []

    def send(_: Any, write: Write) -> None:
        sent.append(write)
        status = statuses.pop(0)
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
    answers(monkeypatch, [409, 404, 500])
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
