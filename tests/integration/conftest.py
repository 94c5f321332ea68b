"""Data loaded once into the session's real Prometheus (and, for the tests that run on every
history store, into each store), shared by the tests that read it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rightsizer.cli.main import main
from rightsizer.sources.samples_file import read_samples
from tests.conftest import up
from tests.sandbox import HistoryStore, Prometheus, Sandbox, store

T = TypeVar("T")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "samples.csv"
EXAMPLE_STEP_S = 300  # the example's sampling interval
DAY_S = 86_400
#: Where copies of the example end, relative to a UTC midnight: before, at and after it on
#: the sample grid, and at noon. Each copy lives in namespaces ``<namespace>-<label>``.
CHOSEN_END_OFFSETS_S = {
    "before-midnight": -EXAMPLE_STEP_S,
    "midnight": 0,
    "after-midnight": EXAMPLE_STEP_S,
    "noon": -DAY_S // 2,
}


def load_example(store: HistoryStore, tmp_path_factory: pytest.TempPathFactory) -> float:
    """The bundled example loaded into ``store`` so that it ends at a recent 5-minute
    boundary (which keeps sample times on the query step grid). Returns that end time."""
    end_s = math.floor(time.time() / EXAMPLE_STEP_S) * EXAMPLE_STEP_S
    files = store.load_samples(EXAMPLE, end_s, tmp_path_factory.mktemp("om"))
    assert len(files) >= 2  # split per UTC day
    return float(end_s)


@pytest.fixture(scope="session")
def example_history(prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory) -> float:
    """The bundled example in the session's Prometheus (``load_example``)."""
    return load_example(prometheus, tmp_path_factory)


#: What was loaded into which store in this session: (what, store) → its end(s). pytest
#: runs the tests of one store together, but may come back to a store (its session
#: fixtures then run again); loading the same history a second time, ending a few minutes
#: later, would interleave two copies in the same namespaces.
_LOADED: dict[tuple[str, str], Any] = {}


def once_per_store(what: str, store: HistoryStore, load: Callable[[], T]) -> T:
    """``load()`` the first time ``what`` is asked of ``store`` in this session."""
    key = (what, store.component)
    if key not in _LOADED:
        _LOADED[key] = load()
    value: T = _LOADED[key]
    return value


@pytest.fixture(scope="session")
def store_history(
    history_store: HistoryStore,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> float:
    """``example_history`` in each history store (the same load for Prometheus 2.42)."""
    if history_store.component == "prometheus":
        end: float = request.getfixturevalue("example_history")
        return end
    return once_per_store(
        "example", history_store, lambda: load_example(history_store, tmp_path_factory)
    )


def chosen_history_ends(now_s: float) -> dict[str, float]:
    """The instants of ``CHOSEN_END_OFFSETS_S`` around the latest UTC midnight at least an
    hour before ``now_s``: every one in the past, the same times of day on any date."""
    midnight = math.floor((now_s - 3_600) / DAY_S) * DAY_S
    return {label: float(midnight + offset) for label, offset in CHOSEN_END_OFFSETS_S.items()}


def load_at_chosen_ends(
    store: HistoryStore, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, float]:
    """The example loaded once per chosen instant, its namespaces renamed
    ``<namespace>-<label>`` and its history ending at that instant. Returns label → end."""
    ends = chosen_history_ends(time.time())
    example = read_samples(str(EXAMPLE))
    files: list[Path] = []
    for label, end_s in ends.items():
        renamed = example.assign(namespace=example["namespace"] + f"-{label}")
        samples = tmp_path_factory.mktemp("samples") / f"{label}.csv"
        renamed.to_csv(samples, index=False)
        out = tmp_path_factory.mktemp(f"om-{label}")
        argv = ["dev", "openmetrics", "--samples", str(samples), "--end", str(end_s)]
        assert main([*argv, "--output", str(out)]) == 0
        files.extend(sorted(out.glob("*.om")))
    store.load_openmetrics(files)
    return ends


@pytest.fixture(scope="session")
def example_at_chosen_ends(
    prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, float]:
    """``load_at_chosen_ends`` into the session's Prometheus."""
    return load_at_chosen_ends(prometheus, tmp_path_factory)


@pytest.fixture(scope="session")
def store_at_chosen_ends(
    history_store: HistoryStore,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, float]:
    """``example_at_chosen_ends`` in each history store."""
    if history_store.component == "prometheus":
        ends: dict[str, float] = request.getfixturevalue("example_at_chosen_ends")
        return ends
    return once_per_store(
        "chosen-ends",
        history_store,
        lambda: load_at_chosen_ends(history_store, tmp_path_factory),
    )


@pytest.fixture(scope="session")
def other_store(sandbox: Sandbox) -> Callable[[str], HistoryStore]:
    """Start a history store by name, for a test parametrised by plain values (the
    session-parametrised ``history_store`` makes pytest regroup tests by store, which
    would split a module whose module-scoped fixtures hold a cluster)."""

    def start(component: str) -> HistoryStore:
        up(sandbox, component)
        return store(sandbox, component)

    return start
