"""Kubernetes resource quantities: parsing, VPA's canonical formatting, rounding.

Pure functions only. CPU is handled as integer millicores and memory as integer bytes,
the units upstream VPA computes in (``vpa-algorithm.md`` §1.6).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")

#: Upstream VPA caps every amount at 1e14 (millicores or bytes): ``MaxResourceAmount``.
MAX_RESOURCE_AMOUNT = 10**14
#: The length of a day and a week in seconds (usage histories, windows, half-lives).
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


class QuantityError(ValueError):
    """A text that is not a Kubernetes quantity."""


def parse_quantity(text: str | float | int) -> Decimal:
    """Parse a Kubernetes quantity (``"250m"``, ``"1.5Gi"``, ``"2"``, ``1e9``) into base units."""
    if isinstance(text, bool):
        raise QuantityError(f"not a quantity: {text!r}")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise QuantityError(f"not a finite quantity: {text!r}")
        return Decimal(repr(text)) if isinstance(text, float) else Decimal(text)
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"not a Kubernetes quantity: {text!r} (examples: 250m, 1.5, 512Mi, 2G)")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise QuantityError(f"not a Kubernetes quantity: {text!r}") from exc
    if suffix in _BINARY_SUFFIXES:
        return value * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return value * _DECIMAL_SUFFIXES[suffix]
    raise QuantityError(f"unknown suffix {suffix!r} in quantity {text!r}")


def cpu_millicores(text: str | float | int) -> int:
    """A CPU quantity as whole millicores, rounded up (Kubernetes never rounds CPU down)."""
    value = parse_quantity(text) * 1000
    if value < 0:
        raise QuantityError(f"CPU must not be negative: {text!r}")
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def memory_bytes(text: str | float | int) -> int:
    """A memory quantity as whole bytes, rounded up."""
    value = parse_quantity(text)
    if value < 0:
        raise QuantityError(f"memory must not be negative: {text!r}")
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def format_cpu(millicores: int) -> str:
    """VPA's canonical CPU form: whole millicores with the ``m`` suffix (``"120m"``)."""
    return f"{int(millicores)}m"


def format_memory(num_bytes: int) -> str:
    """VPA's canonical memory form: whole bytes, no suffix (``"262144000"``)."""
    return str(int(num_bytes))


def quantities(cpu_millicores: int | None, memory_bytes: int | None) -> dict[str, str]:
    """``{"cpu": "120m", "memory": "262144000"}`` in VPA's canonical form; unset values
    are left out."""
    out = {}
    if cpu_millicores is not None:
        out["cpu"] = format_cpu(cpu_millicores)
    if memory_bytes is not None:
        out["memory"] = format_memory(memory_bytes)
    return out


def human_cpu(millicores: float | None) -> str:
    """CPU for people: ``"120m"`` below one core, ``"2.5"`` cores above."""
    if millicores is None or (isinstance(millicores, float) and math.isnan(millicores)):
        return "-"
    if millicores < 1000:
        return f"{millicores:.0f}m"
    return f"{millicores / 1000:.3g}"


def human_memory(num_bytes: float | None) -> str:
    """Memory for people, in binary units (``"256Mi"``, ``"1.5Gi"``)."""
    if num_bytes is None or (isinstance(num_bytes, float) and math.isnan(num_bytes)):
        return "-"
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if abs(num_bytes) >= factor:
            return f"{num_bytes / factor:.4g}{suffix}"
    return f"{num_bytes:.0f}"


def truncate_amount(value: float) -> int:
    """Go's ``resourceAmountFromFloat``: drop the fraction, clamp to [0, 1e14]; NaN → 0."""
    if math.isnan(value) or value <= 0:
        return 0
    if value > MAX_RESOURCE_AMOUNT:
        return MAX_RESOURCE_AMOUNT
    return int(value)


def scale_amount(amount: int, factor: float) -> int:
    """Go's ``ScaleResource``: ``amount × factor``, truncated and clamped to [0, 1e14]."""
    if amount == 0:
        return 0  # 0 × inf is NaN in Go; an empty estimate stays empty
    return truncate_amount(float(amount) * factor)


def round_up_to_multiple(amount: int, multiple: int) -> int:
    """Round a non-zero amount up to a multiple (``--round-cpu-millicores``/``-memory-bytes``)."""
    if multiple <= 1 or amount == 0:
        return amount
    return -(-amount // multiple) * multiple
