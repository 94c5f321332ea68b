"""Freed heap back to the system after each reconcile (glibc's ``malloc_trim``).

A reconcile's answers, chunks and dense histogram blocks are freed when it ends, but
glibc keeps freed memory in the arena of the thread that freed it (one arena per
reconcile and reader thread, up to 8 per core) until something asks for it back; the
process's RSS then stays at the high-water mark of every thread's busiest moment.
``malloc_trim(0)`` returns the free pages of every arena at once (a few milliseconds).
On a C library without it (musl) this does nothing. Measured in
``bench/bench_operator_memory.py``; why here and not ``MALLOC_ARENA_MAX`` alone:
docs/design.md, "Memory per container".
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
