"""Validation and normalisation of samples frames (pure: DataFrame in, DataFrame out).

Normalised columns: ``timestamp`` (float Unix seconds), ``namespace``, ``workload``
(``Kind/name``), ``pod``, ``container`` (str), ``cpu``, ``memory``, ``cpu_request``,
``cpu_limit``, ``memory_request``, ``memory_limit`` (float, NaN = not measured) and
``oom`` (bool). Bad input raises ``SamplesError`` naming the source, line and column.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rightsizer.samples.errors import SamplesError

__all__ = ["SamplesError"]

KEY_COLUMNS = ("namespace", "workload", "pod", "container")
REQUIRED_COLUMNS = ("timestamp", *KEY_COLUMNS)
USAGE_COLUMNS = ("cpu", "memory")
RESOURCE_COLUMNS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
NUMERIC_COLUMNS = (*USAGE_COLUMNS, *RESOURCE_COLUMNS)
ALL_COLUMNS = (*REQUIRED_COLUMNS, *NUMERIC_COLUMNS, "oom")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
_NOT_FINITE = "NaN and infinite values are not allowed (leave the cell empty for 'not measured')"
#: Unix seconds from 1970 up to 2106 (2³²): later ones are mostly milliseconds by mistake.
MAX_TIMESTAMP_S = 2.0**32
#: Beyond physical sense for one container: rejected as bad input, not sized.
MAX_CPU_CORES = 10_000.0
MAX_MEMORY_BYTES = 100.0 * 2**40
_PHYSICAL_MAXIMA = {
    "cpu": (MAX_CPU_CORES, "more than 10,000 cores for one container"),
    "cpu_request": (MAX_CPU_CORES, "more than 10,000 cores for one container"),
    "cpu_limit": (MAX_CPU_CORES, "more than 10,000 cores for one container"),
    "memory": (MAX_MEMORY_BYTES, "more than 100 TiB for one container"),
    "memory_request": (MAX_MEMORY_BYTES, "more than 100 TiB for one container"),
    "memory_limit": (MAX_MEMORY_BYTES, "more than 100 TiB for one container"),
}
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def empty_samples() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in ALL_COLUMNS})
    for c in KEY_COLUMNS:
        frame[c] = frame[c].astype(str)
    frame["oom"] = frame["oom"].astype(bool)
    return frame


def _is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _blank(series: pd.Series) -> pd.Series:
    if _is_text(series):
        return series.isna() | (series.astype(str).str.strip() == "")
    return series.isna()


def _fail_first(bad: pd.Series, source: str, line_of: pd.Series, column: str, message: str) -> None:
    if bool(bad.any()):
        first = bad.to_numpy().nonzero()[0][0]
        count = int(bad.sum())
        more = f" ({count - 1} more rows like it)" if count > 1 else ""
        raise SamplesError(source, f"{message}{more}", int(line_of.iloc[first]), column)


def _numbers(
    raw: pd.Series, source: str, line_of: pd.Series, column: str, *, allow_negative: bool
) -> pd.Series:
    blank = _blank(raw)
    if _is_text(raw):
        text = raw.where(~blank, None)
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        nan_text = raw.astype(str).str.strip().str.lower().str.lstrip("+-") == "nan"
        _fail_first(nan_text, source, line_of, column, _NOT_FINITE)
        _fail_first(values.isna() & ~blank, source, line_of, column, "not a number")
    else:
        values = raw.astype("float64")
    values = values.where(~blank)
    present = ~blank
    _fail_first(
        present & ~np.isfinite(values.fillna(0.0)),
        source,
        line_of,
        column,
        _NOT_FINITE,
    )
    if not allow_negative:
        _fail_first(present & (values < 0), source, line_of, column, "must not be negative")
    if column in _PHYSICAL_MAXIMA:
        limit, what = _PHYSICAL_MAXIMA[column]
        _fail_first(
            present & (values > limit), source, line_of, column, f"{what}: not a real value"
        )
    return values


def _timestamps(raw: pd.Series, source: str, line_of: pd.Series) -> pd.Series:
    blank = _blank(raw)
    _fail_first(blank, source, line_of, "timestamp", "timestamp is required")
    if not _is_text(raw):
        values = raw.astype("float64")
    else:
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        textual = values.isna()
        if bool(textual.any()):
            parsed = pd.to_datetime(raw[textual], errors="coerce", utc=True, format="ISO8601")
            _fail_first(
                parsed.isna().reindex(raw.index, fill_value=False),
                source,
                line_of,
                "timestamp",
                "not a Unix time in seconds or an RFC 3339 timestamp",
            )
            seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
            values[textual] = seconds.astype("float64")
    _fail_first(
        pd.Series(~np.isfinite(values.to_numpy())),
        source,
        line_of,
        "timestamp",
        "timestamp must be a finite number",
    )
    _fail_first(
        pd.Series((values.to_numpy() < 0) | (values.to_numpy() >= MAX_TIMESTAMP_S)),
        source,
        line_of,
        "timestamp",
        "timestamp must be Unix seconds between 1970 and 2106 (milliseconds? divide by 1000)",
    )
    return values


def _keys(raw: pd.Series, source: str, line_of: pd.Series, column: str) -> pd.Series:
    blank = _blank(raw)
    _fail_first(blank, source, line_of, column, f"{column} is required")
    return raw.astype(str).str.strip()


def _workloads(raw: pd.Series, source: str, line_of: pd.Series) -> pd.Series:
    text = _keys(raw, source, line_of, "workload")
    has_kind = text.str.contains("/", regex=False)
    normalised = text.where(has_kind, "Deployment/" + text)
    kind = normalised.str.split("/", n=1).str[0]
    name = normalised.str.split("/", n=1).str[1]
    bad = ~kind.str.match(_KIND) | (name.str.strip() == "") | name.str.contains("/", regex=False)
    _fail_first(bad, source, line_of, "workload", "expected Kind/name, e.g. Deployment/web")
    return normalised


def _ooms(raw: pd.Series, source: str, line_of: pd.Series) -> pd.Series:
    blank = _blank(raw)
    if pd.api.types.is_bool_dtype(raw):
        return raw.fillna(False).astype(bool)
    text = raw.astype(str).str.strip().str.lower()
    truthy = text.isin(["1", "1.0", "true"])
    falsy = text.isin(["0", "0.0", "false"]) | blank
    _fail_first(~(truthy | falsy), source, line_of, "oom", "oom must be 0 or 1")
    return truthy


def validate_samples(raw: pd.DataFrame, source: str, first_line: int = 2) -> pd.DataFrame:
    """Check and normalise a raw frame (all cells may be text). Nothing is kept on error.

    ``first_line`` is the line number of the first data row (2 for CSV with a header;
    for Parquet, rows are numbered from 1).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise SamplesError(source, f"missing required column(s): {', '.join(missing)}")
    if not any(c in raw.columns for c in (*USAGE_COLUMNS, "oom")):
        raise SamplesError(source, "needs at least one of the columns cpu, memory, oom")
    raw = raw.reset_index(drop=True)
    line_of = pd.Series(np.arange(len(raw)) + first_line)
    out = pd.DataFrame(index=raw.index)
    out["timestamp"] = _timestamps(raw["timestamp"], source, line_of)
    for column in ("namespace", "pod", "container"):
        out[column] = _keys(raw[column], source, line_of, column)
    out["workload"] = _workloads(raw["workload"], source, line_of)
    for column in NUMERIC_COLUMNS:
        if column in raw.columns:
            out[column] = _numbers(raw[column], source, line_of, column, allow_negative=False)
        else:
            out[column] = np.nan
    out["oom"] = _ooms(raw["oom"], source, line_of) if "oom" in raw.columns else False
    empty = out["cpu"].isna() & out["memory"].isna() & ~out["oom"]
    _fail_first(empty, source, line_of, "cpu", "row has none of cpu, memory, oom=1")
    return out[list(ALL_COLUMNS)]


def drop_duplicate_samples(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (pod, container, timestamp) and kind (usage or OOM), as upstream VPA
    would have counted them.

    Rows that share a pod, container and timestamp are merged, not dropped whole: the
    samples format allows CPU and memory in separate rows. Upstream keeps the first CPU
    sample at a time (``addCPUSample`` drops one that is not *after* the last) and every
    memory sample at an equal time (``addMemorySample`` drops only *earlier* ones; the
    window keeps the largest), so the merged row has the first CPU value and the largest
    memory value; requests and limits are the first given. A later OOM row at the same
    time as an earlier one is dropped.
    """
    keys = ["namespace", "workload", "pod", "container", "timestamp"]
    oom = frame["oom"].to_numpy(dtype=bool)
    ooms = frame.loc[oom]
    ooms = ooms.loc[~ooms.duplicated(subset=keys, keep="first")]
    usage = frame.loc[~oom]
    shared = usage.duplicated(subset=keys, keep=False)
    if bool(shared.any()):
        groups = usage.loc[shared].rename_axis("_row").reset_index().groupby(keys, sort=False)
        merged = groups.first()  # per column the first non-empty value, and the first row
        merged["memory"] = groups["memory"].max()
        merged = merged.reset_index().set_index("_row")[list(frame.columns)]
        usage = pd.concat([usage.loc[~shared], merged])
    kept = pd.concat([usage, ooms]).sort_index(kind="stable")
    return kept.astype(frame.dtypes.to_dict()).reset_index(drop=True)
