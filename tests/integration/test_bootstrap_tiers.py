"""Tiered bootstrap (older history at a coarser step, weighted) against the real Prometheus:
memory peaks are kept exactly, CPU percentiles move little, sample counts and confidence
stay those of a full-resolution read."""

from __future__ import annotations

import json

import pytest

from rightsizer.cli.main import main
from rightsizer.quantity import parse_quantity
from tests.integration.conftest import EXAMPLE_STEP_S
from tests.integration.test_report_prometheus import EXAMPLE_NAMESPACES
from tests.sandbox import Prometheus

pytestmark = pytest.mark.prometheus

OLDER_STEP_S = 3 * EXAMPLE_STEP_S
CPU_TOLERANCE = 0.10
"""One in three samples of the older days, at most 10 % off: measured 0–6 % on the
example (headroom's fine CPU buckets; VPA's 5 % buckets give identical targets)."""


def _report(
    capsys: pytest.CaptureFixture[str], prometheus: Prometheus, end: float, *extra: str
) -> dict:  # type: ignore[type-arg]
    code = main(
        ["report", "--prometheus", prometheus.url, "--history", "3d",
         "--step", f"{EXAMPLE_STEP_S}s", "--end", str(end), "--format", "json",
         "--min-history", "1h", "-n", EXAMPLE_NAMESPACES, *extra]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    return {(r["namespace"], r["workload"], r["container"]): r for r in doc["recommendations"]}


@pytest.mark.parametrize("strategy", ["headroom", "vpa"])
def test_tiered_bootstrap_keeps_memory_exact_and_cpu_close(
    capsys: pytest.CaptureFixture[str], prometheus: Prometheus, example_history: float,
    strategy: str,
) -> None:  # fmt: skip
    full = _report(capsys, prometheus, example_history, "--strategy", strategy)
    tiered = _report(capsys, prometheus, example_history, "--strategy", strategy,
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
