"""Start and stop component processes, one log file and one PID file each."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import Config

# A log is rotated (to <name>.log.1) when a component starts and it is larger.
MAX_LOG_BYTES = 20 * 1024 * 1024


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name.
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a (log) file, or a note that it is missing."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(data.splitlines()[-lines:])


class Processes:
    """PID-file based bookkeeping of the sandbox's processes."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def _pid_file(self, name: str) -> Path:
        return self.cfg.pids / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """PID of a running component started by the sandbox, else None.

        The PID file holds the PID and the binary's path; a PID that was
        reused by an unrelated process is not reported.
        """
        child = self._children.get(name)
        if child is not None:
            if child.poll() is None:
                # Our own child: trust it (right after fork its cmdline is
                # still Python's until it has exec'd).
                return child.pid
            del self._children[name]
            return None
        try:
            pid_text, binary = self._pid_file(name).read_text().split("\n", 2)[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        cmd = _cmdline(pid)
        if not cmd or cmd[0] != binary or _is_zombie(pid):
            return None
        return pid

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start ``argv`` in its own session, output appended to logs/<name>.log."""
        self.cfg.logs.mkdir(parents=True, exist_ok=True)
        self.cfg.pids.mkdir(parents=True, exist_ok=True)
        log_path = self.cfg.log_file(name)
        if log_path.exists() and log_path.stat().st_size > MAX_LOG_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
        with log_path.open("ab") as log:
            log.write(
                f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode()
            )
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=self.cfg.state,
                start_new_session=True,
            )
        self._children[name] = proc
        self._pid_file(name).write_text(f"{proc.pid}\n{argv[0]}\n")
        return proc.pid

    def died(self, name: str) -> Callable[[], str | None]:
        """A probe for wait_until: returns an error message once the process is gone."""

        def probe() -> str | None:
            if self.pid(name) is None:
                return f"process exited; last lines of {self.cfg.log_file(name)}:\n" + tail(
                    self.cfg.log_file(name), 30
                )
            return None

        return probe

    def stop(self, name: str, timeout: float = 20.0) -> bool:
        """SIGTERM (then SIGKILL after ``timeout``) the component; True if it was running."""
        pid = self.pid(name)
        if pid is None:
            self._pid_file(name).unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child = self._children.get(name)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=0.1)
            else:
                time.sleep(0.1)
            if self.pid(name) is None:
                break
        else:
            if self.pid(name) is not None:
                os.kill(pid, signal.SIGKILL)
                child = self._children.get(name)
                if child is not None:
                    child.wait(timeout=5)
        self._children.pop(name, None)
        self._pid_file(name).unlink(missing_ok=True)
        return True
