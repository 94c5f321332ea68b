"""A list+watch cache of one resource kind, for the kinds with many objects (workloads,
recommendation objects) that Kopf's ``@kopf.index`` cannot take at scale.

Why not Kopf: Kopf runs one worker task per object, and at start-up every worker waits
on one shared ``asyncio.Condition`` until all objects of all indexed kinds are indexed;
each object that joins or leaves the set wakes all waiters, so start-up costs O(N²)
wake-ups (10,000 Deployments: minutes of one full core before any handler ran;
``docs/design.md``, "Workload cache").

What this is: one thread per kind that lists the kind cluster-wide in pages, then
watches it from the list's ``resourceVersion`` with bookmarks; a watch that ends is
resumed from the last version seen; ``410 Gone`` (the version is too old) relists;
any other failure reconnects after a growing pause. It keeps only a small projection of
each object (``project``: the body → what the reconcile reads), per namespace, and
answers ``get(namespace, default)`` like a Kopf index: the values in that namespace.

The pure parts (``Store``, ``lines``, ``Backoff``, ``WatchEvent.parse``) do no I/O;
``ListWatch`` is the adapter's only I/O: list and watch through the official client.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

V = TypeVar("V")
Entry = tuple[str, str, V]
log = logging.getLogger("rightsizer.operator")

#: Objects per list page (the apiserver's own default for paginating clients).
PAGE_SIZE = 500
#: The server ends each watch after this long; it is then resumed from the last version.
WATCH_TIMEOUT_S = 300
#: Read timeout of a watch: longer than the server's, so the server ends it first.
READ_TIMEOUT_S = WATCH_TIMEOUT_S + 30
CONNECT_TIMEOUT_S = 10


class GoneError(Exception):
    """The version to resume from is too old (HTTP 410): list again."""


@dataclass(frozen=True)
class Kind:
    """A resource kind, as the API paths name it (``singular`` for the typed client's
    ``list_<singular>_for_all_namespaces`` of built-in kinds)."""

    group: str
    version: str
    plural: str
    singular: str = ""

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def lister(api: ApiClient, kind: Kind) -> Callable[..., Any]:
    """The official client's cluster-wide list (and watch) of ``kind``."""
    typed = {"apps": client.AppsV1Api, "": client.CoreV1Api}.get(kind.group)
    if typed is not None:
        method = f"list_{kind.singular}_for_all_namespaces"
        return cast(Callable[..., Any], getattr(typed(api), method))
    custom = client.CustomObjectsApi(api)
    return functools.partial(custom.list_cluster_custom_object, kind.group, kind.version,
                             kind.plural)  # fmt: skip


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream."""

    type: str
    object: Mapping[str, Any]

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")

    @classmethod
    def parse(cls, line: bytes | str) -> WatchEvent:
        """Raises ``GoneError`` for the ERROR event that says the version is too old."""
        data = json.loads(line)
        event = cls(str(data.get("type", "")), data.get("object") or {})
        if event.type == "ERROR":
            code = event.object.get("code")
            if code == 410:
                raise GoneError(str(event.object.get("message", "")))
            raise RuntimeError(f"watch error {code}: {event.object.get('message', '')}")
        return event


def lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty newline-separated lines of a byte stream, however it is chunked."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *complete, rest = rest.split(b"\n")
        yield from (line for line in complete if line.strip())
    if rest.strip():
        yield rest


@dataclass
class Backoff:
    """Pause before reconnecting: doubles from ``first_s`` to ``max_s``; ``reset`` after a
    success."""

    first_s: float = 1.0
    max_s: float = 30.0
    current_s: float = 0.0

    def next_s(self) -> float:
        self.current_s = (
            self.first_s if self.current_s <= 0 else min(self.current_s * 2, self.max_s)
        )
        return self.current_s

    def reset(self) -> None:
        self.current_s = 0.0


@dataclass
class Store(Generic[V]):
    """Projections by namespace and name, safe to read from any thread while the watch
    thread writes. Reads answer like a Kopf index: ``get(namespace, default)`` gives the
    values in that namespace (a tuple: a snapshot, unaffected by later events)."""

    project: Callable[[Mapping[str, Any]], V]
    synced: bool = False
    """True once a full list has been stored: before that, reads would miss objects."""
    resource_version: str = ""
    _by_namespace: dict[str, dict[str, V]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def replace(self, entries: Iterable[Entry[V]], resource_version: str) -> None:
        """A full list (its ``entry`` of each object): what it has, and nothing else."""
        fresh: dict[str, dict[str, V]] = {}
        for namespace, name, value in entries:
            fresh.setdefault(namespace, {})[name] = value
        with self._lock:
            self._by_namespace = fresh
            self.resource_version = resource_version
            self.synced = True

    def apply(self, event: WatchEvent) -> None:
        """One watch event (a bookmark only moves the version)."""
        version = event.resource_version
        if event.type in ("ADDED", "MODIFIED"):
            entry = self.entry(event.object)
            if entry is not None:
                namespace, name, value = entry
                with self._lock:
                    self._by_namespace.setdefault(namespace, {})[name] = value
        elif event.type == "DELETED":
            meta = event.object.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
            with self._lock:
                entries = self._by_namespace.get(namespace)
                if entries is not None:
                    entries.pop(name, None)
                    if not entries:
                        del self._by_namespace[namespace]
        if version:
            with self._lock:
                self.resource_version = version

    def get(self, namespace: str, default: Iterable[V] = ()) -> tuple[V, ...]:
        with self._lock:
            entries = self._by_namespace.get(namespace)
            return tuple(entries.values()) if entries else tuple(default)

    def find(self, namespace: str, name: str) -> V | None:
        """One object's projection (the admission webhook's lookup of a pod's owner)."""
        with self._lock:
            return self._by_namespace.get(namespace, {}).get(name)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._by_namespace.values())

    def entry(self, body: Mapping[str, Any]) -> Entry[V] | None:
        """Namespace, name and projection of one object (None: it cannot be projected)."""
        meta = body.get("metadata") or {}
        try:
            value = self.project(body)
        except Exception:  # one odd object must not stop the cache
            log.exception(f"{meta.get('namespace')}/{meta.get('name')} not cached")
            return None
        return str(meta.get("namespace") or ""), str(meta.get("name") or ""), value


class ListWatch(Generic[V]):
    """The thread that keeps ``store`` in line with the API server (cluster-wide)."""

    def __init__(
        self, api: ApiClient, kind: Kind, store: Store[V], *,
        page_size: int = PAGE_SIZE, watch_timeout_s: int = WATCH_TIMEOUT_S,
        backoff: Backoff | None = None,
    ) -> None:  # fmt: skip
        self.kind, self.store = kind, store
        self._lister = lister(api, kind)
        self.page_size, self.watch_timeout_s = page_size, watch_timeout_s
        self.backoff = backoff or Backoff()
        self.lists = 0
        """Full lists done (the first, then one per ``410 Gone``)."""
        self.watches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cache {kind}", daemon=True)

    def start(self) -> ListWatch[V]:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ends the thread at its next event or watch end (it is a daemon thread)."""
        self._stop.set()

    def _run(self) -> None:
        relist = True
        while not self._stop.is_set():
            try:
                if relist:
                    self._list()
                    relist = False
                self._watch(self.store.resource_version)
                self.backoff.reset()
            except GoneError:
                log.info(f"cache of {self.kind}: version too old, listing again")
                relist = True
            except Exception as exc:
                pause = self.backoff.next_s()
                log.warning(
                    f"cache of {self.kind}: {type(exc).__name__}: {exc}; again in {pause:g} s"
                )
                self._stop.wait(pause)

    def _get(self, **options: Any) -> Any:
        """The raw response (``urllib3``), to read as a whole or as a stream."""
        try:
            return self._lister(**options, _preload_content=False)
        except ApiException as exc:
            if exc.status == 410:
                raise GoneError(str(exc.reason)) from None
            raise

    def _list(self) -> None:
        """Every object, page by page; only projections are kept between pages."""
        entries: list[Entry[V]] = []
        token = ""
        version = ""
        while True:
            options: dict[str, Any] = {"limit": self.page_size}
            if token:
                options["_continue"] = token
            response = self._get(**options, _request_timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            try:
                page = json.loads(response.data)
            finally:
                response.release_conn()
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = str(meta.get("continue") or "")
            for body in page.get("items") or []:
                entry = self.store.entry(body)
                if entry is not None:
                    entries.append(entry)
            del page  # one page of full bodies at a time
            if not token:
                break
        self.store.replace(entries, version)
        self.lists += 1

    def _watch(self, version: str) -> None:
        response = self._get(
            watch=True, allow_watch_bookmarks=True, resource_version=version,
            timeout_seconds=self.watch_timeout_s,
            _request_timeout=(CONNECT_TIMEOUT_S, self.watch_timeout_s + 30),
        )  # fmt: skip
        self.watches += 1
        try:
            for line in lines(response.stream(amt=None, decode_content=True)):
                if self._stop.is_set():
                    return
                self.store.apply(WatchEvent.parse(line))
        finally:
            response.release_conn()
