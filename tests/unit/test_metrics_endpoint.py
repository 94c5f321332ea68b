"""Where the operator's metrics endpoint listens (controller/observability.py)."""

from __future__ import annotations

import pytest

from rightsizer.controller.observability import EndpointError, MetricsEndpoint, metrics_endpoint


def test_default_is_loopback_only() -> None:
    # Started outside a pod (a workstation, the demo), nothing is exposed to the network.
    assert metrics_endpoint({}) == MetricsEndpoint("127.0.0.1", 8080)
    assert metrics_endpoint({"RIGHTSIZER_METRICS_ADDRESS": " "}) == MetricsEndpoint(
        "127.0.0.1", 8080
    )


def test_address_and_port_from_the_environment() -> None:
    env = {"RIGHTSIZER_METRICS_ADDRESS": "0.0.0.0", "RIGHTSIZER_METRICS_PORT": "9100"}
    assert metrics_endpoint(env) == MetricsEndpoint("0.0.0.0", 9100)
    assert str(MetricsEndpoint("::1", 8080)) == "[::1]:8080"
    assert str(MetricsEndpoint("10.0.0.7", 8080)) == "10.0.0.7:8080"


def test_port_zero_turns_the_endpoint_off() -> None:
    assert metrics_endpoint({"RIGHTSIZER_METRICS_PORT": "0"}) is None


@pytest.mark.parametrize("port", ["http", "-1", "65536", "80.5"])
def test_unusable_port_is_refused_with_the_variable_named(port: str) -> None:
    with pytest.raises(EndpointError, match="RIGHTSIZER_METRICS_PORT"):
        metrics_endpoint({"RIGHTSIZER_METRICS_PORT": port})
