"""``key=value`` overrides for strategies and sizing policies (pure parsing).

Each strategy declares its settings as a table of ``Setting`` rows: the user-facing key,
the dataclass and field it sets, how to parse the text, and a one-line help. The CLI's
``--set`` and the CRD's strategy parameters both go through here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from rightsizer.engine.policy import ControlledValues, LimitPolicy
from rightsizer.quantity import QuantityError, cpu_millicores, memory_bytes

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SettingsError(ValueError):
    """An override with an unknown key or a value that does not parse."""


def parse_duration_s(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"1h30m"`` or plain seconds → seconds > 0."""
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        pos, value = 0, 0.0
        for match in _DURATION.finditer(raw):
            if match.start() != pos:
                break
            value += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise SettingsError(f"not a duration: {text!r} (examples: 90s, 15m, 24h, 7d)") from None
    if not value > 0:
        raise SettingsError(f"a duration must be positive, got {text!r}")
    return value


def parse_percent_as_fraction(text: str) -> float:
    value = parse_float(text)
    if not 0 <= value <= 100:
        raise SettingsError(f"a percentile is a number within 0–100, got {text!r}")
    return value / 100.0


def parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"not a finite number: {text!r}")
    return value


def parse_non_negative(text: str) -> float:
    value = parse_float(text)
    if value < 0:
        raise SettingsError(f"must not be negative, got {text!r}")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise SettingsError(f"not a boolean: {text!r} (true/false)")


def _quantity(parse: Callable[[str], int]) -> Callable[[str], int]:
    def parser(text: str) -> int:
        try:
            return parse(text)
        except QuantityError as exc:
            raise SettingsError(str(exc)) from None

    return parser


parse_cpu_millicores = _quantity(cpu_millicores)
parse_memory_bytes = _quantity(memory_bytes)


def parse_controlled_values(text: str) -> ControlledValues:
    try:
        return ControlledValues(text)
    except ValueError:
        raise SettingsError(
            f"controlled_values must be RequestsAndLimits or RequestsOnly, got {text!r}"
        ) from None


def parse_limit_policy(text: str) -> LimitPolicy:
    try:
        return LimitPolicy.parse(text)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


@dataclass(frozen=True)
class Setting:
    """One ``--set`` key: which object (``group``) and ``path`` it sets and how to parse."""

    key: str
    group: str
    path: str
    parse: Callable[[str], Any]
    help: str


def apply_overrides(
    objects: Mapping[str, Any], table: list[Setting], overrides: Mapping[str, str]
) -> dict[str, Any]:
    """Return ``objects`` with every override applied (dataclasses are copied, not changed).

    Dotted paths (``min_allowed.cpu_millicores``) set a field of a nested dataclass.
    """
    by_key = {s.key: s for s in table}
    result = dict(objects)
    for key, text in overrides.items():
        setting = by_key.get(key)
        if setting is None:
            known = ", ".join(sorted(by_key))
            raise SettingsError(f"unknown setting {key!r}; known settings: {known}")
        try:
            value = setting.parse(text)
        except SettingsError as exc:
            raise SettingsError(f"{key}: {exc}") from None
        try:
            result[setting.group] = _set_path(result[setting.group], setting.path, value)
        except ValueError as exc:
            raise SettingsError(f"{key}={text}: {exc}") from None
    return result


def _set_path(obj: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    if head not in {f.name for f in fields(obj)}:
        raise SettingsError(f"internal: {type(obj).__name__} has no field {head!r}")
    if rest:
        value = _set_path(getattr(obj, head), rest, value)
    return replace(obj, **{head: value})


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=2"]`` → ``{"a": "1", "b": "2"}``; a later key wins."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"expected key=value, got {item!r}")
        result[key.strip()] = value.strip()
    return result
