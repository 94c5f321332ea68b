"""Where the history stores differ (Prometheus 2.42, Prometheus 3, VictoriaMetrics), and
what the reader's queries make of it; each test runs against every store, or against a
VictoriaMetrics started here with a stricter limit (docs/backends.md)."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rightsizer.cli.main import main
from rightsizer.sources import promql
from rightsizer.sources.errors import SourceProblem, SourceRejectedError
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from rightsizer.sources.prometheus_history import PrometheusHistory
from tests.integration.conftest import EXAMPLE, EXAMPLE_STEP_S
from tests.integration.waiting import free_port
from tests.sandbox import Config, HistoryStore, PrometheusError, Sandbox, VictoriaMetrics

pytestmark = pytest.mark.prometheus

STEP_S = 60


def _history(name: str, labels: str, values: list[float], start_s: int) -> str:
    """OpenMetrics text: one series, one sample per ``STEP_S`` from ``start_s``."""
    kind = "counter" if name.endswith("_total") else "gauge"
    family = name.removesuffix("_total") if kind == "counter" else name
    lines = [f"# TYPE {family} {kind}"]
    lines += [f"{name}{{{labels}}} {v} {start_s + i * STEP_S}" for i, v in enumerate(values)]
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture
def start_s() -> int:
    """Two hours ago, on the minute grid."""
    return math.floor(time.time() / STEP_S) * STEP_S - 7_200


#: Samples a ``[60s]`` window holds at a sample's instant, for samples 60 s apart: the
#: left edge is in the window on Prometheus 2 only.
SAMPLES_IN_A_STEP_WINDOW = {"prometheus": 2, "prometheus3": 1, "victoriametrics": 1}


def test_range_windows_and_the_readers_step_window(
    history_store: HistoryStore, start_s: int
) -> None:
    """Prometheus 3 made range selectors left-open (VictoriaMetrics' are too): ``[60s]`` at
    a sample's instant holds two samples 60 s apart on 2.42, one on the others. The reader's
    windows (``promql.step_window``: one step less 1 ms) hold exactly one on all three, so
    every raw memory sample counts once whatever the store."""
    run = uuid.uuid4().hex[:8]
    labels = f'run="{run}"'
    history_store.load_openmetrics(
        _history("stores_gauge_bytes", labels, [float(i) for i in range(30)], start_s)
    )
    at = start_s + 20 * STEP_S
    sel = f"stores_gauge_bytes{{{labels}}}"
    plain = history_store.value(f"count_over_time({sel}[{STEP_S}s])", at)
    assert plain == SAMPLES_IN_A_STEP_WINDOW[history_store.component]
    assert history_store.value(f"count_over_time({sel}[{promql.step_window(STEP_S)}])", at) == 1
    assert history_store.value(f"max_over_time({sel}[{promql.step_window(STEP_S)}])", at) == 20


#: CPU points ``irate`` gives one step after a series' last sample: none on Prometheus;
#: VictoriaMetrics' takes the sample before the window when the window holds one, so it
#: repeats the last rate once.
POINTS_AFTER_THE_END = {"prometheus": 0, "prometheus3": 0, "victoriametrics": 1}


def test_cpu_rates_at_the_edges_of_a_series(history_store: HistoryStore, start_s: int) -> None:
    """A counter of 0.25 cores for ten minutes (11 samples from 0): the reader's CPU query
    (``irate`` over 1.5 steps) gives the ten rates between them on every store and none
    before the first sample. After the last one, plain ``irate`` gives nothing on
    Prometheus 2 and 3 and a copy of the last rate on VictoriaMetrics; the guarded form the
    reader uses there (``two_samples``) gives nothing on every store."""
    namespace = f"stores-{uuid.uuid4().hex[:8]}"
    labels = f'namespace="{namespace}",pod="p-0",container="app"'
    counter = [0.25 * STEP_S * i for i in range(11)]
    history_store.load_openmetrics(
        _history("container_cpu_usage_seconds_total", labels, counter, start_s)
    )
    end_of_series = start_s + 10 * STEP_S
    for two_samples in (False, True):
        expr = promql.cpu_usage(namespace, 1.5 * STEP_S, two_samples=two_samples)
        result = history_store.query_range(
            expr, start_s - 5 * STEP_S, end_of_series + 5 * STEP_S, STEP_S
        )
        assert len(result) == 1
        points = [(float(t), float(v)) for t, v in result[0]["values"]]
        inside = [t for t, _ in points if t <= end_of_series]
        after = [t for t, _ in points if t > end_of_series]
        assert inside == [start_s + i * STEP_S for i in range(1, 11)]
        assert all(v == pytest.approx(0.25) for _, v in points)
        expected = 0 if two_samples else POINTS_AFTER_THE_END[history_store.component]
        assert len(after) == expected, two_samples


#: A label name outside Prometheus 2's ``[a-zA-Z_][a-zA-Z0-9_]*``, as each store's
#: OpenMetrics parser takes it: Prometheus 3 quoted (its UTF-8 syntax), VictoriaMetrics as
#: it is (dots are ordinary label-name characters there).
DOTTED_LABEL = {
    "prometheus3": '"k8s.cluster.name"="eu-1"',
    "victoriametrics": 'k8s.cluster.name="eu-1"',
}


def test_utf8_label_names_pass_through_the_readers_queries(
    history_store: HistoryStore, start_s: int
) -> None:
    """Prometheus 3 accepts UTF-8 label names (OpenTelemetry's ``k8s.cluster.name``) and so
    does VictoriaMetrics; a series carrying one is read like any other, since the reader
    aggregates by namespace, pod and container, and ``labelMatchers`` can select on it in
    Prometheus 3's quoted form. Prometheus 2.42's promtool refuses such a name, and 2.42
    rejects the quoted matcher with a clear error."""
    namespace = f"stores-{uuid.uuid4().hex[:8]}"
    base = f'namespace="{namespace}",pod="p-0",container="app"'
    if history_store.component == "prometheus":
        text = _history("container_memory_working_set_bytes", base + ',"k8s.cluster.name"="eu-1"',
                        [1e6] * 5, start_s)  # fmt: skip
        with pytest.raises(PrometheusError):
            history_store.load_openmetrics(text)
        # A quoted name in labelMatchers is PromQL 3 syntax: 2.42 rejects the query.
        with pytest.raises(SourceRejectedError) as rejected:
            _reader(history_store, '"k8s.cluster.name"="eu-1"').namespaces(start_s, 600)
        assert rejected.value.problem is SourceProblem.QUERY_REJECTED
        return
    labels = f"{base},{DOTTED_LABEL[history_store.component]}"
    history_store.load_openmetrics(
        _history("container_memory_working_set_bytes", labels, [1e6] * 5, start_s)
    )
    at = start_s + 4 * STEP_S
    stored = history_store.query(
        f'container_memory_working_set_bytes{{namespace="{namespace}"}}', at
    )
    assert [r["metric"].get("k8s.cluster.name") for r in stored] == ["eu-1"]
    result = history_store.query(promql.memory_usage(namespace, STEP_S), at)
    assert [float(r["value"][1]) for r in result] == [1e6]
    assert result[0]["metric"] == {"namespace": namespace, "pod": "p-0", "container": "app"}
    # ... and selected by such a name in labelMatchers (the quoted form of the CRD's grammar).
    assert _reader(history_store, '"k8s.cluster.name"="eu-1"').namespaces(at, 600) == [namespace]
    assert _reader(history_store, '"k8s.cluster.name"="eu-2"').namespaces(at, 600) == []


def _reader(store: HistoryStore, label_matchers: str) -> PrometheusHistory:
    return PrometheusHistory(
        PrometheusClient(PrometheusConfig(store.url, label_matchers=label_matchers, retries=0))
    )


# ---------------------------------------------------------------- a stricter server


@pytest.fixture(scope="module")
def example_end() -> float:
    return float(math.floor(time.time() / EXAMPLE_STEP_S) * EXAMPLE_STEP_S)


def _strict_victoriametrics(tmp_path: Path, flag: str) -> Iterator[VictoriaMetrics]:
    cfg = Config(
        state=tmp_path / "vm-strict",
        ports={**Config().ports, "victoriametrics": free_port()},
        victoriametrics_flags=(flag,),
    )
    own = Sandbox(cfg)
    own.up(["victoriametrics"])
    try:
        yield VictoriaMetrics(own)
    finally:
        own.down(["victoriametrics"])


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ("-search.maxPointsPerTimeseries=50", "-search.maxPointsPerTimeseries=50"),
        ("-search.maxSamplesPerQuery=100", "-search.maxSamplesPerQuery=100"),
    ],
)
def test_a_stricter_victoriametrics_limit_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, example_end: float, flag: str,
    named: str,
) -> None:  # fmt: skip
    """A VictoriaMetrics whose limit is below what one of the reader's queries needs (72
    points per series for 6 h at 5m; thousands of raw samples for the namespace list): the
    report fails (exit 3, nothing on stdout) with a message naming the limit and what to
    change. Under the default limits every other history test reads the same kind of queries in
    full (test_bootstrap_tiers.py: 1-minute steps, tiered)."""
    for vm in _strict_victoriametrics(tmp_path, flag):
        vm.load_samples(EXAMPLE, example_end, tmp_path / "om")
        capsys.readouterr()  # the converter's list of files
        code = main(
            ["report", "--prometheus", vm.url, "--history", "3d", "--step", "5m",
             "--end", str(example_end), "--format", "json", "--min-history", "1h",
             "-n", "shop", "--retries", "0"]
        )  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 3, err
        assert out == ""
        assert named in err, err
        assert "raise that limit" in err


@pytest.mark.parametrize("history_store", ["victoriametrics"], indirect=True)
def test_a_path_prefix_reads_the_same(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    """VictoriaMetrics also serves the query API under ``/prometheus`` (the form of its
    cluster's ``/select/<tenant>/prometheus``): a URL with a path prefix reads the same."""
    docs = []
    for url in (history_store.url, history_store.url + "/prometheus"):
        code = main(
            ["report", "--prometheus", url, "--history", "3d", "--step", f"{EXAMPLE_STEP_S}s",
             "--end", str(store_history), "--format", "json", "--min-history", "1h",
             "-n", "shop|batch"]
        )  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, err
        docs.append(json.loads(out)["recommendations"])
    assert docs[0] == docs[1]
    assert len(docs[0]) == 4
