"""The Bitbrains loader on hand-made rows and on a slice of the real trace (read in place
from ``../shared/data``, never copied), and a backtest over that slice."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rightsizer.backtest.replay import BacktestSettings, run_backtest
from rightsizer.backtest.summary import summarize
from rightsizer.backtest.trace import build_trace
from rightsizer.cli.backtest import contenders
from rightsizer.cli.main import main
from rightsizer.samples.frame import ALL_COLUMNS, SamplesError
from rightsizer.sources.bitbrains import bitbrains_samples, read_bitbrains

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT.parent / "shared" / "data" / "bitbrains_rnd_2013-08_500vms.csv.xz"
SLICE_ROWS = 20_000  # VMs 1–3 (a month each) and the start of VM 4


@pytest.fixture(scope="module")
def trace_path() -> Path:
    if not TRACE.is_file():
        pytest.fail(f"the Bitbrains trace is expected at {TRACE} (see shared/data/README.md)")
    return TRACE


def raw_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": ["2013-8"] * 4,
            "vm_id": [7, 7, 7, 8],
            "timestamp_s": [1375308176, 1375308476, 1375308776, 1375308176],
            "cpu_cores": [2, 2, 0, 4],
            "cpu_capacity_mhz": [5851.9989, 5851.9989, 0.0, 10400.0],
            "cpu_usage_mhz": [747.1051929, 6000.0, 0.0, 2600.0],
            "mem_capacity_kb": [8388608.0, 8388608.0, 8388608.0, 4194304.0],
            "mem_usage_kb": [1308620.0, 0.0, 5.0, 1024.0],
        }
    )


def test_conversion_follows_the_data_readme() -> None:
    frame = bitbrains_samples(raw_rows(), "hand-made")
    assert list(frame.columns) == list(ALL_COLUMNS)
    assert len(frame) == 3  # the row with cpu_cores == 0 (VM off) is dropped
    first = frame.iloc[0]
    assert first["namespace"] == "bitbrains-rnd"
    assert first["workload"] == "Deployment/vm-7"
    assert first["pod"] == "vm-7"
    assert first["container"] == "app"
    assert first["timestamp"] == 1375308176.0  # seconds, whatever the original header said
    assert first["cpu"] == pytest.approx(747.1051929 / (5851.9989 / 2))
    assert first["memory"] == 1308620.0 * 1024
    assert first["cpu_request"] == first["cpu_limit"] == 2.0
    assert first["memory_request"] == first["memory_limit"] == 8388608.0 * 1024
    assert math.isnan(frame.iloc[1]["memory"])  # 0 KiB used: not measured, not zero
    assert frame.iloc[1]["cpu"] == pytest.approx(6000.0 / 2925.99945)  # above capacity: kept
    assert frame.iloc[2]["cpu"] == pytest.approx(2600.0 / 2600.0)
    assert not frame["oom"].any()


def test_a_file_that_is_not_the_trace_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="missing column"):
        bitbrains_samples(raw_rows().drop(columns=["mem_usage_kb"]), "x")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(SamplesError, match=r"other\.csv.*Bitbrains"):
        read_bitbrains(other)
    with pytest.raises(SamplesError, match="no such file"):
        read_bitbrains(tmp_path / "missing.csv.xz")


def test_a_slice_of_the_real_trace_converts_exactly(trace_path: Path) -> None:
    raw = pd.read_csv(trace_path, nrows=SLICE_ROWS)
    frame = read_bitbrains(trace_path, nrows=SLICE_ROWS)
    on = raw[raw["cpu_cores"] != 0].reset_index(drop=True)
    assert len(frame) == len(on)
    np.testing.assert_array_equal(frame["timestamp"], on["timestamp_s"].astype(float))
    np.testing.assert_allclose(
        frame["cpu"], on["cpu_usage_mhz"] / (on["cpu_capacity_mhz"] / on["cpu_cores"])
    )
    expected_mem = np.where(on["mem_usage_kb"] == 0, np.nan, on["mem_usage_kb"] * 1024)
    np.testing.assert_array_equal(frame["memory"], expected_mem)
    np.testing.assert_array_equal(frame["memory_limit"], on["mem_capacity_kb"] * 1024)
    np.testing.assert_array_equal(frame["cpu_request"], on["cpu_cores"].astype(float))
    assert set(frame["workload"]) == {f"Deployment/vm-{i}" for i in on["vm_id"].unique()}
    # five-minute samples
    gaps = frame.groupby("pod")["timestamp"].diff().dropna()
    assert gaps.median() == pytest.approx(300, abs=2)


def test_a_backtest_of_the_slice_runs_and_saves(trace_path: Path) -> None:
    frame = read_bitbrains(trace_path, nrows=SLICE_ROWS)
    result = run_backtest(build_trace(frame), contenders(None, None), BacktestSettings())
    summaries = {s.label: s for s in summarize(result)}
    assert list(summaries) == ["original", "vpa", "percentile", "headroom"]
    assert result.grid.steps >= 30
    for label in ("vpa", "percentile", "headroom"):
        s = summaries[label]
        assert s.cost_savings is not None and 0 < s.cost_savings < 1, label
        assert s.adoptions == result.trace.containers, label


def test_the_cli_reads_the_trace_directly(
    trace_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    small = tmp_path / "slice.csv"
    pd.read_csv(trace_path, nrows=3000).to_csv(small, index=False)  # test data, not the repo
    code = main(["backtest", "--samples", str(small), "--input-format", "bitbrains",
                 "--strategy", "headroom", "--format", "markdown"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[2].startswith("| original |")
    assert out.splitlines()[3].startswith("| headroom |")
