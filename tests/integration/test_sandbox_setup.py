"""Checks of the sandbox's own wiring that need no running component."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sandbox import Config, MissingBinaryError, Sandbox, resolve
from tests.sandbox import config as sandbox_config

ROOT = Path(__file__).resolve().parents[2]


def test_versions_match_build_script() -> None:
    script = (ROOT / "scripts" / "build-components.sh").read_text()
    for var, value in {
        "K8S_VERSION": sandbox_config.K8S_VERSION,
        "ETCD_VERSION": sandbox_config.ETCD_VERSION,
        "KWOK_VERSION": sandbox_config.KWOK_VERSION,
        "METRICS_SERVER_VERSION": sandbox_config.METRICS_SERVER_VERSION,
        "KSM_VERSION": sandbox_config.KSM_VERSION,
        "PROMETHEUS3_VERSION": sandbox_config.PROMETHEUS3_VERSION,
        "VICTORIAMETRICS_VERSION": sandbox_config.VICTORIAMETRICS_VERSION,
    }.items():
        m = re.search(rf'^{var}="\$\{{RIGHTSIZER_{var}:-([^}}]+)\}}"', script, re.M)
        assert m, f"{var} not found in build-components.sh"
        assert m.group(1) == value, f"{var}: script {m.group(1)} != sandbox {value}"


def test_dependencies_are_resolved_in_start_order() -> None:
    assert resolve(["metrics-server"]) == ["etcd", "kube-apiserver", "kwok", "metrics-server"]
    assert resolve(["prometheus"]) == ["prometheus"]
    assert resolve(["scrape"]) == [
        "etcd", "kube-apiserver", "kwok", "kube-state-metrics", "prometheus-scrape"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown component"):
        resolve(["nope"])


def test_missing_binaries_fail_loudly(tmp_path: Path) -> None:
    sb = Sandbox(Config(cache=tmp_path / "empty-cache", state=tmp_path / "state"))
    with pytest.raises(MissingBinaryError, match=r"scripts/build-components\.sh"):
        sb.up(["kube"])
    assert not (tmp_path / "state" / "pids").exists()


def test_down_stops_dependents_not_dependencies(tmp_path: Path) -> None:
    sb = Sandbox(Config(cache=tmp_path / "cache", state=tmp_path / "state"))
    stopped: list[str] = []

    def fake_stop(name: str, timeout: float = 20.0) -> bool:
        stopped.append(name)
        return True

    sb.procs.stop = fake_stop  # type: ignore[method-assign]
    sb.down(["kwok"])
    assert stopped == ["prometheus-scrape", "metrics-server", "kwok"]
    stopped.clear()
    sb.down(["apiserver"])
    assert stopped == [
        "prometheus-scrape",
        "kube-state-metrics",
        "metrics-server",
        "kwok",
        "kube-scheduler",
        "kube-controller-manager",
        "kube-apiserver",
        "etcd",
    ]
