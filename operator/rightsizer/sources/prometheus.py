"""Prometheus HTTP access for history queries, on top of ``prometheus-api-client``.

``PrometheusConnect`` brings the session, auth, TLS and retry set-up; its query methods
put the PromQL into the URL even with ``method="POST"``, which is what makes big clusters
hit HTTP 414, so queries here are sent as a form body. Responses are checked completely:
an error status, a ``warnings`` field (partial data) or a malformed body raise a
``SourceError`` — a report is never built from half an answer.

Every request has limits a server cannot stretch (``limits.py``): a total deadline (a
watchdog shuts the sockets down when it passes, whether the server is silent or drips a
byte at a time), a cap on the response body (read streamed, never buffered beyond the
cap) and a budget of queries per client.

Answers are asked for uncompressed by default: gzip costs Prometheus about half of its
CPU on history queries, for a link (loopback, in-cluster) that is rarely the bottleneck;
``compression=True`` asks for gzip again (slow links). A client may be used from several
threads at once: each thread gets its own HTTP session (and its own sockets, so one
request's watchdog never aborts another's), and the budget is counted under a lock.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from rightsizer.sources.credentials import basic_auth_problem, token_problem
from rightsizer.sources.errors import (
    SourceError,
    SourceProblem,
    SourceRejectedError,
    SourceUnavailableError,
)
from rightsizer.sources.limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
    BodyTooLargeError,
    OpenSockets,
    SocketWatchdog,
    read_capped,
    track_sockets,
)
from rightsizer.sources.matrix import decode_matrix
from rightsizer.sources.server_limits import limit_message, server_limit

#: How VictoriaMetrics answers a path it does not serve (HTTP 400, plain text).
_UNSUPPORTED_PATH = b"unsupported path requested"

#: Prometheus refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES = 11_000


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    verify_tls: bool = True
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    label_matchers: str = ""
    """Extra matchers on every series, e.g. ``cluster="prod"`` for a shared Prometheus."""
    timeout_s: float = 60.0
    """Per query: Prometheus's own evaluation timeout; each attempt's socket timeout is
    1.2 × this + 1 s, and the whole query (all attempts, headers and body, however slowly
    they come) ends at (retries + 1) × that + 1 s."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """The largest response body read (after decompression); beyond it the query fails."""
    max_queries: int | None = None
    """The most queries this client sends (None: no budget)."""
    retries: int = 3
    backoff_s: float = 0.5
    trust_env: bool = True
    """Whether proxies and ``.netrc`` credentials come from the environment (the
    command line: yes; the operator: no, it talks only to the URL it checked)."""
    compression: bool = False
    """Ask for gzip answers (``Accept-Encoding: gzip``): less on the wire, about twice
    Prometheus's CPU. Off: ``identity``, for loopback and in-cluster links."""
    in_flight: int = 2
    """Queries a history read keeps in flight at once (one Prometheus query uses one core)."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL must start with http:// or https://: {self.url!r}")
        if self.timeout_s <= 0 or self.retries < 0 or self.backoff_s < 0:
            raise ValueError("timeout must be positive; retries and backoff not negative")
        if self.max_response_bytes <= 0 or (self.max_queries is not None and self.max_queries < 1):
            raise ValueError("the response cap and the query budget must be positive")
        if not 1 <= self.in_flight <= 8:
            raise ValueError("queries in flight must be between 1 and 8")


Result = list[dict[str, Any]]


class PrometheusClient:
    """Instant and range queries, POSTed as a form body, with retries and checks."""

    def __init__(self, config: PrometheusConfig, deadline_monotonic: float | None = None) -> None:
        """``deadline_monotonic``: no request of this client goes past it (``time.monotonic``
        clock); e.g. the end of a reconcile's time for reads."""
        self.config = config
        self.deadline_monotonic = deadline_monotonic
        self.url = config.url.rstrip("/")
        # Checked before any request: the HTTP library's own error would quote the header.
        problem = (token_problem(config.bearer_token) if config.bearer_token else None) or (
            basic_auth_problem(*config.basic_auth) if config.basic_auth else None
        )
        if problem is not None:
            raise SourceRejectedError(problem.value, problem)
        headers = {"Accept-Encoding": "gzip" if config.compression else "identity"}
        headers.update(config.headers)
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        self._headers = headers
        self._lock = threading.Lock()
        self._idle: list[_Transport] = []
        self._transports: list[_Transport] = []
        self._release(self._acquire())  # built (and checked) at once
        self.queries_sent = 0
        self.store: str | None = None
        """``prometheus`` or ``victoriametrics``, as told by the first successful answer
        (VictoriaMetrics adds ``stats.seriesFetched`` to every answer); None before."""

    def _acquire(self) -> _Transport:
        """A session and its sockets for one request, used by nobody else meanwhile: as
        many exist as requests were ever in flight at once."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        transport = _Transport(self.config, self.url, self._headers)
        with self._lock:
            self._transports.append(transport)
        return transport

    def _release(self, transport: _Transport) -> None:
        with self._lock:
            self._idle.append(transport)

    def close(self) -> None:
        with self._lock:
            transports, self._transports, self._idle = self._transports, [], []
        for transport in transports:
            transport.close()

    @property
    def attempt_timeout_s(self) -> float:
        """One attempt's socket timeout: a little longer than Prometheus's own query timeout,
        which answers first."""
        return self.config.timeout_s * 1.2 + 1

    @property
    def request_deadline_s(self) -> float:
        """The most one query may take, all attempts, headers and body included (a second
        more than its attempts' timeouts, so that a plain timeout is reported as such)."""
        return (self.config.retries + 1) * self.attempt_timeout_s + 1

    def _request_deadline_s(self) -> float:
        allowed = self.request_deadline_s
        if self.deadline_monotonic is not None:
            allowed = min(allowed, self.deadline_monotonic - time.monotonic())
        return allowed

    def _post(self, path: str, data: dict[str, str], method: str = "POST") -> Any:
        budget = self.config.max_queries
        allowed_s = self._request_deadline_s()
        with self._lock:
            if budget is not None and self.queries_sent >= budget:
                raise QueryBudgetExhaustedError(
                    f"the budget of {budget} queries for this read is spent",
                    SourceProblem.QUERY_BUDGET,
                )
            if allowed_s <= 0:
                raise SourceUnavailableError(self._past_deadline(), SourceProblem.DEADLINE)
            self.queries_sent += 1
        data = {**data, "timeout": f"{int(self.config.timeout_s)}s"}
        transport = self._acquire()
        try:
            resp, raw = self._send_watched(transport, path, data, allowed_s, method)
        finally:
            self._release(transport)
        query = data.get("query", "") or f"{path} of {data.get('match[]', '')}"
        return self._check(
            resp, raw, query, path.endswith("/query_range"), path.endswith("/values")
        )

    def _send_watched(
        self, transport: _Transport, path: str, data: dict[str, str], allowed_s: float,
        method: str = "POST",
    ) -> tuple[Any, bytes]:  # fmt: skip
        """``_send`` under the request's watchdog, whose firing is reported as the deadline."""
        watchdog = SocketWatchdog(transport.sockets, allowed_s)
        try:
            with watchdog:
                resp, raw = self._send(transport.session, path, data, allowed_s, method)
        except BodyTooLargeError:
            raise SourceRejectedError(
                f"Prometheus at {self.url} answered with more than "
                f"{self.config.max_response_bytes} bytes (the response size cap)",
                SourceProblem.RESPONSE_TOO_LARGE,
            ) from None
        except (SourceError, requests.exceptions.RequestException, OSError) as exc:
            # What the aborted sockets made the request fail with; or the socket timeout,
            # when the deadline made it shorter than an attempt's and it fired first.
            cut_by_deadline = (
                isinstance(exc, SourceError)
                and exc.problem is SourceProblem.TIMEOUT
                and allowed_s < self.attempt_timeout_s
            )
            if watchdog.fired or cut_by_deadline:
                raise SourceUnavailableError(
                    self._past_deadline(), SourceProblem.DEADLINE
                ) from None
            raise
        if watchdog.fired:  # the body may look complete, cut short at a boundary
            raise SourceUnavailableError(self._past_deadline(), SourceProblem.DEADLINE)
        return resp, raw

    def _past_deadline(self) -> str:
        return (
            f"Prometheus at {self.url} did not send a complete answer before the deadline "
            f"({self.request_deadline_s:g} s per query"
            + (", or the reconcile's deadline for reads)" if self.deadline_monotonic else ")")
        )

    def _send(
        self, session: requests.Session, path: str, data: dict[str, str], allowed_s: float,
        method: str = "POST",
    ) -> tuple[Any, bytes]:  # fmt: skip
        unavailable = SourceUnavailableError
        try:
            resp = session.request(
                method,
                f"{self.url}{path}",
                data=data if method == "POST" else None,
                params=data if method != "POST" else None,
                headers=self._headers,
                auth=self.config.basic_auth,
                timeout=min(self.attempt_timeout_s, allowed_s),
                # the URL was checked, a redirect's target would not be
                allow_redirects=False,
                stream=True,
            )
            try:
                raw = read_capped(resp, self.config.max_response_bytes)
            finally:
                resp.close()
        except BodyTooLargeError:
            raise
        except requests.exceptions.SSLError as exc:
            raise unavailable(
                self._redact(f"TLS error talking to Prometheus at {self.url}: {exc}"),
                SourceProblem.TLS_FAILED,
            ) from None
        except requests.exceptions.RetryError as exc:
            raise unavailable(
                self._redact(
                    f"Prometheus at {self.url} kept failing after {self.config.retries} "
                    f"retries: {exc}"
                ),
                SourceProblem.RETRIES_EXHAUSTED,
            ) from None
        except requests.exceptions.Timeout:
            raise unavailable(self._timed_out(), SourceProblem.TIMEOUT) from None
        except requests.exceptions.ConnectionError as exc:
            if "timed out" in str(exc):  # a read timeout on the last retry
                raise unavailable(self._timed_out(), SourceProblem.TIMEOUT) from None
            raise unavailable(
                self._redact(f"cannot reach Prometheus at {self.url}: {_root(exc)}"),
                SourceProblem.UNREACHABLE,
            ) from None
        except (requests.exceptions.RequestException, OSError) as exc:
            # Only the kind: such messages may quote a header value.
            raise unavailable(
                f"request to Prometheus at {self.url} failed: {type(exc).__name__}",
                SourceProblem.REQUEST_FAILED,
            ) from None
        return resp, raw

    def _timed_out(self) -> str:
        return (
            f"Prometheus at {self.url} did not answer within {self.config.timeout_s:g} s "
            f"(after {self.config.retries} retries)"
        )

    def _redact(self, text: str) -> str:
        """``text`` without the credentials (an endpoint may echo what it was sent)."""
        secrets = [self.config.bearer_token or ""]
        if self.config.basic_auth:
            secrets += list(self.config.basic_auth)
        secrets += list(self.config.headers.values())
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text

    def _excerpt(self, raw: bytes) -> str:
        """The body's start, for the CLI's detail: redacted first, so no cut-off piece of
        a credential is left."""
        return self._redact(raw[:4096].decode("utf-8", "replace"))[:200]

    def _check(
        self, resp: requests.Response, raw: bytes, query: str, matrix: bool = False,
        values: bool = False,
    ) -> Any:  # fmt: skip
        code = resp.status_code
        rejected = SourceRejectedError
        if code in (401, 403):
            raise rejected(
                f"Prometheus at {self.url} rejected the credentials (HTTP {code})",
                SourceProblem.HTTP_401 if code == 401 else SourceProblem.HTTP_403,
            )
        if code == 404:
            raise rejected(
                f"{self.url} has no Prometheus query API (HTTP 404): check the URL and path prefix",
                SourceProblem.HTTP_404,
            )
        if 300 <= code < 400:
            raise rejected(
                f"Prometheus at {self.url} answered with a redirect (HTTP {code}), not followed",
                SourceProblem.REDIRECT,
            )
        try:
            # range answers: values straight into arrays where the body has Prometheus's
            # canonical form (matrix.py), else (and for everything else) the ordinary way
            body = decode_matrix(raw) if matrix and code == 200 else None
            if body is None:
                body = orjson.loads(raw)
        except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
            body = None
        timed_out = isinstance(body, dict) and body.get("errorType") == "timeout"
        if code >= 500 or timed_out:
            detail = body.get("error", "") if isinstance(body, dict) else self._excerpt(raw)
            raise SourceUnavailableError(
                self._redact(
                    f"Prometheus at {self.url} failed (HTTP {code}, after {self.config.retries} "
                    f"retries): {detail!s}; query: {query}"
                ),
                SourceProblem.QUERY_TIMEOUT if timed_out else SourceProblem.HTTP_5XX,
            )
        if not isinstance(body, dict) and code == 400 and raw.startswith(_UNSUPPORTED_PATH):
            raise rejected(  # VictoriaMetrics' answer to a path it does not serve
                f"{self.url} has no Prometheus query API (HTTP 400, unsupported path): "
                "check the URL and path prefix",
                SourceProblem.NO_QUERY_API,
            )
        if not isinstance(body, dict):
            raise rejected(
                self._redact(
                    f"Prometheus at {self.url} answered HTTP {code} with a body that is not "
                    f"Prometheus JSON: {self._excerpt(raw)!r}"
                ),
                SourceProblem.NOT_PROMETHEUS_JSON,
            )
        if code != 200 or body.get("status") != "success":
            error = body.get("error", resp.reason)
            limit = server_limit(str(error))
            if limit is not None:
                raise rejected(
                    self._redact(f"{limit_message(self.url, limit)}; query: {query}"),
                    SourceProblem.SERVER_LIMIT,
                )
            raise rejected(
                self._redact(f"Prometheus query failed (HTTP {code}): {error}; query: {query}"),
                SourceProblem.QUERY_REJECTED,
            )
        if body.get("warnings"):
            raise SourceError(
                self._redact(
                    f"Prometheus answered with warnings (the data may be partial): "
                    f"{'; '.join(map(str, body['warnings']))}; query: {query}"
                ),
                SourceProblem.PARTIAL_DATA,
            )
        data = body.get("data")
        if values:  # label values: a list of strings
            if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
                raise SourceError(
                    f"malformed Prometheus response for {query}", SourceProblem.MALFORMED_RESULT
                )
            return data
        if self.store is None:
            self.store = store_of(body)
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise SourceError(
                f"malformed Prometheus response for query {query}", SourceProblem.MALFORMED_RESULT
            )
        return data["result"]

    def query(self, expr: str, at_s: float) -> Result:
        result: Result = self._post("/api/v1/query", {"query": expr, "time": _fmt(at_s)})
        return result

    def query_range(self, expr: str, start_s: float, end_s: float, step_s: float) -> Result:
        points = int((end_s - start_s) // step_s) + 1
        if points > MAX_POINTS_PER_SERIES:
            raise ValueError(f"range query of {points} points exceeds Prometheus's limit")
        result: Result = self._post(
            "/api/v1/query_range",
            {"query": expr, "start": _fmt(start_s), "end": _fmt(end_s), "step": _fmt(step_s)},
        )
        return result

    def label_values(self, label: str, match: str, start_s: float, end_s: float) -> list[str]:
        """Values of ``label`` among the series ``match`` selects with samples in
        ``[start_s, end_s]``, read from the index alone (no sample is decoded). A store may
        answer with more (Prometheus: every series of the blocks the range touches), never
        with fewer."""
        data = {"match[]": match, "start": _fmt(start_s), "end": _fmt(end_s)}
        result: list[str] = self._post(f"/api/v1/label/{label}/values", data, method="GET")
        return result

    def check(self) -> None:
        """Fail early with a clear message when Prometheus is unreachable or refuses us."""
        self.query("vector(1)", 0.0)


class _Transport:
    """One HTTP session with its retries, auth and TLS set-up, and its tracked sockets:
    used by one thread."""

    def __init__(self, config: PrometheusConfig, url: str, headers: dict[str, str]) -> None:
        retry = Retry(
            total=config.retries,
            connect=config.retries,
            read=config.retries,
            backoff_factor=config.backoff_s,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),  # queries are idempotent
            raise_on_status=False,
        )
        self.connect = PrometheusConnect(
            url=url,
            headers=headers,
            disable_ssl=not config.verify_tls,
            retry=retry,
            auth=config.basic_auth,
            timeout=math.ceil(config.timeout_s),
            method="POST",
        )
        self.session: requests.Session = self.connect._session
        self.session.trust_env = config.trust_env
        self.sockets: OpenSockets = track_sockets(self.session, url)
        if config.ca_bundle and config.verify_tls:
            self.session.verify = config.ca_bundle

    def close(self) -> None:
        self.connect.close()


class QueryBudgetExhaustedError(SourceError):
    """The client's budget of queries is spent (nothing more was sent)."""

    default_problem = SourceProblem.QUERY_BUDGET


def store_of(body: dict[str, Any]) -> str:
    """Which kind of store wrote a successful answer (pure)."""
    stats = body.get("stats")
    if isinstance(stats, dict) and "seriesFetched" in stats:
        return "victoriametrics"
    return "prometheus"


def _fmt(x: float) -> str:
    return repr(float(x))


def _root(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc)
