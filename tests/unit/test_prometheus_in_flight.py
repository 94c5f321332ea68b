"""Several queries in flight, uncompressed answers: what a real Prometheus cannot show on
demand (how many requests it holds at once, which headers came, a server that never
answers) is scripted here on 127.0.0.1. The limits of issue 12 still hold per request
and per reader: the deadline, the query budget, whole chunks in time order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest

from rightsizer.engine.usage import ContainerRegistry
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources.errors import SourceError, SourceProblem
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from rightsizer.sources.prometheus_history import HistoryWindow, PrometheusHistory

STEP_S = 60.0


class Server:
    """Answers range queries with one series (value 1 at every step) after ``delay_s``;
    counts requests, the most held at once, and records the request headers."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.hang = threading.Event()  # set: never answer (until closed)
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.active = self.most_active = self.count = 0
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                done = False
                with owner.lock:
                    owner.count += 1
                    owner.active += 1
                    owner.most_active = max(owner.most_active, owner.active)
                    owner.headers.append(dict(self.headers))
                try:
                    if owner.hang.is_set():
                        owner.closing.wait(30)
                        return
                    time.sleep(owner.delay_s)
                    body = json.dumps(owner.answer(form)).encode()
                    # no longer held: the client may send its next query as soon as this
                    # answer has reached it, before this thread gets to ``finally``
                    with owner.lock:
                        owner.active -= 1
                        done = True
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    if not done:
                        with owner.lock:
                            owner.active -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def answer(form: dict[str, list[str]]) -> dict[str, Any]:
        if "step" not in form:
            return {"status": "success", "data": {"resultType": "vector", "result": []}}
        start, end, step = (float(form[k][0]) for k in ("start", "end", "step"))
        values = [[t, "1"] for t in np.arange(start, end + step / 2, step).tolist()]
        metric = {"namespace": "ns", "pod": "web-6d4cf56db6-abcde", "container": "app"}
        series = [{"metric": metric, "values": values}]
        return {"status": "success", "data": {"resultType": "matrix", "result": series}}

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def read_all(client: PrometheusClient, hours: int) -> list[np.ndarray]:
    """The timestamps of every chunk of ``hours`` of history (one chunk per hour)."""
    window = HistoryWindow(0.0, hours * 3600.0 - STEP_S, STEP_S, chunk_s=3600.0)
    chunks = PrometheusHistory(client).chunks("ns", window, ContainerRegistry(), WorkloadResolver())
    return [c.timestamp_s for c in chunks]


def test_answers_are_asked_uncompressed_unless_compression_is_on(server: Server) -> None:
    PrometheusClient(PrometheusConfig(url=server.url)).check()
    assert server.headers[-1]["Accept-Encoding"] == "identity"
    PrometheusClient(PrometheusConfig(url=server.url, compression=True)).check()
    assert "gzip" in server.headers[-1]["Accept-Encoding"]


@pytest.mark.parametrize("in_flight", [1, 3])
def test_queries_in_flight_are_bounded_and_chunks_come_whole_in_order(
    server: Server, in_flight: int
) -> None:
    server.delay_s = 0.2  # long enough for the reader to fill its slots
    client = PrometheusClient(PrometheusConfig(url=server.url, in_flight=in_flight))
    stamps = read_all(client, hours=4)
    assert server.most_active == in_flight
    assert len(stamps) == 4 and server.count == 4 * 3  # CPU, memory, OOM per hour
    for hour, ts in enumerate(stamps):
        # CPU and memory rows of this hour only (the OOM answer's 1s are restarts: kept)
        assert ts.min() == hour * 3600 and ts.max() == (hour + 1) * 3600 - STEP_S
    assert len(client._transports) == in_flight  # one session per request in flight


def test_the_query_budget_holds_with_queries_in_flight(server: Server) -> None:
    client = PrometheusClient(PrometheusConfig(url=server.url, in_flight=4, max_queries=7))
    seen: list[np.ndarray] = []
    window = HistoryWindow(0.0, 10 * 3600.0 - STEP_S, STEP_S, chunk_s=3600.0)
    chunks = PrometheusHistory(client).chunks("ns", window, ContainerRegistry(), WorkloadResolver())
    with pytest.raises(SourceError) as caught:
        seen.extend(chunk.timestamp_s for chunk in chunks)
    assert caught.value.problem is SourceProblem.QUERY_BUDGET
    assert server.count == 7 and client.queries_sent == 7
    assert len(seen) == 2  # whole hours only: the third stopped at its memory query


def test_a_deadline_ends_every_query_in_flight(server: Server) -> None:
    server.hang.set()
    client = PrometheusClient(
        PrometheusConfig(url=server.url, in_flight=3, retries=0, timeout_s=3600.0),
        deadline_monotonic=time.monotonic() + 1.0,
    )
    t0 = time.monotonic()
    with pytest.raises(SourceError) as caught:
        read_all(client, hours=5)
    assert caught.value.problem is SourceProblem.DEADLINE
    # Ended by the 1 s deadline, not the hour-long query timeout (a bound loose enough
    # for any load on a shared machine, yet far from the timeout).
    assert time.monotonic() - t0 < 300
    assert server.count <= 3  # the queries not yet started were never sent


def test_in_flight_is_checked() -> None:
    for bad in (0, 9):
        with pytest.raises(ValueError, match="in flight"):
            PrometheusConfig(url="http://x", in_flight=bad)
