"""Read a samples file (CSV, CSV.gz or Parquet) into a validated samples frame."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pandas as pd

from rightsizer.samples.frame import SamplesError, validate_samples


def read_samples(path: str | Path) -> pd.DataFrame:
    """The whole file, validated; raises ``SamplesError`` (nothing half-read) on bad input."""
    p = Path(path)
    source = str(p)
    if not p.exists():
        raise SamplesError(source, "no such file")
    if p.is_dir():
        raise SamplesError(source, "is a directory, not a samples file")
    suffixes = "".join(p.suffixes[-2:]).lower()
    try:
        if p.suffix.lower() == ".parquet":
            raw = pd.read_parquet(p)
            return validate_samples(raw, source, first_line=1)
        if suffixes.endswith(".csv.gz") or suffixes.endswith(".csv") or p.suffix == "":
            raw = pd.read_csv(
                p,
                dtype=str,
                keep_default_na=False,
                compression="gzip" if suffixes.endswith(".gz") else None,
            )
            return validate_samples(raw, source, first_line=2)
    except SamplesError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SamplesError(source, f"cannot read as CSV: {exc}") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SamplesError(source, f"cannot read: {exc}") from None
    except Exception as exc:  # pyarrow raises its own error types for bad Parquet
        if type(exc).__module__.startswith("pyarrow"):
            raise SamplesError(source, f"cannot read as Parquet: {exc}") from None
        raise
    raise SamplesError(source, "unknown file type: use .csv, .csv.gz or .parquet")
