"""One knob: ``spec.strategy.profile`` / ``--profile`` (issue 18 item 4) — named parameter
sets of the default strategy; explicit settings win; other strategies take only the
default profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rightsizer.cli.backtest import BacktestInputError, contenders
from rightsizer.cli.main import main
from rightsizer.engine.strategies import DEFAULT_PROFILE, PROFILES, build_strategy
from rightsizer.engine.strategies.headroom import HeadroomSettings
from rightsizer.policy.spec import PolicyError, parse_policy_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "samples.csv"
SOURCE = {"prometheus": {"url": "http://prometheus.monitoring:9090"}}


def settings_of(profile: str | None, overrides: dict[str, str] | None = None) -> HeadroomSettings:
    strategy, _ = build_strategy("headroom", overrides, profile=profile)
    result = strategy.settings  # type: ignore[attr-defined]
    assert isinstance(result, HeadroomSettings)
    return result


def test_the_profiles_are_the_three_documented_names_balanced_being_the_defaults() -> None:
    assert list(PROFILES) == ["Conservative", "Balanced", "Economical"]
    assert DEFAULT_PROFILE == "Balanced"
    assert settings_of("Balanced") == HeadroomSettings() == settings_of(None)


def test_conservative_reserves_more_and_economical_less_than_balanced() -> None:
    """The percentiles and memory margins move the way the names say (higher for
    Conservative, lower for Economical). The CPU step is 50m in both: on the backtest a
    steeper climb from a lower start was cheaper *and* safer than the defaults'
    (docs/quality.md), so it is not a risk dial."""
    balanced = settings_of("Balanced")
    conservative, economical = settings_of("Conservative"), settings_of("Economical")
    assert conservative != balanced != economical
    for name in ("cpu_percentile", "memory_margin", "memory_confidence_margin",
                 "memory_request_percentile"):  # fmt: skip
        assert getattr(conservative, name) >= getattr(balanced, name) >= getattr(economical, name)
    assert conservative.memory_request_percentile == 1.0  # Guaranteed memory


def test_explicit_settings_win_over_the_profile() -> None:
    settings = settings_of("Economical", {"memory_margin": "0.4"})
    assert settings.memory_margin == 0.4
    profile_only = settings_of("Economical")
    assert settings.cpu_percentile == profile_only.cpu_percentile


def test_other_strategies_take_only_the_default_profile() -> None:
    build_strategy("vpa", profile="Balanced")
    with pytest.raises(ValueError, match="setting of the headroom strategy"):
        build_strategy("vpa", profile="Economical")
    with pytest.raises(ValueError, match="unknown profile 'Aggressive'"):
        build_strategy("headroom", profile="Aggressive")


# -- the policy ---------------------------------------------------------------------------
def test_a_policy_s_profile_becomes_the_strategy_s_settings() -> None:
    spec = parse_policy_spec({"source": SOURCE, "strategy": {"profile": "Conservative"}})
    assert spec.strategy_profile == "Conservative"
    assert spec.strategy_overrides == PROFILES["Conservative"]
    strategy, _ = spec.strategy()
    assert strategy.settings == settings_of("Conservative")  # type: ignore[attr-defined]


def test_a_policy_s_parameters_and_percentiles_win_over_its_profile() -> None:
    strategy_spec = {"profile": "Economical", "cpuPercentile": 97,
                     "parameters": {"memory_margin": "0.2"}}  # fmt: skip
    spec = parse_policy_spec({"source": SOURCE, "strategy": strategy_spec})
    strategy, _ = spec.strategy()
    settings = strategy.settings  # type: ignore[attr-defined]
    assert settings.cpu_percentile == pytest.approx(0.97)
    assert settings.memory_margin == 0.2
    assert settings.memory_confidence_margin == settings_of("Economical").memory_confidence_margin


def test_the_default_profile_changes_nothing_for_existing_policies() -> None:
    """Policies stored before the field (and vpa/percentile policies, which the API
    server now gives ``profile: Balanced``) keep their settings — and their checkpoints,
    whose signature is the strategy name and overrides."""
    for strategy in ({}, {"name": "vpa"}, {"name": "vpa", "profile": "Balanced"}):
        spec = parse_policy_spec({"source": SOURCE, "strategy": strategy})
        assert spec.strategy_overrides == {}
        assert spec.strategy_profile == "Balanced"


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"name": "vpa", "profile": "Economical"}, "spec.strategy.profile: profile Economical"),
        ({"profile": "Aggressive"}, "spec.strategy.profile: unknown profile 'Aggressive'"),
    ],
)
def test_a_profile_that_does_not_apply_is_a_policy_error(
    strategy: dict[str, str], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy_spec({"source": SOURCE, "strategy": strategy})


# -- the command line ---------------------------------------------------------------------
def test_recommend_with_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    answers = {}
    for profile in PROFILES:
        assert main(["recommend", "--samples", str(EXAMPLE), "--format", "json",
                     "--profile", profile]) == 0  # fmt: skip
        answers[profile] = json.loads(capsys.readouterr().out)["recommendations"]
    assert main(["recommend", "--samples", str(EXAMPLE), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["recommendations"] == answers["Balanced"]
    # Conservative's limits (its memory upper bounds) are above Economical's everywhere
    for safe, cheap in zip(answers["Conservative"], answers["Economical"], strict=True):
        assert int(safe["upperBound"]["memory"]) > int(cheap["upperBound"]["memory"])


def test_recommend_refuses_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["recommend", "--samples", str(EXAMPLE), "--profile", "Aggressive"])
    assert err.value.code == 2
    assert "invalid choice: 'Aggressive'" in capsys.readouterr().err


def test_backtest_profiles_apply_to_headroom_only() -> None:
    tested = contenders(None, None, "Economical")
    by = {c.label: c for c in tested}
    assert by["headroom"].strategy.settings == settings_of("Economical")  # type: ignore[attr-defined]
    assert by["vpa"].strategy == build_strategy("vpa")[0]
    own = contenders(["headroom:profile=Conservative", "headroom"], None, None)
    assert own[0].strategy.settings == settings_of("Conservative")  # type: ignore[attr-defined]
    assert own[1].strategy.settings == HeadroomSettings()  # type: ignore[attr-defined]
    with pytest.raises(BacktestInputError, match="setting of the headroom strategy"):
        contenders(["vpa:profile=Economical"], None, None)


def test_the_frontier_chart_is_a_png_with_every_point(tmp_path: Path) -> None:
    from rightsizer.backtest.plots import plot_frontier

    named = [("vpa", 0.32, 0.078, 0.022, 0.18), ("Balanced", 0.33, 0.012, 0.017, 0.13)]
    cloud = [("headroom:x", 0.3 + i / 100, 0.01, 0.02, 0.1) for i in range(5)]
    path = plot_frontier(named, cloud, list(PROFILES), tmp_path / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
