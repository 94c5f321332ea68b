"""Faults a real Prometheus cannot produce on demand, from a scripted HTTP server on
127.0.0.1: errors, retries, partial answers, slowness, auth. Every one must end in a clear
error — never in a report that looks complete."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from rightsizer.cli.main import main
from rightsizer.sources.errors import (
    SourceError,
    SourceProblem,
    SourceRejectedError,
    SourceUnavailableError,
)
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig

Reply = tuple[int, dict[str, Any] | str]
OK: Reply = (200, {"status": "success", "data": {"resultType": "vector", "result": []}})


class Fake:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: Callable[[int], Reply] = lambda n: OK
        self.delay_s = 0.0
        self.headers: dict[str, str] = {}


@pytest.fixture
def fake() -> Iterator[tuple[Fake, str]]:
    state = Fake()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            state.requests.append(
                {"method": "POST", "path": self.path, "form": parse_qs(body),
                 "headers": dict(self.headers)}
            )  # fmt: skip
            time.sleep(state.delay_s)
            status, payload = state.reply(len(state.requests))
            data = payload if isinstance(payload, str) else json.dumps(payload)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in state.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data.encode())
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client(url: str, **kw: Any) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=url, backoff_s=0.0, **kw))


def test_queries_are_posted_as_a_form_body(fake: tuple[Fake, str]) -> None:
    state, url = fake
    long_query = "up{" + ",".join(f'pod!="p{i}"' for i in range(3000)) + "}"
    client(url).query_range(long_query, 0, 600, 60)
    req = state.requests[-1]
    assert req["method"] == "POST"
    assert req["path"] == "/api/v1/query_range"  # nothing in the URL grows with the query
    assert req["form"]["query"] == [long_query]
    assert req["form"]["step"] == ["60.0"]


def test_server_errors_are_retried_then_reported(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.reply = lambda n: (503, "overloaded")
    with pytest.raises(SourceUnavailableError, match=r"HTTP 503, after 2 retries"):
        client(url, retries=2).query("up", 0)
    assert len(state.requests) == 3


def test_a_retry_that_succeeds_is_transparent(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.reply = lambda n: (503, "overloaded") if n == 1 else OK
    assert client(url, retries=2).query("up", 0) == []
    assert len(state.requests) == 2


def test_partial_data_is_an_error(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.reply = lambda n: (200, {**OK[1], "warnings": ["store eu-1 unavailable"]})  # type: ignore[dict-item]
    with pytest.raises(SourceError, match=r"partial.*store eu-1 unavailable"):
        client(url).query("up", 0)


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        ((401, "no"), SourceRejectedError, "rejected the credentials"),
        ((403, "no"), SourceRejectedError, "rejected the credentials"),
        ((404, "no"), SourceRejectedError, "no Prometheus query API"),
        ((200, "<html>login</html>"), SourceRejectedError, "not Prometheus JSON"),
        ((400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
         SourceRejectedError, "parse error"),
        ((422, {"status": "error", "errorType": "execution",
                "error": "exceeded maximum resolution of 11,000 points"}),
         SourceRejectedError, "11,000 points"),
        ((503, {"status": "error", "errorType": "timeout", "error": "query timed out"}),
         SourceUnavailableError, "query timed out"),
        ((200, {"status": "success", "data": {}}), SourceError, "malformed"),
    ],
)  # fmt: skip
def test_errors_are_readable(
    fake: tuple[Fake, str], reply: Reply, error: type[Exception], message: str
) -> None:
    state, url = fake
    state.reply = lambda n: reply
    with pytest.raises(error, match=message):
        client(url, retries=0).query("up", 0)


def test_slow_prometheus_times_out_after_retries(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.delay_s = 2.5
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError, match=r"did not answer within|kept failing"):
        client(url, retries=1, timeout_s=0.5).query("up", 0)
    assert len(state.requests) == 2
    assert time.monotonic() - t0 < 10


def test_credentials_and_headers_are_sent(fake: tuple[Fake, str]) -> None:
    state, url = fake
    client(url, bearer_token="s3cret", headers={"X-Scope-OrgID": "team-a"}).query("up", 0)
    headers = state.requests[-1]["headers"]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["X-Scope-OrgID"] == "team-a"
    client(url, basic_auth=("me", "pw")).query("up", 0)
    assert state.requests[-1]["headers"]["Authorization"].startswith("Basic ")


def test_token_never_shows_in_repr() -> None:
    config = PrometheusConfig(url="http://x", bearer_token="s3cret", basic_auth=("u", "pw"))
    assert "s3cret" not in repr(config)
    assert "pw" not in repr(config)


def test_report_cli_fails_with_exit_3_and_prints_nothing(
    fake: tuple[Fake, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, url = fake
    # the connection check succeeds, then the namespace list comes back partial
    state.reply = lambda n: OK if n == 1 else (200, {**OK[1], "warnings": ["partial"]})  # type: ignore[dict-item]
    code = main(["report", "--prometheus", url, "--retries", "0"])
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert "partial" in err


def test_bad_label_matcher_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "--prometheus", "http://127.0.0.1:1", "--label-matcher", "cluster=prod"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "not a label matcher" in err


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ((401, "no"), SourceProblem.HTTP_401),
        ((403, "no"), SourceProblem.HTTP_403),
        ((404, "no"), SourceProblem.HTTP_404),
        ((400, 'unsupported path requested: "/x/api/v1/query"'), SourceProblem.NO_QUERY_API),
        ((200, "INTERNAL-ONLY-PAGE secret=hunter2"), SourceProblem.NOT_PROMETHEUS_JSON),
        ((400, {"status": "error", "error": "secret=hunter2"}), SourceProblem.QUERY_REJECTED),
        ((422, {"status": "error", "errorType": "422",
                "error": "cannot select more than -search.maxSamplesPerQuery=9 samples"}),
         SourceProblem.SERVER_LIMIT),
        ((500, "secret=hunter2"), SourceProblem.HTTP_5XX),
        ((503, {"status": "error", "errorType": "timeout", "error": "x"}),
         SourceProblem.QUERY_TIMEOUT),
        ((200, {**OK[1], "warnings": ["secret=hunter2"]}), SourceProblem.PARTIAL_DATA),
        ((200, {"status": "success", "data": {}}), SourceProblem.MALFORMED_RESULT),
    ],
)  # fmt: skip
def test_every_error_names_a_fixed_problem_without_the_body(
    fake: tuple[Fake, str], reply: Reply, problem: SourceProblem
) -> None:
    state, url = fake
    state.reply = lambda n: reply
    with pytest.raises(SourceError) as err:
        client(url, retries=0).query("up", 0)
    assert err.value.problem is problem
    assert "hunter2" not in err.value.problem.value


@pytest.mark.parametrize("token", ["FILE-SECRET-1\n", " FILE-SECRET-1", "FILE\r\nX: y", "é"])
def test_a_bad_token_is_refused_before_any_request(fake: tuple[Fake, str], token: str) -> None:
    state, url = fake
    with pytest.raises(SourceRejectedError) as err:
        client(url, bearer_token=token).query("up", 0)
    assert err.value.problem in (SourceProblem.TOKEN_WHITESPACE, SourceProblem.TOKEN_CHARACTERS)
    assert token.strip() not in str(err.value)
    assert state.requests == []


def test_redirects_are_not_followed(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.reply = lambda n: (307, "")
    state.headers = {"Location": f"{url}/internal/admin"}
    with pytest.raises(SourceRejectedError) as err:
        client(url, bearer_token="s3cret").query("up", 0)
    assert err.value.problem is SourceProblem.REDIRECT
    assert [r["path"] for r in state.requests] == ["/api/v1/query"]


def test_an_echoed_token_never_reaches_the_report_s_stderr(
    fake: tuple[Fake, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = fake
    # echoed where the excerpt of the body is cut off
    state.reply = lambda n: (
        200,
        "x" * 180 + f"you sent {state.requests[-1]['headers']['Authorization']}",
    )
    monkeypatch.setenv("RIGHTSIZER_PROMETHEUS_TOKEN", "ECHOED-TOKEN-42")
    code = main(["report", "--prometheus", url, "--retries", "0"])
    _, err = capsys.readouterr()
    assert code == 3
    assert "not Prometheus JSON" in err  # the detail stays for the person who ran it
    assert "ECHO" not in err  # not even the piece before the 200-character cut
    assert state.requests[-1]["headers"]["Authorization"] == "Bearer ECHOED-TOKEN-42"
