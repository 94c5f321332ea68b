"""Samples files: CSV, CSV.gz and Parquet read alike; bad input is located precisely."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rightsizer.samples.frame import SamplesError
from rightsizer.sources.samples_file import read_samples

HEADER = "timestamp,namespace,workload,pod,container,cpu,memory,memory_request,oom\n"
GOOD = (
    HEADER
    + "1700000060,shop,Deployment/web,web-1,app,0.25,1000000,2000000,0\n"
    + "2023-11-14T22:15:20Z,shop,web,web-1,app,,2000000,,\n"
    + "1700000180.5,shop,StatefulSet/db,db-0,pg,0.5,,3000000,1\n"
)


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_is_normalised(tmp_path: Path) -> None:
    frame = read_samples(write(tmp_path, GOOD))
    assert list(frame["workload"]) == ["Deployment/web", "Deployment/web", "StatefulSet/db"]
    assert frame["timestamp"].tolist() == [1700000060.0, 1700000120.0, 1700000180.5]
    assert np.isnan(frame["cpu"].iloc[1])  # empty = not measured, never zero
    assert frame["oom"].tolist() == [False, False, True]
    assert np.isnan(frame["cpu_limit"]).all()  # absent column


def test_gzip_and_parquet_read_the_same(tmp_path: Path) -> None:
    plain = read_samples(write(tmp_path, GOOD))
    gz = tmp_path / "s.csv.gz"
    gz.write_bytes(gzip.compress(GOOD.encode()))
    pq = tmp_path / "s.parquet"
    pd.read_csv(write(tmp_path, GOOD, "raw.csv"), dtype=str, keep_default_na=False).to_parquet(pq)
    pd.testing.assert_frame_equal(read_samples(gz), plain)
    pd.testing.assert_frame_equal(read_samples(pq), plain)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1700000060,shop,web,web-1,app,abc,1,,0", "line 2, column 'cpu': not a number"),
        ("1700000060,shop,web,web-1,app,-1,1,,0", "line 2, column 'cpu': must not be negative"),
        ("1700000060,shop,web,web-1,app,NaN,1,,0", "line 2, column 'cpu': NaN and infinite"),
        ("1700000060,shop,web,web-1,app,0.1,inf,,0", "line 2, column 'memory': NaN and infinite"),
        ("yesterday,shop,web,web-1,app,0.1,1,,0", "line 2, column 'timestamp'"),
        ("1700000060,,web,web-1,app,0.1,1,,0", "line 2, column 'namespace'"),
        ("1700000060,shop,Deployment/,web-1,app,0.1,1,,0", "line 2, column 'workload'"),
        ("1700000060,shop,web,web-1,app,,,,0", "row has none of cpu, memory, oom=1"),
        ("1700000060,shop,web,web-1,app,0.1,1,,2", "column 'oom': oom must be 0 or 1"),
        # Overflowing and mistaken timestamps, fields past the header, absurd values.
        ("1e300,shop,web,web-1,app,0.1,1,,0", "line 2, column 'timestamp': timestamp must be"),
        ("1700000060000,shop,web,web-1,app,0.1,1,,0", "column 'timestamp': timestamp must be"),
        ("-1,shop,web,web-1,app,0.1,1,,0", "column 'timestamp': timestamp must be"),
        ("1700000060,shop,web,web-1,app,0.1,1,,0,extra", "line 2: has 10 fields, the header has 9"),
        ("1700000060,shop,web,web-1,app,1e12,1,,0", "column 'cpu': more than 10,000 cores"),
        ("1700000060,shop,web,web-1,app,0.1,1e18,,0", "column 'memory': more than 100 TiB"),
        ("1700000060,shop,web,web-1,app,0.1,1,1e15,0", "column 'memory_request': more than 100"),
    ],
)
def test_bad_cells_name_line_and_column(tmp_path: Path, line: str, expected: str) -> None:
    with pytest.raises(SamplesError) as err:
        read_samples(write(tmp_path, HEADER + line + "\n"))
    assert expected in str(err.value)
    assert str(tmp_path / "s.csv") in str(err.value)


def test_error_names_the_first_bad_line_and_counts_the_rest(tmp_path: Path) -> None:
    ok = "1700000060,shop,web,web-1,app,0.1,1,,0\n"
    bad = "1700000060,shop,web,web-1,app,x,1,,0\n"
    with pytest.raises(SamplesError, match=r"line 4, column 'cpu': not a number \(1 more"):
        read_samples(write(tmp_path, HEADER + ok + ok + bad + bad))


def test_missing_required_column(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="missing required column"):
        read_samples(write(tmp_path, "timestamp,namespace,pod,container,cpu\n1,a,b,c,1\n"))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="no such file"):
        read_samples(tmp_path / "nope.csv")
    bad_gz = tmp_path / "x.csv.gz"
    bad_gz.write_bytes(b"not gzip")
    with pytest.raises(SamplesError, match="cannot read"):
        read_samples(bad_gz)
    bad_pq = tmp_path / "x.parquet"
    bad_pq.write_bytes(b"not parquet")
    with pytest.raises(SamplesError, match="Parquet"):
        read_samples(bad_pq)
    with pytest.raises(SamplesError, match="unknown file type"):
        read_samples(write(tmp_path, GOOD, "s.txt"))


def test_a_field_past_the_header_further_down_is_located(tmp_path: Path) -> None:
    ok = "1700000060,shop,web,web-1,app,0.1,1,,0\n"
    with pytest.raises(SamplesError, match=r"line 4: has 10 fields, the header has 9"):
        read_samples(write(tmp_path, HEADER + ok + ok + ok.rstrip() + ",x\n"))


@pytest.mark.parametrize("name", ["s.csv", "s.csv.gz"])
def test_input_larger_than_the_bound_is_refused_before_it_is_all_read(
    tmp_path: Path, name: str
) -> None:
    """A small .gz that expands far beyond the bound is refused while streaming (the bound
    is on decompressed bytes), plain files by their size."""
    row = "1700000060,shop,web,web-1,app,0.1,1,,0\n"
    text = HEADER + row * 50_000  # ~2 MB decompressed
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    with pytest.raises(SamplesError, match=r"more than 1 MiB of samples once decompressed"):
        read_samples(path, max_input_bytes=2**20)
    assert len(read_samples(path, max_input_bytes=4 * 2**20)) == 50_000
