"""The scale benches' history writer (bench/fleet_history.py): its day files hold exactly
the samples of the render path it replaced (``Fleet.history`` → ``with_cpu_counter`` →
``split_days`` → ``render`` with kube-state-metrics every 300 s), each file parsed into
(name, labels, timestamp, value); and the pipeline that loads one file while the next is
written."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rightsizer.dev.openmetrics import render, split_days, with_cpu_counter

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from fleet_history import STATE_INTERVAL_S, Fleet, day_files, load_pipelined

#: 2026-12-01 07:13 UTC: a history of 2 days ends mid-morning, so it spans three UTC days
#: (the first and last partial). Fixed: nothing here reads the clock.
END_S = 1_764_573_180.0

Labels = frozenset[tuple[str, str]]
Sample = tuple[str, Labels, float, float]
LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+) (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text: str) -> Iterator[Sample]:
    """The samples of an OpenMetrics text with timestamps (every sample line has them)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = LINE.fullmatch(line)
        assert match, line
        name, labels, value, ts = match.groups()
        pairs = LABEL.findall(labels)
        assert "".join(f'{k}="{v}",' for k, v in pairs).rstrip(",") == labels, line
        yield name, frozenset(pairs), float(ts), float(value)


def samples(text: str) -> set[Sample]:
    listed = list(parse(text))
    out = set(listed)
    assert len(out) == len(listed)  # no sample twice
    return out


def reference(fleet: Fleet, days: float) -> list[str]:
    """The day files as the benches wrote them before (one frame, render per day)."""
    frame = with_cpu_counter(fleet.history(days, END_S))
    return ["".join(render(day, 0.0, state_interval_s=STATE_INTERVAL_S))
            for day in split_days(frame)]  # fmt: skip


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet.make(5, spaces=2)


@pytest.fixture(scope="module")
def written(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("days")
    return [path.read_text() for path in day_files(fleet, 2.0, END_S, out)]


def test_day_files_hold_the_render_paths_samples(fleet: Fleet, written: list[str]) -> None:
    expected = reference(fleet, 2.0)
    assert len(written) == len(expected) == 3
    for day, (ours, theirs) in enumerate(zip(written, expected, strict=True)):
        got, want = samples(ours), samples(theirs)
        assert got == want, f"day {day}: {len(got - want)} extra, {len(want - got)} missing"
    names = {s[0] for s in samples(written[1])}
    assert names == {
        "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "kube_pod_owner", "kube_replicaset_owner", "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits", "kube_pod_container_status_restarts_total",
    }  # fmt: skip


def test_series_continue_in_order_across_day_files(fleet: Fleet, written: list[str]) -> None:
    """promtool's rules per file (``# EOF`` last, each series in time order), and the CPU
    counter keeps rising from one day file into the next; every minute is there once."""
    series: dict[tuple[str, Labels], list[tuple[float, float]]] = {}
    for text in written:
        assert text.endswith("\n# EOF\n")
        for name, labels, ts, value in parse(text):
            series.setdefault((name, labels), []).append((ts, value))
    minutes = int(2 * 86400 / 60)
    cpu = [v for (name, _), v in series.items() if name == "container_cpu_usage_seconds_total"]
    assert len(cpu) == len(fleet.names)
    for points in series.values():
        t = np.array([p[0] for p in points])
        assert (np.diff(t) > 0).all()
    for points in cpu:
        t, v = np.array(points).T
        assert len(points) == minutes + 1  # and the 0 one step before the first sample
        assert t[-1] == END_S and np.diff(t).max() == 60.0
        assert v[0] == 0.0 and (np.diff(v) >= 0).all() and v[-1] > v[1]


def test_pipeline_loads_in_order_and_keeps_two_files_on_disk(tmp_path: Path) -> None:
    on_disk: list[int] = []
    loaded: list[str] = []

    def files() -> Iterator[Path]:
        for k in range(6):
            path = tmp_path / f"day-{k:02d}.om"
            path.write_text(f"{k}\n")
            yield path

    def load(path: Path) -> None:
        on_disk.append(len(list(tmp_path.iterdir())))
        loaded.append(path.read_text())

    run = load_pipelined(files(), load, on_disk=2)
    assert loaded == [f"{k}\n" for k in range(6)]
    assert max(on_disk) <= 2
    assert not list(tmp_path.iterdir())  # each file deleted once loaded
    assert (run.files, run.bytes) == (6, 12)
    assert run.peak_rss_mib > 0


def test_pipeline_raises_what_the_writer_raised(tmp_path: Path) -> None:
    def files() -> Iterator[Path]:
        path = tmp_path / "day-00.om"
        path.write_text("0\n")
        yield path
        raise ValueError("no day 1")

    loaded: list[Path] = []
    with pytest.raises(ValueError, match="no day 1"):
        load_pipelined(files(), loaded.append)
    assert loaded == [tmp_path / "day-00.om"]


def test_pipeline_stops_the_writer_when_loading_fails(tmp_path: Path) -> None:
    written: list[int] = []

    def files() -> Iterator[Path]:
        for k in range(100):
            path = tmp_path / f"day-{k:02d}.om"
            path.write_text(f"{k}\n")
            written.append(k)
            yield path

    def load(path: Path) -> None:
        raise RuntimeError(f"promtool failed on {path.name}")

    with pytest.raises(RuntimeError, match="day-00"):
        load_pipelined(files(), load, on_disk=2)
    assert len(written) <= 3
    assert all(t.name != "history-writer" for t in threading.enumerate())
