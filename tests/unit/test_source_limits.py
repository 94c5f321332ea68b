"""Servers that would hold a request forever or swamp its memory, on 127.0.0.1: a total
deadline and a response cap end every request with a clear, fixed problem."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rightsizer.cli.main import main
from rightsizer.sources.errors import SourceError, SourceProblem
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from tests.bad_servers import BadPrometheus

ANSWER = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


class Misbehaving:
    """``drip``: headers, then one byte of body per ``drip_every_s``; ``huge``: a body of
    ``huge_bytes`` streamed as fast as the client reads; ``drip_headers``: even the status
    line dribbles."""

    def __init__(self, mode: str, huge_bytes: int = 0, chunked: bool = False) -> None:
        self.mode, self.huge_bytes, self.chunked = mode, huge_bytes, chunked
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner.serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "drip_headers":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
                if self.stop.wait(0.5):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if self.mode == "drip":
            h.send_header("Content-Length", str(len(ANSWER)))
            h.end_headers()
            for byte in ANSWER:
                if self.stop.wait(0.5):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            return
        if not self.chunked:
            h.send_header("Content-Length", str(self.huge_bytes))
        else:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        piece = b"[" * 65536
        sent = 0
        while sent < self.huge_bytes and not self.stop.is_set():
            if self.chunked:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                h.wfile.write(piece)
            sent += len(piece)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[list[Misbehaving]]:
    made: list[Misbehaving] = []
    yield made
    for s in made:
        s.close()


def serve(servers: list[Misbehaving], *args: Any, **kwargs: Any) -> Misbehaving:
    s = Misbehaving(*args, **kwargs)
    servers.append(s)
    return s


def client(url: str, **config: Any) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=url, retries=0, **config))


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_a_dripping_server_meets_the_total_deadline(servers: list[Misbehaving], mode: str) -> None:
    # Each read returns within the socket timeout (a byte every 0.5 s), so only a total
    # deadline ends the request: (1.2 × 1 s + 1 s) + 1 s here, against ~30 s of dripping.
    slow = serve(servers, mode)
    with pytest.raises(SourceError) as caught:
        client(slow.url, timeout_s=1.0).check()
    assert caught.value.problem is SourceProblem.DEADLINE


def test_the_client_s_own_deadline_bounds_every_request(servers: list[Misbehaving]) -> None:
    slow = serve(servers, "drip")
    c = PrometheusClient(
        PrometheusConfig(url=slow.url, retries=0, timeout_s=600.0), time.monotonic() + 1.0
    )
    with pytest.raises(SourceError) as caught:
        c.check()
    assert caught.value.problem is SourceProblem.DEADLINE
    with pytest.raises(SourceError) as again:  # past the deadline: nothing more is sent
        c.check()
    assert again.value.problem is SourceProblem.DEADLINE
    assert c.queries_sent == 1


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_body_is_cut_at_the_cap(servers: list[Misbehaving], chunked: bool) -> None:
    huge = serve(servers, "huge", huge_bytes=2 * 1024**3, chunked=chunked)
    with pytest.raises(SourceError) as caught:
        client(huge.url, max_response_bytes=1024 * 1024).check()
    assert caught.value.problem is SourceProblem.RESPONSE_TOO_LARGE


def test_the_query_budget_stops_sending(servers: list[Misbehaving]) -> None:
    fine = serve(servers, "huge", huge_bytes=0)  # an empty body: not JSON, but answered
    c = client(fine.url, max_queries=2)
    for _ in range(2):
        with pytest.raises(SourceError):
            c.check()
    with pytest.raises(SourceError) as caught:
        c.check()
    assert caught.value.problem is SourceProblem.QUERY_BUDGET
    assert c.queries_sent == 2


def test_report_exits_3_naming_the_deadline(
    servers: list[Misbehaving], capsys: pytest.CaptureFixture[str]
) -> None:
    slow = serve(servers, "drip")
    code = main(["report", "--prometheus", slow.url, "--timeout", "1s", "--retries", "0"])
    assert code == 3
    assert "deadline" in capsys.readouterr().err


def test_report_exits_3_naming_the_cap(
    servers: list[Misbehaving], capsys: pytest.CaptureFixture[str]
) -> None:
    huge = serve(servers, "huge", huge_bytes=2 * 1024**3)
    code = main(["report", "--prometheus", huge.url, "--max-response-mib", "1"])
    assert code == 3
    assert "response size cap" in capsys.readouterr().err


def test_no_socket_is_left_blocked(servers: list[Misbehaving]) -> None:
    """The watchdog's shutdown really ends the read: the client's thread is free again."""
    slow = serve(servers, "drip")
    done = threading.Event()

    def run() -> None:
        with pytest.raises(SourceError):
            client(slow.url, timeout_s=0.5).check()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60)


@pytest.mark.parametrize("mode", ["zzz", "reshape", "no-labels"])
def test_report_exits_3_on_answers_of_the_wrong_shape(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Success answers of the wrong shape (``values: "zzz"``, points that are triples,
    series without ``namespace``/``pod``) fail cleanly, never with a traceback."""
    bad = BadPrometheus()
    try:
        code = main(["report", "--prometheus", f"{bad.url}/{mode}", "--namespace", "x"])
    finally:
        bad.stop()
    assert code == 3
    assert "wrong shape" in capsys.readouterr().err
