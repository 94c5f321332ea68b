"""The Prometheus allow-list: strict parsing, canonical form and segment-boundary matching."""

from __future__ import annotations

import pytest

from rightsizer.sources.endpoints import (
    AllowList,
    Endpoint,
    EndpointError,
    allow_list_from_text,
    parse_endpoint,
)
from rightsizer.sources.errors import SourceProblem as P

ALLOWED = allow_list_from_text(
    "http://prometheus.monitoring:9090, https://Thanos.Example.COM/api/prom/ http://127.0.0.1:29290"
)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://prometheus.monitoring:9090", "http://prometheus.monitoring:9090"),
        ("HTTP://Prometheus.Monitoring:9090/", "http://prometheus.monitoring:9090"),
        ("http://prometheus.monitoring.:9090", "http://prometheus.monitoring:9090"),
        ("https://thanos.example.com:443/api/prom", "https://thanos.example.com/api/prom"),
        ("https://thanos.example.com/api/prom/", "https://thanos.example.com/api/prom"),
        ("https://thanos.example.com/api/prom/tenant-1", "https://thanos.example.com/api/prom/tenant-1"),
        ("http://127.0.0.1:29290", "http://127.0.0.1:29290"),
    ],
)  # fmt: skip
def test_allowed_urls_come_back_canonical(url: str, canonical: str) -> None:
    assert ALLOWED.check(url).url == canonical


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        # the attacks
        ("http://127.0.0.1:15911/internal/admin#", P.URL_FRAGMENT),
        ("http://127.0.0.1:15911/internal/admin", P.URL_NOT_ALLOWED),
        ("http://127.0.0.1:8080/metrics#", P.URL_FRAGMENT),
        ("http://127.0.0.1:8080", P.URL_NOT_ALLOWED),  # the operator's own metrics port
        ("http://prometheus.monitoring:9090@evil.example", P.URL_USERINFO),
        ("http://prometheus.monitoring@evil.example:9090", P.URL_USERINFO),
        ("http://user:pw@prometheus.monitoring:9090", P.URL_USERINFO),
        ("http://prometheus.monitoring.evil.example:9090", P.URL_NOT_ALLOWED),
        ("http://prometheus.monitoring:90901", P.URL_PORT),
        ("http://prometheus.monitoring:9091", P.URL_NOT_ALLOWED),
        ("http://prometheus.monitoring", P.URL_NOT_ALLOWED),  # port 80, not 9090
        ("https://prometheus.monitoring:9090", P.URL_NOT_ALLOWED),  # other scheme
        ("http://thanos.example.com/api/prom", P.URL_NOT_ALLOWED),  # https only
        # path prefix on segment boundaries, no dot segments, no percent-encoding
        ("https://thanos.example.com/api/prometheus", P.URL_NOT_ALLOWED),
        ("https://thanos.example.com/api/prom-evil", P.URL_NOT_ALLOWED),
        ("https://thanos.example.com/api", P.URL_NOT_ALLOWED),
        ("https://thanos.example.com/api/prom/../../admin", P.URL_PATH),
        ("https://thanos.example.com/api/prom/./x", P.URL_PATH),
        ("https://thanos.example.com/api/prom//x", P.URL_PATH),
        ("https://thanos.example.com/api/prom/%2e%2e/admin", P.URL_PERCENT_ENCODED),
        ("https://thanos.example.com/api/%70rom", P.URL_PERCENT_ENCODED),
        ("https://thanos.example.com/api/prom/x<y", P.URL_PATH),
        ("http://prometheus%2emonitoring:9090", P.URL_HOST),
        # queries, fragments, odd characters, schemes
        ("http://prometheus.monitoring:9090/?x=1", P.URL_QUERY),
        ("http://prometheus.monitoring:9090?", P.URL_QUERY),
        ("http://prometheus.monitoring:9090/#frag", P.URL_FRAGMENT),
        ("http://prometheus.monitoring:9090/a b", P.URL_CHARACTERS),
        ("http://prometheus.monitoring:9090/\n", P.URL_CHARACTERS),
        ("http://prometheus.monitoring:9090\\@evil", P.URL_CHARACTERS),
        ("http://prometheüs.monitoring:9090", P.URL_CHARACTERS),
        ("ftp://prometheus.monitoring:9090", P.URL_SCHEME),
        ("prometheus.monitoring:9090", P.URL_SCHEME),
        ("http:/prometheus.monitoring:9090", P.URL_SCHEME),
        ("http://:9090", P.URL_HOST),
        ("http://prometheus.monitoring:", P.URL_PORT),
        ("http://prometheus.monitoring:0", P.URL_PORT),
        ("http://prometheus.monitoring:+9090", P.URL_PORT),
        ("http://prometheus..monitoring:9090", P.URL_HOST),
        ("http://[::1]:9090", P.URL_NOT_ALLOWED),
        ("http://[::1%eth0]:9090", P.URL_HOST),
        ("http://[::1]x:9090", P.URL_HOST),
        ("http://" + "a" * 2048, P.URL_TOO_LONG),
    ],
)  # fmt: skip
def test_other_urls_are_refused_with_a_fixed_problem(url: str, problem: P) -> None:
    with pytest.raises(EndpointError) as err:
        ALLOWED.check(url)
    assert err.value.problem is problem
    assert str(err.value) == problem.value  # the URL's own text is never in the message


def test_ipv6_literals_are_canonical() -> None:
    assert parse_endpoint("http://[0:0::1]:9090/").url == "http://[::1]:9090"


def test_a_prefix_allows_itself_and_below_on_segment_boundaries_only() -> None:
    base = Endpoint("https", "h", 443, "/a/b")
    assert Endpoint("https", "h", 443, "/a/b").under(base)
    assert Endpoint("https", "h", 443, "/a/b/c").under(base)
    assert not Endpoint("https", "h", 443, "/a/bc").under(base)
    assert not Endpoint("https", "h", 443, "/a").under(base)
    assert Endpoint("https", "h", 443, "/anything").under(Endpoint("https", "h", 443, ""))


def test_no_allow_list_allows_nothing() -> None:
    with pytest.raises(EndpointError) as err:
        AllowList().check("http://prometheus.monitoring:9090")
    assert err.value.problem is P.URL_NOT_ALLOWED
    assert allow_list_from_text("  ") == AllowList()


def test_a_bad_allow_list_entry_is_named() -> None:
    with pytest.raises(ValueError, match="'http://p:9090/#'"):
        allow_list_from_text("http://ok:9090,http://p:9090/#")
