"""Which Prometheus endpoints the operator may talk to (pure: parsing and matching).

A policy's URL is parsed strictly — no user information, query, fragment,
percent-encoding, ``.``/``..`` or empty path segments, whitespace or non-ASCII — and put
in one canonical form (lower-case scheme and host, no trailing dot, no default port, no
trailing slash). The operator then sends requests only to that canonical URL, and only
when it lies under an entry of the allow-list set at install: same scheme, host and port,
and a path equal to the entry's path or below it on a segment boundary (``/prom`` allows
``/prom/x``, never ``/prometheus``).

The parser is deliberately stricter than URL libraries, so that what is checked here and
what the HTTP client connects to cannot differ. Refusals name a fixed ``SourceProblem``;
the URL's own text never appears in a message. No I/O, no environment reads.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rightsizer.sources.errors import SourceProblem

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")  # RFC 3986 pchar without pct-encoded


class EndpointError(ValueError):
    """A URL that names no acceptable endpoint; ``problem`` says why, in fixed words."""

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class Endpoint:
    """A Prometheus HTTP API base, canonical: compare with ``==``, connect to ``url``."""

    scheme: str
    host: str
    """Lower case, without a trailing dot; an IPv6 address in brackets."""
    port: int
    path: str
    """``""`` or ``/segment/…`` without a trailing slash."""

    @property
    def url(self) -> str:
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}"

    def under(self, allowed: Endpoint) -> bool:
        """Whether this endpoint is ``allowed`` or below its path on a segment boundary."""
        return (
            (self.scheme, self.host, self.port) == (allowed.scheme, allowed.host, allowed.port)
            and (self.path == allowed.path or self.path.startswith(allowed.path + "/"))
        )  # fmt: skip


def parse_endpoint(text: str) -> Endpoint:
    """``text`` as a canonical endpoint; raises ``EndpointError``."""
    if len(text) > MAX_URL_LENGTH:
        raise EndpointError(SourceProblem.URL_TOO_LONG)
    if any(not "\x21" <= ch <= "\x7e" or ch == "\\" for ch in text):
        raise EndpointError(SourceProblem.URL_CHARACTERS)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise EndpointError(SourceProblem.URL_SCHEME)
    authority, slash, path = rest.partition("/")
    # Checked on the whole URL: a "@" or "?" after the first "/" is just as ambiguous
    # to some clients as one before it.
    if "#" in text:
        raise EndpointError(SourceProblem.URL_FRAGMENT)
    if "?" in text:
        raise EndpointError(SourceProblem.URL_QUERY)
    if "@" in authority:
        raise EndpointError(SourceProblem.URL_USERINFO)
    host, port = _host_and_port(authority, scheme)
    return Endpoint(scheme, host, port, _path(slash + path))


def _host_and_port(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        literal, bracket, after = authority[1:].partition("]")
        if "%" in literal:  # a zone index names an interface of the operator's host
            raise EndpointError(SourceProblem.URL_HOST)
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise EndpointError(SourceProblem.URL_HOST) from None
        if not bracket or (after and not after.startswith(":")):
            raise EndpointError(SourceProblem.URL_HOST)
        host, port_text = f"[{address.compressed}]", after[1:] if after else None
    else:
        name, colon, port_part = authority.partition(":")
        host, port_text = name.lower(), port_part if colon else None
        if host.endswith("."):
            host = host[:-1]
        if not host or len(host) > 253 or not all(_LABEL.fullmatch(x) for x in host.split(".")):
            raise EndpointError(SourceProblem.URL_HOST)
    if port_text is None:
        return host, DEFAULT_PORTS[scheme]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536 or len(port_text) > 5:
        raise EndpointError(SourceProblem.URL_PORT)
    return host, int(port_text)


def _path(path: str) -> str:
    if "%" in path:
        raise EndpointError(SourceProblem.URL_PERCENT_ENCODED)
    path = path.rstrip("/")
    if not path:
        return ""
    segments = path.split("/")[1:]
    if any(s in ("", ".", "..") or not _SEGMENT.fullmatch(s) for s in segments):
        raise EndpointError(SourceProblem.URL_PATH)
    return path


@dataclass(frozen=True)
class AllowList:
    """The Prometheus endpoints this operator may talk to, as configured at install."""

    endpoints: tuple[Endpoint, ...] = ()

    def check(self, url: str) -> Endpoint:
        """The canonical endpoint of ``url`` when allowed; raises ``EndpointError``."""
        endpoint = parse_endpoint(url)
        if not any(endpoint.under(allowed) for allowed in self.endpoints):
            raise EndpointError(SourceProblem.URL_NOT_ALLOWED)
        return endpoint


def parse_allow_list(entries: Iterable[str]) -> AllowList:
    """The install's allow-list; a bad entry raises ``ValueError`` naming it (the
    operator's own configuration, read by the person who installs it)."""
    endpoints = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            endpoints.append(parse_endpoint(entry))
        except EndpointError as exc:
            raise ValueError(f"allow-list entry {entry!r}: {exc.problem.value}") from None
    return AllowList(tuple(endpoints))


def allow_list_from_text(text: str) -> AllowList:
    """Entries separated by commas or whitespace (the environment variable's form)."""
    return parse_allow_list(re.split(r"[,\s]+", text))
