"""An HTTP server on 127.0.0.1 that misbehaves as Prometheus on demand, by path prefix:

- ``/drip``: headers, then the body one byte per ``drip_every_s``;
- ``/drip-headers``: even the status line dribbles;
- ``/huge``: a body of ``huge_bytes`` (default 2 GiB) as fast as it is read;
- ``/zzz``: success, but range series with ``"values": "zzz"``;
- ``/reshape``: success, but range series whose points are triples;
- ``/no-labels``: success, but series with a namespace and no ``pod`` or ``container``.

Anything else answers an empty success. Every request is counted per prefix.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


def _answer(mode: str, path: str) -> dict[str, Any]:
    ranged = path.endswith("/query_range")
    labels = {"namespace": "x", "pod": "p", "container": "c", "resource": "cpu"}
    if mode == "no-labels":  # namespace only: no pod, no container
        labels = {"namespace": "x", "owner_kind": "ReplicaSet", "owner_name": "x"}
    elif mode not in ("zzz", "reshape"):
        return EMPTY
    if not ranged:
        series = [{"metric": labels, "value": [1, "1"]}]
        return {"status": "success", "data": {"resultType": "vector", "result": series}}
    values: Any = [[1, "1"]]
    if mode == "zzz":
        values = "zzz"
    elif mode == "reshape":
        values = [[1, "2", "3"]]
    series = [{"metric": labels, "values": values}]
    return {"status": "success", "data": {"resultType": "matrix", "result": series}}


class BadPrometheus:
    def __init__(self, drip_every_s: float = 5.0, huge_bytes: int = 2 * 1024**3) -> None:
        self.drip_every_s, self.huge_bytes = drip_every_s, huge_bytes
        self.requests: Counter[str] = Counter()
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                mode = self.path.strip("/").split("/")[0]
                owner.requests[mode] += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner.serve(self, mode)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, h: BaseHTTPRequestHandler, mode: str) -> None:
        if mode == "drip-headers":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
                if self.stopping.wait(self.drip_every_s):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            return
        body = json.dumps(_answer(mode, h.path)).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if mode == "drip":
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            for byte in body:
                if self.stopping.wait(self.drip_every_s):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            return
        if mode == "huge":
            h.send_header("Content-Length", str(self.huge_bytes))
            h.end_headers()
            piece, sent = b"[" * 65536, 0
            while sent < self.huge_bytes and not self.stopping.is_set():
                h.wfile.write(piece)
                sent += len(piece)
            return
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
