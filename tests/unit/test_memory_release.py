"""heap.py: malloc_trim after a reconcile and the arena limit (glibc; the
operator's image is Debian's). Whether they lower RSS is measured, not unit-tested:
bench/bench_operator_memory.py, docs/benchmarks.md."""

from __future__ import annotations

import ctypes
import platform

import pytest

from rightsizer import heap as memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_release_trims_the_heap() -> None:
    assert memory.release() is True


@glibc
def test_the_arena_limit_is_set_unless_the_environment_sets_it() -> None:
    assert memory.limit_arenas({"MALLOC_ARENA_MAX": "4"}) is False  # glibc applied it
    assert memory.limit_arenas({}) is True
    assert memory.M_ARENA_MAX == -8  # malloc.h
    # mallopt answers 1 for a parameter it knows; the limit is idempotent.
    assert ctypes.CDLL("libc.so.6").mallopt(memory.M_ARENA_MAX, memory.ARENAS) == 1
