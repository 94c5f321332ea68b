"""The samples' input error (no pandas: the command line imports it for every command)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SamplesError(ValueError):
    """Bad samples input, located as precisely as possible."""

    source: str
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"
