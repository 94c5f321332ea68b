"""Freed heap back to the system after each reconcile (glibc's ``malloc_trim``), and
at most two malloc arenas (glibc's ``M_ARENA_MAX``).

A reconcile's answers, chunks and dense histogram blocks are freed when it ends, but
glibc keeps freed memory in the arena of the thread that freed it (one arena per
reconcile and reader thread, up to 8 per core) until something asks for it back; the
process's RSS then stays at the high-water mark of every thread's busiest moment.
``malloc_trim(0)`` returns the free pages of every arena at once (a few milliseconds).
Fewer arenas also lower the peak itself: each thread's arena keeps its own high-water
mark between trims, so two arenas shared by all threads peak lower than one per
thread. ``MALLOC_ARENA_MAX`` in the environment wins (glibc reads it at start);
otherwise ``limit_arenas`` sets the same limit with ``mallopt`` at the operator's
start, before the reconcile and reader threads exist, so the limit holds however the
operator is started (image, local process); ``rightsizer report`` sets it too, before
its reader threads (its peak RSS at 5,000 containers: 104 → 88 MiB). Here, below every
layer, so that both can. On a C library without these (musl) both
do nothing. Measured in
``bench/bench_operator_memory.py``; why here and not ``MALLOC_ARENA_MAX`` alone:
docs/design.md, "Memory per container".
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from typing import Any

#: glibc's ``mallopt`` parameter for the arena limit (``malloc.h``: ``M_ARENA_MAX``).
M_ARENA_MAX = -8
#: Arenas when the environment does not say (glibc's own default: 8 per core).
ARENAS = 2


def _libc(name: str) -> Callable[..., Any] | None:
    try:
        function: Callable[..., Any] = getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    return function


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")


def limit_arenas(env: Mapping[str, str], arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc arenas, unless ``MALLOC_ARENA_MAX`` is set (glibc has
    applied it already). True when this call set the limit."""
    if env.get("MALLOC_ARENA_MAX") or _MALLOPT is None:
        return False
    return bool(_MALLOPT(M_ARENA_MAX, arenas))


def release() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
