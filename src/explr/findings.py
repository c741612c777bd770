"""Findings: what rules report, as frozen value objects shared by audit, convert, check and renderers."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding points: a file and 1-based line (either may be unknown)."""

    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.path is None:
            return "<unknown>"
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    module: str | None = None
    location: Location | None = None

    def one_line(self) -> str:
        """`severity CODE file:line: message`, as text outputs list findings (the same ones --json lists)."""
        where = f" {self.location}" if self.location else ""
        return f"{self.severity.value} {self.code}{where}: {self.message}"

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "module": self.module,
        }
