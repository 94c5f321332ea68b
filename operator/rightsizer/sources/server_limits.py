"""A store's own query limits, recognised in its error text (pure: text in, words out).

Prometheus-compatible stores refuse a query that goes past one of their limits with an
error that names it in their own words: VictoriaMetrics quotes its flag
(``-search.maxSamplesPerQuery=1000``), Prometheus its fixed 11,000 points per series or
``--query.max-samples``, Mimir and Cortex their per-tenant limits. The reader's queries
stay far inside every default (docs/backends.md); a server configured stricter gets an
error that names the limit and what to change, instead of "a query was rejected".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: VictoriaMetrics ``-search.*`` limits: flag → what it bounds.
_VICTORIAMETRICS = {
    "maxPointsPerTimeseries": "points per series in one range query",
    "maxSamplesPerQuery": "raw samples one query may read",
    "maxSamplesPerSeries": "raw samples one query may read per series",
    "maxUniqueTimeseries": "series one query may select",
    "maxResponseSeries": "series in one answer",
    "maxSeriesPerAggrFunc": "series an aggregation may produce",
    "maxMemoryPerQuery": "memory one query may use",
    "maxQueryLen": "length of a query's text",
    "maxQueryDuration": "time one query may run",
}
_VM_FLAG = re.compile(r"-search\.(max[A-Za-z]+)(?:=(\d+))?")
_VM_POINTS = re.compile(r"the maximum number of points is (\d+)")

#: Other stores: (pattern of their message, limit as named to the user, what it bounds).
_OTHERS = (
    (
        re.compile(r"exceeded maximum resolution of ([\d,]+) points per timeseries"),
        "Prometheus's maximum of {0} points per series",
        "points per series in one range query",
    ),
    (
        re.compile(r"query processing would load too many samples into memory"),
        "Prometheus's --query.max-samples",
        "samples one query may hold in memory",
    ),
    (
        re.compile(r"max[_-]query[_-]length|query time range exceeds the limit"),
        "the tenant's max_query_length (Mimir/Cortex)",
        "time range of one query",
    ),
    (
        re.compile(r"max[_-]fetched[_-]series[_-]per[_-]query"),
        "the tenant's max_fetched_series_per_query (Mimir/Cortex)",
        "series one query may select",
    ),
    (
        re.compile(r"max[_-]fetched[_-]chunk[_-]bytes[_-]per[_-]query"),
        "the tenant's max_fetched_chunk_bytes_per_query (Mimir/Cortex)",
        "bytes of samples one query may read",
    ),
)


@dataclass(frozen=True)
class ServerLimit:
    """A limit of the server that refused a query."""

    name: str
    """As the server's operator knows it, e.g. ``-search.maxSamplesPerQuery=1000``."""
    bounds: str
    """What it bounds, e.g. ``raw samples one query may read``."""


def server_limit(error: str) -> ServerLimit | None:
    """The limit a store's error text names, if it names one."""
    flag = _VM_FLAG.search(error)
    if flag is not None and flag.group(1) in _VICTORIAMETRICS:
        value = flag.group(2)
        if value is None and flag.group(1) == "maxPointsPerTimeseries":
            points = _VM_POINTS.search(error)
            value = points.group(1) if points else None
        name = f"-search.{flag.group(1)}" + (f"={value}" if value else "")
        return ServerLimit(name, _VICTORIAMETRICS[flag.group(1)])
    for pattern, name, bounds in _OTHERS:
        match = pattern.search(error)
        if match is not None:
            return ServerLimit(name.format(*match.groups()), bounds)
    return None


def limit_message(url: str, limit: ServerLimit, query_points: int | None = None) -> str:
    """The detail for the person who runs the report: which limit, and what to change."""
    asked = f" (this query asked for {query_points} points per series)" if query_points else ""
    return (
        f"the server at {url} refused a query for its limit {limit.name}: the {limit.bounds}"
        f"{asked}. rightsizer's queries stay within every store's defaults; this server is "
        "configured stricter: raise that limit, or select fewer series per query "
        "(--label-matcher / labelMatchers, fewer namespaces) or a shorter --history"
    )
