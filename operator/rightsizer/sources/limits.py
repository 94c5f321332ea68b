"""Limits no HTTP server can stretch: a total deadline and a response-size cap (adapter).

A socket timeout bounds one read, not a request: a server that sends a byte every few
seconds keeps every read short and the request alive forever. So each request gets a
watchdog that, when its deadline passes, shuts down the sockets of the session's
connections (a blocked read then returns at once), and the connections opened after that
are shut at birth (so urllib3's retries cannot start over). Bodies are read streamed and
the read stops at the cap: a 2 GiB answer costs at most the cap in memory.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: The largest response body read by default (after decompression).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_PIECE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SourceLimits:
    """What one policy's reads may cost per reconcile (the operator's settings)."""

    query_timeout_s: float = 60.0
    """Per query (see ``PrometheusConfig.timeout_s``)."""
    max_response_bytes: int = 32 * 1024 * 1024
    """Per answer, after decompression: 32 MiB of JSON is ~3,000 series of a 6 h chunk at
    1 m, and stays far from the operator's 1 GiB memory limit even parsed."""
    max_queries: int = 300
    """Per reconcile: a 90 d first read at 5 m (older, in 30 h queries) and 1 m (last day,
    in 6 h queries) steps takes about 3 × (72 + 4) + 4 queries; more than this resumes at
    the next reconcile."""
    reconcile_deadline_s: float = 120.0
    """All reads of one reconcile together, whatever the servers do."""

    def __post_init__(self) -> None:
        if min(self.query_timeout_s, self.reconcile_deadline_s) <= 0:
            raise ValueError("source timeouts and deadlines must be positive")
        if self.max_response_bytes < 1024 or self.max_queries < 10:
            raise ValueError("the response cap must be ≥ 1 KiB and the query budget ≥ 10")


class BodyTooLargeError(Exception):
    """The response body is larger than the cap (reading stopped there)."""


def read_capped(resp: requests.Response, max_bytes: int) -> bytes:
    """The whole body of a streamed response, or ``BodyTooLargeError`` past ``max_bytes``."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError
    body = bytearray()
    for piece in resp.iter_content(_READ_PIECE_BYTES):
        body += piece
        if len(body) > max_bytes:
            raise BodyTooLargeError
    return bytes(body)


class OpenSockets:
    """The sockets of one session's connections, and whether they are being aborted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._aborted = False

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.add(sock)
            aborted = self._aborted
        if aborted:
            _shut(sock)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            _shut(sock)

    def resume(self) -> None:
        with self._lock:
            self._aborted = False
            self._sockets = {s for s in self._sockets if s.fileno() != -1}


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def track_sockets(session: requests.Session, url: str) -> OpenSockets:
    """Register the sockets of ``session``'s connections to ``url``'s scheme (direct
    connections; the operator never uses a proxy)."""
    sockets = OpenSockets()

    class TrackedHTTPConnection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            sockets.add(self.sock)

    class TrackedHTTPSConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            sockets.add(self.sock)

    class TrackedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = TrackedHTTPConnection

    class TrackedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = TrackedHTTPSConnection

    adapter: Any = session.get_adapter(url)
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": TrackedHTTPConnectionPool,
        "https": TrackedHTTPSConnectionPool,
    }
    return sockets


class SocketWatchdog:
    """``with SocketWatchdog(sockets, seconds):`` — aborts the sockets if the block is
    still running after ``seconds``; ``fired`` tells whether it did."""

    def __init__(self, sockets: OpenSockets, seconds: float) -> None:
        self._sockets = sockets
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self.fired = False

    def _fire(self) -> None:
        self.fired = True
        self._sockets.abort()

    def __enter__(self) -> SocketWatchdog:
        self._sockets.resume()
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self._timer.cancel()
