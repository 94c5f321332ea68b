"""The command line loads pandas only for the commands that read samples files: `report`
never needs it, and importing it costs ≈ 95 MiB of resident memory (issue 17)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from rightsizer.cli.main import build_parser
build_parser().parse_args(["report", "--prometheus", "http://127.0.0.1:1"])
import rightsizer.cli.report, rightsizer.report.collect, rightsizer.sources.prometheus_history
heavy = sorted(m for m in ("pandas", "pyarrow", "matplotlib", "kubernetes") if m in sys.modules)
print(",".join(heavy))
"""


def test_the_report_command_does_not_import_pandas() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
