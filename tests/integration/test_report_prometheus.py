"""``rightsizer report`` against the real Prometheus holding the bundled example."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pytest

from rightsizer.cli.main import main
from rightsizer.sources.prometheus_history import HistoryWindow, plan_chunks
from tests.integration.conftest import CHOSEN_END_OFFSETS_S, EXAMPLE, EXAMPLE_STEP_S
from tests.sandbox import HistoryStore

#: Other tests load their own history into the session's Prometheus: stay in the example's.
EXAMPLE_NAMESPACES = "shop|batch"

pytestmark = pytest.mark.prometheus


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def report(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, end: float, *extra: str
) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, out, err = run(
        capsys, "report", "--prometheus", history_store.url, "--history", "3d",
        "--step", f"{EXAMPLE_STEP_S}s", "--end", str(end), "--format", "json",
        "--min-history", "1h", *(extra or ("-n", EXAMPLE_NAMESPACES)),
    )  # fmt: skip
    return code, (json.loads(out) if out else {}), err


def _by_key(doc: dict) -> dict:  # type: ignore[type-arg]
    return {(r["namespace"], r["workload"], r["container"]): r for r in doc["recommendations"]}


def test_report_gives_the_same_recommendations_as_the_samples_file(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    """Same data, two paths, step on the samples' grid: identical buckets, identical
    recommendations, identical sample counts."""
    code, doc, err = report(capsys, history_store, store_history)
    assert code == 0, err
    code, out, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json")
    assert code == 0
    offline, online = _by_key(json.loads(out)), _by_key(doc)
    assert online.keys() == offline.keys()
    for key, rec in online.items():
        ref = offline[key]
        for field in ("target", "lowerBound", "upperBound", "uncappedTarget", "samples",
                      "current", "confidence"):  # fmt: skip
            assert rec[field] == ref[field], (key, field)
    assert doc["totals"]["containers"] == 4
    assert doc["totals"]["cpuCoresFreed"] > 0


@pytest.mark.parametrize("report_end", ["at the last sample", "half a step later"])
@pytest.mark.parametrize("label", CHOSEN_END_OFFSETS_S)
def test_report_is_the_samples_file_whenever_history_ends(
    capsys: pytest.CaptureFixture[str],
    history_store: HistoryStore,
    store_at_chosen_ends: dict[str, float],
    label: str,
    report_end: str,
) -> None:
    """The example's history ending just before, at and after midnight UTC and at noon,
    the report run at its last sample or off the step grid after it: always exactly the
    recommendations of the samples file as it is (which ends at 00:00 UTC)."""
    end_s = store_at_chosen_ends[label]
    if report_end == "half a step later":
        end_s += EXAMPLE_STEP_S / 2
    namespaces = f"(shop|batch)-{label}"
    code, doc, err = report(capsys, history_store, end_s, "-n", namespaces)
    assert code == 0, err
    code, out, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json")
    assert code == 0
    offline = _by_key(json.loads(out))
    online = {
        (ns.removesuffix(f"-{label}"), *rest): rec for (ns, *rest), rec in _by_key(doc).items()
    }
    assert online.keys() == offline.keys()
    for key, rec in online.items():
        for field in ("target", "lowerBound", "upperBound", "uncappedTarget", "samples",
                      "current", "confidence"):  # fmt: skip
            assert rec[field] == offline[key][field], (key, field)


def test_report_off_the_sample_grid_stays_within_one_bucket(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    """Evaluated half a step off the grid, rate() and max_over_time() still see each
    sample once; only the window's edges may lose or gain a sample. Stated tolerance:
    targets within one histogram bucket (≤ 5 % + 10m/10 MB of bucket width at the low
    end), sample counts within one per pod."""
    code, doc, _ = report(capsys, history_store, store_history - EXAMPLE_STEP_S / 2)
    assert code == 0
    code, out, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json")
    offline, online = _by_key(json.loads(out)), _by_key(doc)
    assert online.keys() == offline.keys()
    for key, rec in online.items():
        ref = offline[key]
        assert abs(rec["samples"]["cpu"] - ref["samples"]["cpu"]) <= rec["pods"], key
        cpu_a, cpu_b = (int(r["target"]["cpu"][:-1]) for r in (rec, ref))
        mem_a, mem_b = (int(r["target"]["memory"]) for r in (rec, ref))
        assert abs(cpu_a - cpu_b) <= 0.05 * cpu_b + 10, key
        assert abs(mem_a - mem_b) <= 0.05 * mem_b + 10_000_000, key


def test_queries_scale_with_namespaces_not_pods(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    code, doc, _ = report(capsys, history_store, store_history)
    assert code == 0
    namespaces = doc["source"]["namespaces"]
    assert set(namespaces) >= {"batch", "shop"}
    history = doc["source"]["history"]
    chunks = plan_chunks(HistoryWindow(history["start"], history["end"], history["step"]))
    assert all((b - a) / history["step"] + 1 <= 11_000 for a, b in chunks)
    # owners, requests/limits, the pod list (index), cpu/memory/oom per range
    per_namespace = 2 + 2 + 1 + 3 * len(chunks)
    # + the connection check + the namespace list; independent of the number of pods up to
    # a slice's worth of series (166 at 1m: test_report_slices.py reads in slices)
    assert doc["source"]["queries"] == 2 + per_namespace * len(namespaces)


def test_scope_filters_namespaces_and_kinds(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    code, doc, _ = report(
        capsys, history_store, store_history, "-n", "sh.p", "--kind", "StatefulSet"
    )
    assert code == 0
    assert doc["source"]["namespaces"] == ["shop"]
    assert [r["workload"] for r in doc["recommendations"]] == ["StatefulSet/db"]


def test_too_little_history_is_reported_not_guessed(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    code, doc, _ = report(
        capsys, history_store, store_history, "--min-history", "3d", "-n", EXAMPLE_NAMESPACES
    )
    assert code == 0
    assert doc["totals"]["containers"] == 0
    assert doc["totals"]["insufficientData"] == 4
    for rec in doc["recommendations"]:
        assert "target" not in rec
        assert "h of history" in rec["insufficientData"]


def test_table_and_markdown_show_severity_and_totals(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float
) -> None:
    for fmt in ("table", "markdown"):
        code, out, _ = run(
            capsys, "report", "--prometheus", history_store.url, "--history", "3d", "--step", "5m",
            "--end", str(store_history), "--min-history", "1h", "--format", fmt,
            "-n", EXAMPLE_NAMESPACES,
        )  # fmt: skip
        assert code == 0
        assert "critical" in out  # worker memory 2Gi → ~454Mi
        assert "cores freed" in out


def test_prometheus_down_is_a_clear_error_with_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(
        capsys, "report", "--prometheus", f"http://127.0.0.1:{port}", "--retries", "1",
        "--timeout", "2s",
    )  # fmt: skip
    assert code == 3
    assert out == ""
    assert "cannot reach Prometheus" in err or "kept failing" in err


def test_bad_url_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "report", "--prometheus", "localhost:9090")
    assert code == 2
    assert out == ""
    assert "http://" in err


def test_wrong_path_prefix(capsys: pytest.CaptureFixture[str], history_store: HistoryStore) -> None:
    code, out, err = run(capsys, "report", "--prometheus", history_store.url + "/not-here",
                         "--retries", "0")  # fmt: skip
    assert code == 3
    assert out == ""
    # Prometheus: HTTP 404; VictoriaMetrics: HTTP 400 "unsupported path requested".
    assert "no Prometheus query API" in err and "path prefix" in err


def test_oom_kills_from_kube_state_metrics_series_match_the_samples_file(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, tmp_path: Path
) -> None:
    """OOM kills on the sample grid (one restart-count sample per step, as the converter
    writes kube-state-metrics' series): each is seen once, in its step, like in the samples
    file. (A ``changes()`` over one step sees a single sample there, and no kill.)"""
    end_s = math.floor(time.time() / EXAMPLE_STEP_S) * EXAMPLE_STEP_S - 86_400
    rows = ["timestamp,namespace,workload,pod,container,cpu,memory,"
            "cpu_request,cpu_limit,memory_request,memory_limit,oom"]  # fmt: skip
    kills = {40, 41, 200}
    for i in range(288):
        t = end_s - (287 - i) * EXAMPLE_STEP_S
        for pod, oom in (("api-7d9f8c6b5-x2x4z", int(i in kills)), ("api-7d9f8c6b5-q8w2n", 0)):
            rows.append(f"{t},oomtest,Deployment/api,{pod},app,0.2,{300 * 2**20 + i},"
                        f"0.5,,536870912,536870912,{oom}")  # fmt: skip
    samples = tmp_path / "oom.csv"
    samples.write_text("\n".join(rows) + "\n")
    history_store.load_samples(samples, end_s, tmp_path / "om")
    capsys.readouterr()  # the converter's list of files
    code, doc, err = report(capsys, history_store, end_s, "-n", "oomtest")
    assert code == 0, err
    code, out, _ = run(capsys, "recommend", "--samples", str(samples), "--format", "json")
    assert code == 0
    offline, online = _by_key(json.loads(out)), _by_key(doc)
    assert online.keys() == offline.keys() == {("oomtest", "Deployment/api", "app")}
    for key, rec in online.items():
        assert rec["oomKills"] == offline[key]["oomKills"] == len(kills), key
        assert rec["current"] == offline[key]["current"], key
        assert rec["samples"]["memory"] == offline[key]["samples"]["memory"], key
        # By design: the file's OOM rows give no CPU sample (Prometheus has the counter
        # there) and report their own memory (Prometheus has only the restart, reported at
        # the request, as upstream VPA does).
        assert rec["samples"]["cpu"] == offline[key]["samples"]["cpu"] + len(kills), key
        assert rec["target"]["cpu"] == offline[key]["target"]["cpu"], key
