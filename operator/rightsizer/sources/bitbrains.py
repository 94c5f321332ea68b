"""Read the GWA-T-12 "Bitbrains" VM trace (Rnd part) into a samples frame.

The trace (``shared/data/README.md``; Shen, van Beek, Iosup, CCGrid 2015) has one row per
VM every five minutes. Each VM becomes one workload with one pod and one container, and
the conversion is the one the data README prescribes:

* ``cpu = cpu_usage_mhz / (cpu_capacity_mhz / cpu_cores)`` cores;
* ``memory = mem_usage_kb × 1024`` bytes, where ``mem_usage_kb == 0`` means "not
  measured" (an empty cell), not zero use;
* ``cpu_request = cpu_limit = cpu_cores`` and
  ``memory_request = memory_limit = mem_capacity_kb × 1024``, on every row, so a VM that
  was resized mid-trace carries its old size before the change and the new one after;
* rows with ``cpu_cores == 0`` (VM off or not reporting) are dropped.

This module only reads and converts; it never writes the data anywhere.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import pandas as pd

from rightsizer.samples.frame import SamplesError, validate_samples

NAMESPACE = "bitbrains-rnd"
CONTAINER = "app"
KIB = 1024
TRACE_COLUMNS = (
    "vm_id",
    "timestamp_s",
    "cpu_cores",
    "cpu_capacity_mhz",
    "cpu_usage_mhz",
    "mem_capacity_kb",
    "mem_usage_kb",
)
_DTYPES = dict.fromkeys(TRACE_COLUMNS, "float64") | {"vm_id": "int64"}


def bitbrains_samples(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Convert trace rows (the README's columns) into a validated samples frame."""
    missing = [c for c in TRACE_COLUMNS if c not in raw.columns]
    if missing:
        raise SamplesError(source, f"not a Bitbrains trace: missing column(s) {', '.join(missing)}")
    on = raw.loc[raw["cpu_cores"].to_numpy() != 0].reset_index(drop=True)
    cores = on["cpu_cores"].to_numpy(dtype=np.float64)
    capacity_mhz = on["cpu_capacity_mhz"].to_numpy(dtype=np.float64)
    if bool(np.any(capacity_mhz <= 0)):
        raise SamplesError(source, "cpu_capacity_mhz must be positive where cpu_cores > 0")
    mhz_per_core = capacity_mhz / cores
    mem_kb = on["mem_usage_kb"].to_numpy(dtype=np.float64)
    vm = "vm-" + on["vm_id"].astype("int64").astype(str)
    frame = pd.DataFrame(
        {
            "timestamp": on["timestamp_s"].to_numpy(dtype=np.float64),
            "namespace": NAMESPACE,
            "workload": "Deployment/" + vm,
            "pod": vm,
            "container": CONTAINER,
            "cpu": on["cpu_usage_mhz"].to_numpy(dtype=np.float64) / mhz_per_core,
            "memory": np.where(mem_kb == 0, np.nan, mem_kb * KIB),
            "cpu_request": cores,
            "cpu_limit": cores,
            "memory_request": on["mem_capacity_kb"].to_numpy(dtype=np.float64) * KIB,
            "memory_limit": on["mem_capacity_kb"].to_numpy(dtype=np.float64) * KIB,
        }
    )
    return validate_samples(frame, source)


def read_bitbrains(path: str | Path, *, nrows: int | None = None) -> pd.DataFrame:
    """Read a trace file (``.csv`` or compressed, e.g. ``.csv.xz``) into a samples frame.

    ``nrows`` reads only the first rows (for tests on a slice). Raises ``SamplesError``.
    """
    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise SamplesError(source, "no such file")
    try:
        raw = pd.read_csv(p, usecols=list(TRACE_COLUMNS), dtype=_DTYPES, nrows=nrows)
    except ValueError as exc:  # missing columns or unparsable numbers
        raise SamplesError(source, f"cannot read as a Bitbrains trace: {exc}") from None
    except (OSError, EOFError, lzma.LZMAError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SamplesError(source, f"cannot read: {exc}") from None
    return bitbrains_samples(raw, source)
