"""A policy's Prometheus adapter: refusals come before any Secret read or request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rightsizer.policy.spec import PrometheusSource
from rightsizer.sources import kubernetes_api, prometheus_policy
from rightsizer.sources.endpoints import allow_list_from_text
from rightsizer.sources.errors import SourceProblem, SourceRefusedError

ALLOWED = allow_list_from_text("http://prometheus.monitoring:9090")


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, dict[str, bytes]]]:
    """Secrets by name, as ``read_secret`` returns them; reads are recorded under ``"read"``."""
    store: dict[str, Any] = {"read": []}

    def read_secret(api: Any, namespace: str, name: str) -> tuple[str, dict[str, bytes]]:
        store["read"].append((namespace, name))
        found: tuple[str, dict[str, bytes]] = store[name]
        return found

    monkeypatch.setattr(kubernetes_api, "read_secret", read_secret)
    return store


def test_a_url_off_the_allow_list_reads_no_secret(secrets: dict[str, Any]) -> None:
    secrets["creds"] = ("rightsizer.dev/prometheus-auth", {"token": b"t"})
    src = PrometheusSource(url="http://evil.example:9090", auth_secret="creds")
    with pytest.raises(SourceRefusedError) as err:
        prometheus_policy.open_history(None, src, "team-a", ALLOWED)  # type: ignore[arg-type]
    assert err.value.problem is SourceProblem.URL_NOT_ALLOWED
    assert secrets["read"] == []


def test_an_unmarked_secret_is_refused(secrets: dict[str, Any]) -> None:
    secrets["sa"] = ("kubernetes.io/service-account-token", {"token": b"t"})
    src = PrometheusSource(url="http://prometheus.monitoring:9090/", auth_secret="sa")
    with pytest.raises(SourceRefusedError) as err:
        prometheus_policy.open_history(None, src, "team-a", ALLOWED)  # type: ignore[arg-type]
    assert err.value.problem is SourceProblem.SECRET_SERVICE_ACCOUNT_TOKEN


def test_the_client_gets_the_canonical_url_and_ignores_the_environment(
    secrets: dict[str, Any],
) -> None:
    secrets["creds"] = ("rightsizer.dev/prometheus-auth", {"token": b"t", "ca.crt": b"PEM-A"})
    src = PrometheusSource(url="HTTP://Prometheus.Monitoring.:9090/", auth_secret="creds")
    history = prometheus_policy.open_history(None, src, "team-a", ALLOWED)  # type: ignore[arg-type]
    try:
        assert history.client.url == "http://prometheus.monitoring:9090"
        assert history.client.config.trust_env is False
        ca = history.client.config.ca_bundle
        assert ca is not None and Path(ca).read_text() == "PEM-A"
    finally:
        history.client.close()


def test_ca_bundles_are_named_by_content() -> None:
    a, b = prometheus_policy._ca_file("PEM-A"), prometheus_policy._ca_file("PEM-B")
    assert a != b and prometheus_policy._ca_file("PEM-A") == a
    assert Path(b).read_text() == "PEM-B"
