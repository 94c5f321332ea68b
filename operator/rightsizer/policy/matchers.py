"""Extra label matchers of a policy (``labelMatchers``): the grammar they must follow.

One matcher or more, comma-separated, each ``name OP "value"`` (OP one of ``=``, ``!=``,
``=~``, ``!~``; the name classic or quoted, ``"k8s.cluster.name"``); nothing else can
reach a query, so a spec cannot close the selector and append PromQL of its own (a
quoted name is a string literal with the same escapes as a value). The CRD checks the
same grammar at admission (CEL).
"""

from __future__ import annotations

import re

#: A classic label name, or a quoted one (Prometheus 3's UTF-8 names, e.g.
#: ``"k8s.cluster.name"``; Prometheus 2 refuses the quotes, docs/backends.md).
_NAME = r'([a-zA-Z_][a-zA-Z0-9_]*|"([^"\\]|\\.)+")'
_MATCHER = re.compile(r"^\s*" + _NAME + r'\s*(=|!=|=~|!~)\s*"([^"\\]|\\.)*"\s*$')


def validate_matchers(text: str) -> str:
    """Extra label matchers for a shared Prometheus, e.g. ``cluster="prod-eu"``."""
    parts = [p for p in _split_matchers(text) if p.strip()]
    for part in parts:
        if not _MATCHER.match(part):
            raise ValueError(f'not a label matcher: {part.strip()!r} (example: cluster="prod")')
    return ",".join(p.strip() for p in parts)


def _split_matchers(text: str) -> list[str]:
    parts, current, in_string, escaped = [], "", False, False
    for ch in text:
        if escaped:
            current, escaped = current + ch, False
            continue
        if ch == "\\":
            current, escaped = current + ch, True
            continue
        if ch == '"':
            in_string = not in_string
        if ch == "," and not in_string:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return parts
