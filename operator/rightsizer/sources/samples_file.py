"""Read a samples file (CSV, CSV.gz or Parquet) into a validated samples frame."""

from __future__ import annotations

import argparse
import gzip
import io
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from rightsizer.samples.errors import SamplesError

if TYPE_CHECKING:  # pandas is imported when a file is read, not by every command
    import pandas as pd

#: The most a samples file may hold once decompressed (a CSV this large already takes
#: several GiB in memory; use Parquet or split the file for more).
DEFAULT_MAX_INPUT_BYTES = 512 * 2**20
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class _InputTooLargeError(Exception):
    pass


class _Bounded(io.RawIOBase):
    """A stream that fails once more than ``limit`` bytes have been read from it."""

    def __init__(self, inner: io.BufferedIOBase, limit: int) -> None:
        self._inner, self._left = inner, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise _InputTooLargeError
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def add_max_input_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-input-mib``: the bound on a samples file's decompressed size."""
    parser.add_argument(
        "--max-input-mib", type=int, default=DEFAULT_MAX_INPUT_BYTES // 2**20, metavar="MIB",
        help="refuse samples files larger than this once decompressed (default: %(default)s)",
    )  # fmt: skip


def _too_large(limit: int) -> str:
    return (
        f"holds more than {limit / 2**20:.0f} MiB of samples once decompressed; "
        "split it or use Parquet"
    )


def _check_decompressed_size(path: Path, limit: int) -> None:
    """Decompress once without keeping anything: a small file that expands far beyond
    ``limit`` is refused in seconds and in constant memory, before any parsing."""
    with gzip.open(path, "rb") as stream:
        left = limit
        while chunk := stream.read(min(2**20, left + 1)):
            if len(chunk) > left:
                raise _InputTooLargeError
            left -= len(chunk)


def _read_csv(stream: _Bounded) -> pd.DataFrame:
    import pandas as pd

    # header=None: every line, the header too, must have the header's number of fields
    # (else pandas silently takes a longer first row's first field for an index).
    table = pd.read_csv(
        io.BufferedReader(stream),
        header=None, dtype=str, keep_default_na=False, index_col=False,
    )  # fmt: skip
    raw = table.iloc[1:].reset_index(drop=True)
    raw.columns = [str(name).strip() for name in table.iloc[0]] if len(table) else []
    return raw


def read_samples(path: str | Path, max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> pd.DataFrame:
    """The whole file, validated; raises ``SamplesError`` (nothing half-read) on bad input,
    and on a file larger than ``max_input_bytes`` once decompressed."""
    import pandas as pd

    from rightsizer.samples.frame import validate_samples

    p = Path(path)
    source = str(p)
    if not p.exists():
        raise SamplesError(source, "no such file")
    if p.is_dir():
        raise SamplesError(source, "is a directory, not a samples file")
    if p.stat().st_size > max_input_bytes:
        raise SamplesError(source, _too_large(max_input_bytes))
    suffixes = "".join(p.suffixes[-2:]).lower()
    try:
        if p.suffix.lower() == ".parquet":
            raw = pd.read_parquet(p)
            return validate_samples(raw, source, first_line=1)
        if suffixes.endswith(".csv.gz") or suffixes.endswith(".csv") or p.suffix == "":
            if suffixes.endswith(".gz"):
                _check_decompressed_size(p, max_input_bytes)
            with p.open("rb") as fh:
                inner: io.BufferedIOBase = (
                    gzip.GzipFile(fileobj=fh) if suffixes.endswith(".gz") else fh
                )
                raw = _read_csv(_Bounded(inner, max_input_bytes))
            return validate_samples(raw, source, first_line=2)
    except SamplesError:
        raise
    except _InputTooLargeError:
        raise SamplesError(source, _too_large(max_input_bytes)) from None
    except pd.errors.ParserError as exc:
        fields = _FIELDS.search(str(exc))
        if fields:
            expected, line, saw = (int(g) for g in fields.groups())
            message = f"has {saw} fields, the header has {expected}"
            raise SamplesError(source, message, line) from None
        raise SamplesError(source, f"cannot read as CSV: {exc}") from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SamplesError(source, f"cannot read as CSV: {exc}") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SamplesError(source, f"cannot read: {exc}") from None
    except Exception as exc:  # pyarrow raises its own error types for bad Parquet
        if type(exc).__module__.startswith("pyarrow"):
            raise SamplesError(source, f"cannot read as Parquet: {exc}") from None
        raise
    raise SamplesError(source, "unknown file type: use .csv, .csv.gz or .parquet")
