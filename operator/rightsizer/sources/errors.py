"""Errors of usage sources, in words a user can act on.

Every error carries two texts. ``str(error)`` is the *detail* (hosts, HTTP statuses,
Prometheus's own error text) for the person who ran ``rightsizer report`` themselves, on
stderr; credentials are never part of it. ``error.problem`` is one of a closed set of
fixed messages (``SourceProblem``): the only text the operator puts in a policy's status,
its Events and its logs, since a tenant reads those and must learn nothing from them —
no response body, no header value, no exception text.
"""

from __future__ import annotations

from enum import StrEnum


class SourceProblem(StrEnum):
    """What went wrong with a source, as the fixed message a tenant may read."""

    # -- refused by the operator before any request --------------------------------------
    URL_NOT_ALLOWED = (
        "the Prometheus URL is not on the operator's allow-list "
        "(RIGHTSIZER_PROMETHEUS_ALLOWED_URLS); no request was sent"
    )
    URL_SCHEME = "the Prometheus URL must start with http:// or https://; no request was sent"
    URL_USERINFO = (
        "the Prometheus URL must not contain user information (user@host); "
        "use authSecretRef; no request was sent"
    )
    URL_QUERY = "the Prometheus URL must not contain a query (?); no request was sent"
    URL_FRAGMENT = "the Prometheus URL must not contain a fragment (#); no request was sent"
    URL_CHARACTERS = (
        "the Prometheus URL contains whitespace, control, backslash or non-ASCII characters; "
        "no request was sent"
    )
    URL_HOST = "the Prometheus URL has no valid host name or address; no request was sent"
    URL_PORT = "the Prometheus URL has an invalid port; no request was sent"
    URL_PERCENT_ENCODED = (
        "the Prometheus URL's path must not contain percent-encoding; no request was sent"
    )
    URL_PATH = (
        "the Prometheus URL's path must not contain empty, '.' or '..' segments or characters "
        "outside RFC 3986 path characters; no request was sent"
    )
    URL_TOO_LONG = "the Prometheus URL is longer than 2048 characters; no request was sent"
    LABEL_MATCHERS = (
        'labelMatchers must be comma-separated matchers name OP "value"; no request was sent'
    )
    SECRET_UNREADABLE = (
        "the authSecretRef Secret does not exist or the operator may not read it; "
        "no request was sent"
    )
    SECRET_NOT_MARKED = (
        "the authSecretRef Secret is not of type rightsizer.dev/prometheus-auth; "
        "no request was sent"
    )
    SECRET_SERVICE_ACCOUNT_TOKEN = (
        "the authSecretRef Secret is a ServiceAccount token, which is never used as "
        "Prometheus credentials; no request was sent"
    )
    SECRET_NOT_TEXT = "a value of the authSecretRef Secret is not UTF-8 text; no request was sent"
    SECRET_NO_CREDENTIALS = (
        "the authSecretRef Secret has neither a token nor a username; no request was sent"
    )
    TOKEN_WHITESPACE = "the token contains whitespace or a newline; no request was sent"
    TOKEN_CHARACTERS = "the token contains control or non-ASCII characters; no request was sent"
    BASIC_AUTH_CHARACTERS = (
        "the username or password contains control or non-ASCII characters, or the username "
        "a colon; no request was sent"
    )
    # -- talking to Prometheus -----------------------------------------------------------
    UNREACHABLE = "the Prometheus endpoint could not be reached"
    TIMEOUT = "the Prometheus endpoint did not answer in time (after retries)"
    TLS_FAILED = "TLS with the Prometheus endpoint failed (certificate, CA bundle or handshake)"
    RETRIES_EXHAUSTED = "the Prometheus endpoint kept failing (HTTP 429 or 5xx) after retries"
    REQUEST_FAILED = "the request to the Prometheus endpoint failed"
    REDIRECT = "the Prometheus endpoint answered with a redirect, which is not followed"
    HTTP_401 = "HTTP 401 from the Prometheus endpoint: the credentials were rejected"
    HTTP_403 = "HTTP 403 from the Prometheus endpoint: access denied"
    HTTP_404 = "HTTP 404 from the Prometheus endpoint: no Prometheus query API at this URL"
    NO_QUERY_API = (
        "the endpoint does not serve the Prometheus query API at this path: check the URL's "
        "path prefix"
    )
    HTTP_5XX = "the Prometheus endpoint failed with HTTP 5xx (after retries)"
    QUERY_TIMEOUT = "Prometheus timed out evaluating a query"
    NOT_PROMETHEUS_JSON = "the endpoint did not answer with Prometheus JSON"
    QUERY_REJECTED = "Prometheus rejected a query"
    SERVER_LIMIT = (
        "the Prometheus endpoint refused a query for one of its own limits (points, samples "
        "or series per query); raise that limit on the server, or narrow labelMatchers or "
        "the history"
    )
    PARTIAL_DATA = "Prometheus answered with warnings (partial data); nothing was used"
    MALFORMED_RESULT = "Prometheus answered with a malformed result"
    DEADLINE = (
        "the Prometheus endpoint did not send a complete answer before the deadline "
        "(per query, or the reconcile's deadline for reads)"
    )
    RESPONSE_TOO_LARGE = (
        "the Prometheus endpoint answered with more than the response size cap; nothing was used"
    )
    QUERY_BUDGET = (
        "the budget of queries per reconcile is spent; reading resumes at the next reconcile"
    )
    # -- metrics-server and the Kubernetes API -------------------------------------------
    METRICS_NOT_SERVED = (
        "metrics.k8s.io is not served: is metrics-server installed and its APIService available?"
    )
    METRICS_MALFORMED = "metrics-server answered with a malformed PodMetrics object"
    METRICS_TOO_LARGE = "metrics-server answered with more than the response size cap"
    KUBERNETES_REFUSED = "the Kubernetes API refused the operator access"
    KUBERNETES_FAILED = "the Kubernetes API answered with an error"
    KUBERNETES_UNREACHABLE = "the Kubernetes API could not be reached"
    # -- defaults of the error classes ---------------------------------------------------
    INCOMPLETE = "the usage source did not deliver complete data"
    UNAVAILABLE = "the usage source could not be reached"
    REJECTED = "the usage source refused the request"


#: Problems that mean the source was slow or too big, not down: its policy's reads run in
#: the quarantine pool until they succeed again.
LIMIT_PROBLEMS = frozenset(
    {SourceProblem.DEADLINE, SourceProblem.RESPONSE_TOO_LARGE, SourceProblem.TIMEOUT}
)


class SourceError(RuntimeError):
    """A source could not deliver complete data; nothing partial is used."""

    default_problem = SourceProblem.INCOMPLETE

    def __init__(self, detail: str, problem: SourceProblem | None = None) -> None:
        super().__init__(detail)
        self.problem: SourceProblem = problem or self.default_problem


class SourceUnavailableError(SourceError):
    """The source cannot be reached (down, DNS, TLS, timeouts after retries)."""

    default_problem = SourceProblem.UNAVAILABLE


class SourceRejectedError(SourceError):
    """The source refused the request (bad credentials, bad query, limits)."""

    default_problem = SourceProblem.REJECTED


class SourceRefusedError(SourceError):
    """The operator refused to use the source as configured (a URL not on its allow-list,
    credentials not marked for it): no request was sent."""

    default_problem = SourceProblem.URL_NOT_ALLOWED

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(problem.value, problem)
