"""Tiered bootstrap (older history at a coarser step, weighted) against the real Prometheus:
memory peaks are kept exactly, CPU percentiles move little, sample counts and confidence
stay those of a full-resolution read."""

from __future__ import annotations

import json
import math
import time

import pytest

from rightsizer.cli.main import main
from rightsizer.quantity import parse_quantity
from tests.integration.conftest import EXAMPLE_STEP_S, once_per_store
from tests.integration.test_report_prometheus import EXAMPLE_NAMESPACES
from tests.sandbox import HistoryStore

pytestmark = pytest.mark.prometheus

OLDER_STEP_S = 3 * EXAMPLE_STEP_S
CPU_TOLERANCE = 0.10
"""One in three samples of the older days, at most 10 % off: measured 0–6 % on the
example (headroom's fine CPU buckets; VPA's 5 % buckets give identical targets)."""


def _report(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, end: float, *extra: str
) -> dict:  # type: ignore[type-arg]
    code = main(
        ["report", "--prometheus", history_store.url, "--history", "3d",
         "--step", f"{EXAMPLE_STEP_S}s", "--end", str(end), "--format", "json",
         "--min-history", "1h", "-n", EXAMPLE_NAMESPACES, *extra]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    return {(r["namespace"], r["workload"], r["container"]): r for r in doc["recommendations"]}


@pytest.mark.parametrize("strategy", ["headroom", "vpa"])
def test_tiered_bootstrap_keeps_memory_exact_and_cpu_close(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, store_history: float,
    strategy: str,
) -> None:  # fmt: skip
    full = _report(capsys, history_store, store_history, "--strategy", strategy)
    tiered = _report(capsys, history_store, store_history, "--strategy", strategy,
                     "--older-step", f"{OLDER_STEP_S}s", "--full-resolution", "24h")  # fmt: skip
    assert tiered.keys() == full.keys() and len(full) == 4
    weight = OLDER_STEP_S // EXAMPLE_STEP_S
    for key, ref in full.items():
        got = tiered[key]
        assert got["target"]["memory"] == ref["target"]["memory"], key
        for bound in ("lowerBound", "upperBound"):  # scaled by confidence, which moves a hair
            assert float(got[bound]["memory"]) == pytest.approx(
                float(ref[bound]["memory"]), rel=0.01
            ), (key, bound)
        want_cpu = float(parse_quantity(ref["target"]["cpu"]))
        got_cpu = float(parse_quantity(got["target"]["cpu"]))
        assert abs(got_cpu - want_cpu) <= CPU_TOLERANCE * want_cpu, (key, want_cpu, got_cpu)
        # Weighted: as many samples as a full read, but for the coarse part's two edges
        # (its first point may stand for minutes before the data starts, and where it meets
        # the full-resolution day depends on the end time's place on the coarse grid).
        for resource in ("cpu", "memory"):
            assert abs(got["samples"][resource] - ref["samples"][resource]) <= 2 * weight, key
        assert got["confidence"] == pytest.approx(ref["confidence"], rel=0.01), key


MINUTE_NAMESPACES = "tiers-1m-a|tiers-1m-b"


def load_minute_history(store: HistoryStore, tmp_path_factory: pytest.TempPathFactory) -> float:
    """Three days at 1-minute resolution (the report's default step) of six containers in
    two namespaces: a daily CPU cycle with lognormal noise (a long tail, so percentiles move
    if samples are lost), memory with rare one-minute spikes (lost unless every raw peak is
    kept), one pod replaced midway (a series that ends: no phantom samples after it).
    Returns the end (a 5-minute boundary, so both grids line up)."""
    import numpy as np
    import pandas as pd

    end_s = math.floor(time.time() / 300) * 300
    t = end_s - np.arange(3 * 1440)[::-1] * 60.0
    rng = np.random.default_rng(17)
    frames = []
    for i in range(6):
        ns = ("tiers-1m-a", "tiers-1m-b")[i % 2]
        base = 0.05 + 0.1 * i
        cpu = base * (1 + 0.5 * np.sin(2 * np.pi * t / 86400)) * rng.lognormal(0, 0.4, t.size)
        mem = 150e6 * (1 + i) * (1 + 0.1 * np.sin(2 * np.pi * t / 86400))
        spikes = rng.random(t.size) < 0.002
        mem = np.where(spikes, mem * 1.8, mem)
        pod = np.where(t < t[t.size // 2], f"w{i}-5d9f7c6b8-aaaaa", f"w{i}-5d9f7c6b8-bbbbb")
        frames.append(pd.DataFrame({
            "timestamp": t.astype(np.int64), "namespace": ns, "workload": f"Deployment/w{i}",
            "pod": pod, "container": "app", "cpu": np.round(cpu, 5), "memory": np.round(mem),
            "cpu_request": 0.5, "cpu_limit": np.nan, "memory_request": 1e9, "memory_limit": 1e9,
        }))  # fmt: skip
    samples = tmp_path_factory.mktemp("tiers-1m") / "samples.csv"
    pd.concat(frames).sort_values("timestamp", kind="stable").to_csv(samples, index=False)
    store.load_samples(samples, end_s, tmp_path_factory.mktemp("tiers-1m-om"))
    return float(end_s)


@pytest.fixture(scope="module")
def minute_history(history_store: HistoryStore, tmp_path_factory: pytest.TempPathFactory) -> float:
    """``load_minute_history`` once per store (pytest may come back to a store)."""
    return once_per_store(
        "tiers-1m", history_store, lambda: load_minute_history(history_store, tmp_path_factory)
    )


def _minute_report(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, end: float, *extra: str
) -> tuple[dict, dict]:  # type: ignore[type-arg]
    code = main(
        ["report", "--prometheus", history_store.url, "--history", "3d", "--end", str(end),
         "--format", "json", "--min-history", "1h", "-n", MINUTE_NAMESPACES, *extra]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    recs = {(r["namespace"], r["workload"], r["container"]): r for r in doc["recommendations"]}
    return recs, doc["source"]


@pytest.mark.parametrize("strategy", ["headroom", "percentile", "vpa"])
def test_report_reads_tiered_by_default_within_the_stated_tolerance(
    capsys: pytest.CaptureFixture[str], history_store: HistoryStore, minute_history: float,
    strategy: str,
) -> None:  # fmt: skip
    """The report's default (1m step, older than a day at 5m, weighted ×5, two queries in
    flight) against a full-resolution read of 1-minute data, one query at a time: memory
    targets identical (every raw peak counted), CPU targets within CPU_TOLERANCE, sample
    counts within two coarse samples, confidence within 1 %."""
    tiered, source = _minute_report(capsys, history_store, minute_history, "--strategy", strategy)
    full, full_source = _minute_report(
        capsys, history_store, minute_history, "--strategy", strategy, "--older-step", "1m",
        "--in-flight", "1",
    )  # fmt: skip
    assert source["history"]["olderStep"] == 300 and "olderStep" not in full_source["history"]
    assert source["queries"] < full_source["queries"]
    assert tiered.keys() == full.keys() and len(full) == 6
    for key, ref in full.items():
        got = tiered[key]
        assert got["target"]["memory"] == ref["target"]["memory"], key
        want_cpu = float(parse_quantity(ref["target"]["cpu"]))
        got_cpu = float(parse_quantity(got["target"]["cpu"]))
        assert abs(got_cpu - want_cpu) <= CPU_TOLERANCE * want_cpu, (key, want_cpu, got_cpu)
        for resource in ("cpu", "memory"):
            assert abs(got["samples"][resource] - ref["samples"][resource]) <= 2 * 5, key
        assert got["confidence"] == pytest.approx(ref["confidence"], rel=0.01), key
