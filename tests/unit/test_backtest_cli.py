"""``rightsizer backtest`` as a user runs it: formats, strategy selection, plots, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rightsizer.cli.main import main
from rightsizer.engine.strategies import STRATEGY_NAMES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "samples.csv"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backtest", "--samples", str(EXAMPLE), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_has_the_originals_and_every_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 0
    assert err == ""  # no progress output when stderr is not a terminal
    lines = out.splitlines()
    assert lines[0].startswith("trace: 4 containers, 4,032 samples")
    assert lines[1].split()[:3] == ["STRATEGY", "COST", "SAVED"]
    assert [line.split()[0] for line in lines[2:]] == ["original", *STRATEGY_NAMES]


def test_json_has_totals_settings_and_containers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json", "--every", "12h", "--history", "all")
    assert code == 0
    doc = json.loads(out)
    assert doc["settings"]["everySeconds"] == 43200
    assert doc["settings"]["historySeconds"] is None
    assert doc["trace"]["containers"] == 4
    assert [s["label"] for s in doc["strategies"]] == ["original", *STRATEGY_NAMES]
    original = doc["strategies"][0]
    assert original["costSavings"] == 0
    assert original["oomEvents"] == 0
    assert {"cpuAboveRequest", "memoryPeakFleetExcess", "costUsd"} <= set(original)
    item = doc["containers"][0]
    assert set(item["strategies"]) == {"original", *STRATEGY_NAMES}
    assert {"oomEvents", "cpuAboveRequestHours", "changes"} <= set(item["strategies"]["vpa"])


def test_strategies_with_their_own_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--format", "markdown",
        "--strategy", "percentile", "--strategy", "percentile:cpu_percentile=99",
        "--set", "min_memory=64Mi", "--set", "percentile.memory_buffer_ratio=1.3",
    )  # fmt: skip
    assert code == 0, err
    rows = [line.split("|")[1].strip() for line in out.splitlines()[2:]]
    assert rows == ["original", "percentile", "percentile:cpu_percentile=99"]


def test_plots_are_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "charts"
    code, _, err = run(capsys, "--plot", str(out_dir), "--plot-containers", "2")
    assert code == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert "savings-vs-risk.png" in names
    assert len([n for n in names if n.startswith("worst-")]) == 2
    for path in out_dir.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size < 200_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "magic"], "unknown strategy 'magic'"),
        (["--set", "no_such_key=1"], "no tested strategy has the setting"),
        (["--strategy", "vpa:target_cpu_percentile=120"], "0–100"),
        (["--every", "soon"], "--every"),
        (["--history", "0d"], "--history"),
        (["--min-change", "-5"], "--min-change"),
        (["--input-format", "bitbrains"], "Bitbrains"),
        (["--strategy", "vpa", "--strategy", "vpa"], "twice"),
    ],
)
def test_bad_input_exits_2_with_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("rightsizer: error: ")
    assert message in err


def test_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["backtest", "--samples", str(tmp_path / "none.csv")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "no such file" in err


def test_help_lists_every_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["backtest", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--input-format" in out
    for name in STRATEGY_NAMES:
        assert f"  {name}: " in out
