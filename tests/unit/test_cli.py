"""``rightsizer recommend`` as a user runs it: formats, exit codes, help."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rightsizer.cli.main import main
from rightsizer.engine.strategies import STRATEGY_NAMES, build_strategy, settings_table
from rightsizer.recommend import recommend_frame
from rightsizer.sources.samples_file import read_samples

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "samples.csv"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_shows_every_container(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "recommend", "--samples", str(EXAMPLE))
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "WORKLOAD", "CONTAINER"]
    assert len(lines) == 5
    assert any("StatefulSet/db" in line and "postgres" in line for line in lines)


def test_json_matches_the_engine_and_the_documented_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    strategy, policy = build_strategy("headroom")  # the default
    recs = recommend_frame(read_samples(EXAMPLE), strategy, policy)
    assert len(doc["recommendations"]) == len(recs)
    keys = [(d["namespace"], d["workload"], d["container"]) for d in doc["recommendations"]]
    assert keys == sorted(keys)
    for item, rec in zip(doc["recommendations"], recs, strict=True):
        assert item["target"] == {
            "cpu": f"{rec.target.cpu_millicores}m",
            "memory": str(rec.target.memory_bytes),
        }
        for field in ("lowerBound", "upperBound", "uncappedTarget"):
            assert item[field]["cpu"].endswith("m")
            assert item[field]["memory"].isdigit()
        assert item["samples"] == {"cpu": rec.cpu_samples, "memory": rec.memory_samples}


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_other_formats_carry_the_same_targets(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    _, out_json, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json")
    code, out, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", fmt)
    assert code == 0
    targets = [r["target"]["cpu"] for r in json.loads(out_json)["recommendations"]]
    if fmt == "yaml":
        assert [r["target"]["cpu"] for r in yaml.safe_load(out)["recommendations"]] == targets
    else:
        import io

        frame = pd.read_csv(io.StringIO(out))
        assert [f"{v}m" for v in frame["cpu_target_m"]] == targets


def test_set_overrides_change_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    _, base, _ = run(capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json")
    code, capped, _ = run(
        capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json",
        "--set", "max_cpu=100m", "--set", "min_memory=1Gi",
    )  # fmt: skip
    assert code == 0
    for before, after in zip(
        json.loads(base)["recommendations"], json.loads(capped)["recommendations"], strict=True
    ):
        assert int(after["target"]["cpu"][:-1]) <= 100
        assert int(after["target"]["memory"]) >= 2**30
        assert after["uncappedTarget"] == before["uncappedTarget"]


def test_percentile_strategy_sets_memory_limit_equal_to_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json",
        "--strategy", "percentile",
    )  # fmt: skip
    assert code == 0
    for item in json.loads(out)["recommendations"]:
        assert item["limits"]["memory"] == item["target"]["memory"]
        assert "cpu" not in item["limits"]
        assert int(item["target"]["memory"]) % 2**20 == 0


def test_limit_range_file_caps(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lr = tmp_path / "lr.yaml"
    lr.write_text(
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: lr, namespace: batch}\n"
        "spec:\n  limits:\n  - type: Container\n    max: {cpu: 500m}\n"
    )
    code, out, _ = run(
        capsys, "recommend", "--samples", str(EXAMPLE), "--format", "json", "--limit-range", str(lr)
    )
    assert code == 0
    recs = {r["workload"]: r for r in json.loads(out)["recommendations"]}
    # worker: request 2, limit 4 → the request may be at most 500m × 2/4 = 250m
    assert recs["Deployment/worker"]["target"]["cpu"] == "250m"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "/nonexistent.csv"], "no such file"),
        (["--samples", str(EXAMPLE), "--set", "bogus=1"], "unknown setting 'bogus'"),
        (["--samples", str(EXAMPLE), "--set", "cpu_percentile=120"], "0–100"),
        (["--samples", str(EXAMPLE), "--set", "cpu_half_life=-5h"], "duration"),
        (
            ["--samples", str(EXAMPLE), "--set", "min_cpu=2", "--set", "max_cpu=1"],
            "must not exceed",
        ),
        (["--samples", str(EXAMPLE), "--set", "novalue"], "key=value"),
    ],
)
def test_bad_input_exits_2_with_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "recommend", *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_help_documents_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["recommend", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in STRATEGY_NAMES:
        for setting in settings_table(name):
            assert setting.key in out
    for option in ("--samples", "--strategy", "--format", "--set", "--limit-range"):
        assert option in out
