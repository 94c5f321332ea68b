"""The watch cache's pure parts: stream lines, watch events, the store, the backoff.

The list+watch against a real API server (events arrive, 410 relists, deletions drop
entries) is ``tests/integration/test_watch_cache.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rightsizer.handlers.caches import CACHED, RECOMMENDATIONS
from rightsizer.model.workloads import WorkloadInfo
from rightsizer.sources.watch_cache import Backoff, GoneError, Store, WatchEvent, lines


def body(namespace: str, name: str, version: str = "1", cpu: str = "100m") -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": version},
        "spec": {"cpu": cpu},
    }


def cpu_of(obj: Any) -> str:
    return str(obj["spec"]["cpu"])


def event(kind: str, obj: dict[str, Any]) -> WatchEvent:
    return WatchEvent(kind, obj)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_lines_are_whole_whatever_the_chunking(size: int) -> None:
    stream = b'{"a": 1}\n{"b": 2}\n\n{"c": 3}'
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    assert list(lines(chunks)) == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}']


def test_a_410_error_event_means_list_again() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    with pytest.raises(GoneError, match="too old"):
        WatchEvent.parse(json.dumps(gone))
    with pytest.raises(RuntimeError, match="500"):
        WatchEvent.parse(json.dumps({"type": "ERROR", "object": {"code": 500}}))


def test_parse_keeps_type_object_and_version() -> None:
    parsed = WatchEvent.parse(json.dumps({"type": "ADDED", "object": body("a", "x", "42")}))
    assert (parsed.type, parsed.resource_version) == ("ADDED", "42")


def test_replace_holds_exactly_the_list() -> None:
    store: Store[str] = Store(cpu_of)
    assert not store.synced and store.get("a", []) == ()
    store.apply(event("ADDED", body("a", "old")))
    store.replace([("a", "x", "1"), ("a", "y", "2"), ("b", "z", "3")], "100")
    assert store.synced and store.resource_version == "100"
    assert sorted(store.get("a", [])) == ["1", "2"]
    assert store.get("b") == ("3",)
    assert len(store) == 3


def test_events_add_change_and_drop_entries() -> None:
    store: Store[str] = Store(cpu_of)
    store.replace([], "1")
    store.apply(event("ADDED", body("a", "x", "2", "100m")))
    store.apply(event("ADDED", body("a", "y", "3", "200m")))
    store.apply(event("MODIFIED", body("a", "x", "4", "300m")))
    assert sorted(store.get("a")) == ["200m", "300m"]
    found = (store.find("a", "x"), store.find("a", "nope"), store.find("b", "x"))
    assert found == ("300m", None, None)
    store.apply(event("DELETED", body("a", "x", "5")))
    store.apply(event("DELETED", body("a", "y", "6")))
    store.apply(event("DELETED", body("a", "never-seen", "7")))
    assert store.get("a", []) == ()
    assert len(store) == 0 and store.resource_version == "7"


def test_a_bookmark_moves_the_version_only() -> None:
    store: Store[str] = Store(cpu_of)
    store.replace([("a", "x", "1")], "10")
    store.apply(event("BOOKMARK", {"metadata": {"resourceVersion": "99"}}))
    assert store.resource_version == "99" and store.get("a") == ("1",)


def test_reads_are_snapshots() -> None:
    store: Store[str] = Store(cpu_of)
    store.replace([("a", "x", "1")], "1")
    before = store.get("a")
    store.apply(event("ADDED", body("a", "y", "2", "2")))
    assert before == ("1",) and len(store.get("a")) == 2


def test_an_object_that_cannot_be_projected_is_skipped() -> None:
    store: Store[str] = Store(cpu_of)
    assert store.entry({"metadata": {"namespace": "a", "name": "odd"}}) is None
    store.replace([], "1")
    store.apply(event("ADDED", {"metadata": {"namespace": "a", "name": "odd"}}))
    assert store.get("a") == ()


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(first_s=1, max_s=5)
    assert [backoff.next_s() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next_s() == 1


def test_the_caches_keep_what_the_reconcile_reads() -> None:
    """The same projections the Kopf indexes kept: a ``WorkloadInfo`` per workload, a
    ``Seen`` per recommendation object."""
    deployment = {
        "metadata": {"namespace": "shop", "name": "web", "uid": "u1",
                     "annotations": {"rightsizer.dev/pod-resources": "{}", "other": "x"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}},
    }  # fmt: skip
    _, project = CACHED["deployments"]
    info = project(deployment)
    assert isinstance(info, WorkloadInfo) and info.ref.endswith("web")
    # The admission webhook reads the pod-resources annotation from the cache.
    assert info.annotations == {"rightsizer.dev/pod-resources": "{}"}
    _, project = CACHED[RECOMMENDATIONS]
    rsr = {"metadata": {"namespace": "shop", "name": "deployment-web"}, "spec": {}}
    assert project(rsr).name == "deployment-web"
