"""The operator as a local process against a kubeconfig: the one harness the end-to-end
tests, the demo and the benchmarks start it with.

``kopf run -m rightsizer.handlers.main`` (or the Deployment's own command) with the
environment the manifests set — the Prometheus allow-list, the metrics endpoint on
loopback, a short tick — and a liveness endpoint on a free port. Readiness is the
operator's start marker in its log; an operator that exits before it fails at once with
its log's tail. Stdlib only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .http import free_port

START_MARKER = "rightsizer operator started"
MODULE = "rightsizer.handlers.main"


class OperatorExitedError(RuntimeError):
    """The operator process ended before it was ready."""


def kopf_command(
    *, namespaces: Sequence[str] = (), health_port: int, log_format: str | None = None
) -> list[str]:
    """``kopf run`` for the operator: all namespaces unless some are named."""
    scope = [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    argv = [str(Path(sys.executable).parent / "kopf"), "run", "-m", MODULE, "--standalone"]
    argv += [*scope, f"--liveness=http://127.0.0.1:{health_port}/healthz"]
    return argv + ([f"--log-format={log_format}"] if log_format else [])


class OperatorProcess:
    """One running operator. ``allowed_prometheus``: the install's allow-list of
    Prometheus endpoints; ``argv``: a command to run instead of ``kopf_command`` (its
    ``--liveness=`` argument is pointed at ``health_port``)."""

    def __init__(
        self,
        kubeconfig: str | Path,
        log: Path,
        allowed_prometheus: Sequence[str] | str = (),
        *,
        metrics_port: int | None = None,
        health_port: int | None = None,
        tick_s: float = 1.0,
        namespaces: Sequence[str] = (),
        log_format: str | None = None,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.log_path = log
        self.metrics_port = metrics_port or free_port()
        self.health_port = health_port or free_port()
        allowed = (
            [allowed_prometheus] if isinstance(allowed_prometheus, str) else allowed_prometheus
        )
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        environment.update({
            "KUBECONFIG": str(kubeconfig),
            "RIGHTSIZER_TICK_SECONDS": f"{tick_s:g}",
            "RIGHTSIZER_METRICS_PORT": str(self.metrics_port),
            "RIGHTSIZER_METRICS_ADDRESS": "127.0.0.1",
            "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS": ",".join(allowed),
            **(env or {}),
        })  # fmt: skip
        command = (
            kopf_command(namespaces=namespaces, health_port=self.health_port, log_format=log_format)
            if argv is None
            else [
                f"--liveness=http://127.0.0.1:{self.health_port}/healthz"
                if arg.startswith("--liveness=")
                else arg
                for arg in argv
            ]
        )
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env=environment, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=log.parent, start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_started(start_timeout_s)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """This process's log (a log file shared with earlier runs: from its start)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_start)
            return fh.read().decode(errors="replace")

    def hint(self) -> str:
        """The log's tail, for a failed wait's message."""
        return "\n--- operator log (tail) ---\n" + "\n".join(self.log().splitlines()[-40:])

    def started(self) -> bool:
        if self.proc.poll() is not None:
            raise OperatorExitedError(
                f"the operator exited with {self.proc.returncode}{self.hint()}"
            )
        return START_MARKER in self.log()

    def wait_started(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.started():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no start marker after {timeout_s:.0f} s{self.hint()}")
            time.sleep(0.2)

    def healthz(self, timeout_s: float = 15.0) -> int:
        """The HTTP status of ``/healthz`` (599: no answer within ``timeout_s``)."""
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 599

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (Kopf finishes its handlers), SIGKILL if it does not exit in time."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
