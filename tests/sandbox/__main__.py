"""CLI: ``python3 -m tests.sandbox up|down|status|env|logs [--components ...]``."""

from __future__ import annotations

import argparse
import sys
import time

from .cluster import COMPONENTS, GROUPS, Sandbox
from .config import MissingBinaryError
from .http import NotReadyError


def _components(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for v in values or []:
        names.extend(x for x in v.split(",") if x)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/sandbox",
        description="Run the local test sandbox (components: "
        + ", ".join(COMPONENTS)
        + "; groups: "
        + ", ".join(GROUPS)
        + ").",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start components (default: all) and wait until ready")
    p_up.add_argument(
        "--components",
        "-c",
        action="append",
        metavar="NAMES",
        help="comma-separated components or groups (repeatable)",
    )
    p_up.add_argument(
        "--keep-data",
        action="store_true",
        help="keep etcd/Prometheus data of components that are (re)started",
    )
    p_down = sub.add_parser("down", help="stop components (default: all) by PID")
    p_down.add_argument("--components", "-c", action="append", metavar="NAMES")
    sub.add_parser("status", help="show which components run")
    sub.add_parser("env", help='print shell exports (eval "$(scripts/sandbox env)")')
    p_logs = sub.add_parser("logs", help="print the tail of each component's log")
    p_logs.add_argument("--lines", "-n", type=int, default=40)
    p_logs.add_argument("--components", "-c", action="append", metavar="NAMES")
    args = parser.parse_args(argv)

    sb = Sandbox()
    if args.command == "up":
        names = _components(args.components) or ["all"]
        t0 = time.monotonic()
        try:
            sb.up(names, keep_data=args.keep_data, log=lambda line: print(line, file=sys.stderr))
        except MissingBinaryError as err:
            print(f"sandbox: {err}", file=sys.stderr)
            return 2
        except (NotReadyError, RuntimeError) as err:
            print(f"sandbox: {err}", file=sys.stderr)
            print(f"sandbox: logs are in {sb.cfg.logs}", file=sys.stderr)
            return 1
        print(
            f"sandbox up in {time.monotonic() - t0:.1f}s; state in {sb.cfg.state}", file=sys.stderr
        )
        print("\n".join(sb.env_lines()))
        return 0
    if args.command == "down":
        stopped = sb.down(_components(args.components) or None)
        print(
            "stopped: " + (", ".join(stopped) if stopped else "nothing was running"),
            file=sys.stderr,
        )
        return 0
    if args.command == "status":
        running = 0
        for comp, pid in sb.status().items():
            print(f"{comp:<24} {'running pid ' + str(pid) if pid else 'stopped'}")
            running += pid is not None
        print(f"state: {sb.cfg.state}")
        return 0
    if args.command == "env":
        print("\n".join(sb.env_lines()))
        return 0
    if args.command == "logs":
        names = _components(args.components)
        print(sb.log_tails(names or None, args.lines))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
