"""Range-query answers decoded without a Python object per point (pure: bytes in).

A matrix answer is mostly ``"values":[[t,"v"],[t,"v"],…]`` arrays. Decoding them the
ordinary way makes three Python objects per point (a list, a float, a string) and then an
array of them: two thirds of the reader's CPU. Here each values array is cut out of the
body, checked against the canonical compact form Prometheus writes (``[number,"text"]``
pairs, nothing else), and turned into floats in one pass; the rest of the body (status,
warnings, labels) is decoded as usual with the arrays emptied. Whatever does not have
that exact form (whitespace, another store's formatting, ``NaN`` values, a malformed or
hostile body) makes ``decode_matrix`` return ``None``, and the caller decodes the whole
body the ordinary way, which also judges whether it is well formed.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

_VALUES = re.compile(rb'"values":\[')
#: One or more ``[timestamp,"value"]`` pairs, nothing else: numbers, and values made of
#: the characters of numbers, ``NaN`` and ``±Inf`` (so no JSON literal can hide in one).
_PAIR = rb'\[[0-9.eE+-]+,"[0-9.eE+\-NaIfn]*"\]'
_PAIRS = re.compile(_PAIR + rb"(?:," + _PAIR + rb")*")
_NOT_NUMBERS = b'[]"'


def decode_matrix(raw: bytes) -> Any | None:
    """The decoded body with each series' ``values`` as an ``(n, 2)`` float64 array, or
    ``None`` when the fast path does not apply (see the module's docstring)."""
    skeleton: list[bytes] = []
    arrays: list[np.ndarray] = []
    pos = 0
    for match in _VALUES.finditer(raw):
        start = match.end()
        if start < pos:  # inside a span already cut out: not the canonical form
            return None
        if raw[start : start + 1] == b"]":
            end = start
            values = np.zeros((0, 2))
        else:
            close = raw.find(b"]]", start)
            if close < 0:
                return None
            end = close + 1
            values_or_none = _pairs(raw[start:end])
            if values_or_none is None:
                return None
            values = values_or_none
        skeleton.append(raw[pos:start])
        arrays.append(values)
        pos = end
    skeleton.append(raw[pos:])
    try:
        body = orjson.loads(b"".join(skeleton))
    except orjson.JSONDecodeError:
        return None
    result = body.get("data", {}).get("result") if isinstance(body, dict) else None
    if not isinstance(result, list) or len(result) != len(arrays):
        return None
    for series, values in zip(result, arrays, strict=True):
        if not isinstance(series, dict) or series.get("values") != []:
            return None
        series["values"] = values
    return body


def _pairs(text: bytes) -> np.ndarray | None:
    """``[t,"v"],[t,"v"]…`` as an ``(n, 2)`` array, or ``None`` if not exactly that."""
    if _PAIRS.fullmatch(text) is None:
        return None
    numbers = text.translate(None, _NOT_NUMBERS)
    try:  # one float object per number, no list or string per point
        flat = np.array(orjson.loads(b"[" + numbers + b"]"), dtype=np.float64)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        if b"N" not in numbers and b"I" not in numbers:
            return None  # not JSON numbers: the ordinary decode judges ("01", "1.", …)
        try:  # NaN, ±Inf: as the ordinary decode reads them
            flat = np.array(numbers.split(b","), dtype=np.float64)
        except ValueError:
            return None
    if flat.ndim != 1 or flat.size != 2 * text.count(b"["):
        return None
    return flat.reshape(-1, 2)
