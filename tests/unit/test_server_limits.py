"""A store's limits recognised in its error text (pure). The texts are the shapes the
servers write; the limit against a real VictoriaMetrics is tested in
tests/integration/test_history_stores.py."""

from __future__ import annotations

import pytest

from rightsizer.sources.server_limits import ServerLimit, limit_message, server_limit


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (
            'error when executing query="up" on the time range (start=1, end=2, step=60000): '
            "cannot select more than -search.maxSamplesPerQuery=1000 samples; possible "
            "solutions: increase the -search.maxSamplesPerQuery; reduce time range",
            "-search.maxSamplesPerQuery=1000",
        ),
        (
            "too many points for the given start=0, end=21540000 and step=60000: 360; the "
            "maximum number of points is 100; (see -search.maxPointsPerTimeseries "
            "command-line flag)",
            "-search.maxPointsPerTimeseries=100",
        ),
        (
            "the response contains more than -search.maxResponseSeries=5 time series: 9 series",
            "-search.maxResponseSeries=5",
        ),
        (
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
            "query resolution (?step=XX)",
            "Prometheus's maximum of 11,000 points per series",
        ),
        (
            "query processing would load too many samples into memory in query execution",
            "Prometheus's --query.max-samples",
        ),
        (
            "the query time range exceeds the limit (query length: 721h, limit: 720h) "
            "(err-mimir-max-query-length)",
            "the tenant's max_query_length (Mimir/Cortex)",
        ),
    ],
)
def test_limits_are_named_as_the_servers_operator_knows_them(error: str, name: str) -> None:
    limit = server_limit(error)
    assert limit is not None
    assert limit.name == name
    assert name in limit_message("http://vm:8428", limit)


@pytest.mark.parametrize(
    "error",
    ["parse error at char 5: unexpected identifier", "unknown function: foo", "", "-search.x=1"],
)
def test_other_errors_are_not_limits(error: str) -> None:
    assert server_limit(error) is None


def test_the_message_says_what_to_change() -> None:
    text = limit_message("http://vm:8428", ServerLimit("-search.maxX=1", "series"), 360)
    assert "http://vm:8428" in text and "360 points" in text
    assert "raise that limit" in text and "--label-matcher" in text
