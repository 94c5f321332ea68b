"""Data loaded once into the session's real Prometheus, shared by the tests that read it."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from rightsizer.cli.main import main
from tests.sandbox import Prometheus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "samples.csv"
EXAMPLE_STEP_S = 300  # the example's sampling interval


@pytest.fixture(scope="session")
def example_history(prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory) -> float:
    """The bundled example, loaded so that it ends at a recent 5-minute boundary (which
    keeps sample times on the query step grid). Returns that end time."""
    end_s = math.floor(time.time() / EXAMPLE_STEP_S) * EXAMPLE_STEP_S
    out = tmp_path_factory.mktemp("om")
    code = main(
        ["dev", "openmetrics", "--samples", str(EXAMPLE), "--end", str(end_s), "--output", str(out)]
    )
    assert code == 0
    files = sorted(out.glob("*.om"))
    assert len(files) >= 2  # split per UTC day
    prometheus.load_openmetrics(files)
    return float(end_s)
