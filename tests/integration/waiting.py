"""Waiting on real components: poll a condition, never sleep blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.sandbox.http import free_port

__all__ = ["free_port", "wait_for"]


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = 90.0,
    hint: Callable[[], str] | None = None,
) -> Any:
    """``check()`` every 0.5 s until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    more = hint() if hint else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}{more}")
