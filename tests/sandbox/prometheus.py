"""The sandbox's history stores: query them, and load history into them.

Prometheus 2.42 (component ``prometheus``) and 3.x (``prometheus3``) get TSDB blocks
written by their own promtool; VictoriaMetrics (``victoriametrics``) gets the same
OpenMetrics files through its import API. All three answer the Prometheus query API.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cluster import Sandbox
from .http import request


class PrometheusError(RuntimeError):
    pass


def check_openmetrics(path: Path) -> None:
    """Fail early on the mistakes promtool reports badly or not at all."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 64))
        end = fh.read().decode(errors="replace").rstrip("\n").splitlines()
    if not end or end[-1].strip() != "# EOF":
        raise ValueError(f"{path}: an OpenMetrics file must end with a '# EOF' line")


class HistoryStore:
    """A store the sandbox started that answers the Prometheus query API."""

    #: The sandbox component (``prometheus``, ``prometheus3``, ``victoriametrics``).
    component = "prometheus"

    def __init__(self, sandbox: Sandbox, component: str | None = None) -> None:
        self.sandbox = sandbox
        if component is not None:
            self.component = component
        self.url = sandbox.cfg.url(self.component)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.component!r}, {self.url!r})"

    # ------------------------------------------------------------ queries
    def _api(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        status, body = request(url, timeout=30.0)
        try:
            data = json.loads(body)
        except ValueError as err:
            raise PrometheusError(f"GET {url}: {status} {body[:200]!r}") from err
        if status != 200 or data.get("status") != "success":
            raise PrometheusError(f"GET {url}: {status} {data}")
        return data["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (vector elements, or [t, v] for scalars)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        result: list[dict[str, Any]] = self._api("query", params)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._api(
            "query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"},
        )["result"]
        return result

    def value(self, expr: str, at: float | None = None) -> float:
        """The single value of an instant query that must return exactly one series."""
        result = self.query(expr, at)
        if len(result) != 1:
            raise PrometheusError(f"{expr!r} returned {len(result)} series, expected 1: {result}")
        return float(result[0]["value"][1])

    # ------------------------------------------------------------ loading
    def load_samples(self, samples: Path, end_s: float, workdir: Path) -> list[Path]:
        """A samples file shifted to end at ``end_s``, written as OpenMetrics by the
        project's own converter (``rightsizer dev openmetrics``, one file per UTC day,
        in ``workdir``) and loaded. Returns the OpenMetrics files."""
        from rightsizer.cli.main import main  # the code under test, imported when used

        argv = ["dev", "openmetrics", "--samples", str(samples), "--end", str(end_s)]
        if main([*argv, "--output", str(workdir)]) != 0:
            raise RuntimeError(f"rightsizer dev openmetrics failed on {samples}")
        files = sorted(workdir.glob("*.om"))
        self.load_openmetrics(files)
        return files

    def load_openmetrics(self, sources: str | Path | Iterable[Path]) -> list[Path]:
        """Load OpenMetrics text, one file or several into the store."""
        raise NotImplementedError


def _openmetrics_files(
    sources: str | Path | Iterable[Path], scratch: Path
) -> tuple[list[Path], tempfile.TemporaryDirectory[str] | None]:
    """The files of ``sources`` (OpenMetrics text is written to a temporary file)."""
    if isinstance(sources, str):
        tmp = tempfile.TemporaryDirectory(prefix="openmetrics-", dir=scratch)
        path = Path(tmp.name) / "input.om"
        path.write_text(sources if sources.endswith("\n") else sources + "\n")
        return [path], tmp
    if isinstance(sources, Path):
        return [sources], None
    return list(sources), None


class Prometheus(HistoryStore):
    """Handle on a sandbox Prometheus: Debian's 2.42 (``Sandbox.up(['prometheus'])``, the
    default) or 3.x built from Go modules (component ``prometheus3``)."""

    @property
    def tsdb_dir(self) -> Path:
        return self.sandbox.cfg.data_dir(self.component) / "tsdb"

    @property
    def promtool(self) -> str:
        """The promtool of the same release as the server."""
        name = "promtool3" if self.component == "prometheus3" else "promtool"
        return str(self.sandbox.cfg.binary(name))

    def load_openmetrics(
        self,
        sources: str | Path | Iterable[Path],
        *,
        max_block_duration: str = "24h",
        restart: bool = True,
    ) -> list[Path]:
        """Turn OpenMetrics file(s) into TSDB blocks in Prometheus' data directory.

        ``sources`` is OpenMetrics text, one file, or several files (split
        large histories per day: promtool maps a whole file into memory).
        Timestamps are in seconds, samples of a series must be in order
        (promtool drops out-of-order ones silently), and a file ends with
        ``# EOF``. ``max_block_duration`` is passed to promtool (without it,
        it writes 2h blocks and is far slower).

        Prometheus (2.42 and 3.x alike) only notices new blocks on its periodic
        (1 minute) reload, so by default it is restarted, which takes about a second.
        Returns the new block directories.
        """
        files, tmp = _openmetrics_files(sources, self.sandbox.cfg.state)
        try:
            promtool = self.promtool
            tsdb = self.tsdb_dir
            tsdb.mkdir(parents=True, exist_ok=True)
            before = {p.name for p in tsdb.iterdir()}
            for f in files:
                check_openmetrics(f)
                proc = subprocess.run(
                    [
                        promtool,
                        "tsdb",
                        "create-blocks-from",
                        "openmetrics",
                        "--quiet",
                        f"--max-block-duration={max_block_duration}",
                        str(f),
                        str(tsdb),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    raise PrometheusError(f"promtool failed on {f}:\n{proc.stdout}\n{proc.stderr}")
            new = sorted(
                p for p in tsdb.iterdir() if p.name not in before and (p / "meta.json").exists()
            )
        finally:
            if tmp is not None:
                tmp.cleanup()
        if restart and self.sandbox.pid(self.component) is not None:
            self.restart()
        return new

    def restart(self) -> float:
        """Restart Prometheus keeping its data; return the seconds it took."""
        t0 = time.monotonic()
        # Whoever started it (this run, another run, the CLI) stays its owner.
        self.sandbox.procs.stop(self.component)
        self.sandbox.start_one(self.component, keep_data=True)
        return time.monotonic() - t0


class VictoriaMetrics(HistoryStore):
    """Handle on the sandbox's VictoriaMetrics single-node (component ``victoriametrics``):
    the same OpenMetrics files, loaded through its import API (it reads OpenMetrics'
    timestamps in seconds), queried through its Prometheus-compatible API."""

    component = "victoriametrics"

    def load_openmetrics(self, sources: str | Path | Iterable[Path]) -> list[Path]:
        """POST each file to ``/api/v1/import/prometheus``; then make the samples
        searchable at once (``/internal/force_flush``) and drop cached query results that
        predate them (``/internal/resetRollupResultCache``). Returns the files."""
        files, tmp = _openmetrics_files(sources, self.sandbox.cfg.state)
        try:
            for f in files:
                check_openmetrics(f)
                status, body = request(
                    f"{self.url}/api/v1/import/prometheus",
                    method="POST",
                    body=f.read_bytes(),
                    headers={"Content-Type": "text/plain"},
                    timeout=300.0,
                )
                if status not in (200, 204):
                    raise PrometheusError(f"import of {f} failed: {status} {body[:500]!r}")
        finally:
            if tmp is not None:
                tmp.cleanup()
        for path in ("/internal/force_flush", "/internal/resetRollupResultCache"):
            status, body = request(self.url + path, timeout=60.0)
            if status != 200:
                raise PrometheusError(f"GET {path}: {status} {body[:200]!r}")
        return files


def store(sandbox: Sandbox, component: str) -> HistoryStore:
    """The handle for the history store ``component`` (which must be running)."""
    if component == "victoriametrics":
        return VictoriaMetrics(sandbox)
    return Prometheus(sandbox, component)
