"""The CRD's ``default:`` values and the operator's own defaults are the same.

The API server fills in the CRD's defaults; policies stored before a field existed, and
the code paths that parse partial specs, use the operator's. A spec with every CRD default
written out must parse exactly like one that leaves them all out.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from rightsizer.policy.spec import parse_policy_spec

CRD = Path(__file__).resolve().parents[2] / "crds" / "rightsizepolicies.rightsizer.dev.yaml"
PROMETHEUS = {"url": "http://prometheus.monitoring:9090"}


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def defaulted(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the schema's defaults applied as the API server does (a missing
    field with a default gets it, then its own fields are defaulted)."""
    if value is None and "default" in schema:
        value = schema["default"]
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        out = dict(value)
        for name, sub in props.items():
            filled = defaulted(sub, out.get(name))
            if filled is not None:
                out[name] = filled
        return out
    return value


def test_the_crd_has_defaults_to_compare() -> None:
    spec = defaulted(spec_schema(), {"source": {"prometheus": dict(PROMETHEUS)}})
    assert spec["update"]["mode"] == "Recommend"
    assert spec["source"]["prometheus"]["history"] == "14d"


@pytest.mark.parametrize(
    "minimal",
    [
        {"source": {"prometheus": dict(PROMETHEUS)}},
        {"source": {"prometheus": dict(PROMETHEUS)}, "update": {"mode": "Apply"}},
        {"source": {"metricsServer": {"enabled": True}}},
    ],
)
def test_crd_defaults_equal_the_operator_s(minimal: dict[str, Any]) -> None:
    filled = defaulted(spec_schema(), minimal)
    assert filled != minimal  # the CRD really adds something
    from_crd, from_code = parse_policy_spec(filled), parse_policy_spec(minimal)
    # Written-out defaults are recorded as overrides; what they build must be the same.
    assert replace(from_crd, strategy_overrides={}) == replace(from_code, strategy_overrides={})
    assert from_crd.strategy() == from_code.strategy()
