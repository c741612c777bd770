"""Renderers: an AuditReport as text (rich), JSON or SARIF, and writing the result out; also the
schedule tables (render.schedule), the rule list (render.rules) and a lock diff (render.text).
The convert summary and the check report render next to their value types (configs, check), which
sit above this floor.

Formats are one table; SARIF is imported lazily (its module belongs to the rules package).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from explr.audit_report import AuditReport
from explr.fileio import write_atomic


def _text(report: AuditReport, model_path: str | None, color: bool, width: int | None) -> str:
    from explr.render.text import render_text
    return render_text(report, color=color, width=width)


def _json(report: AuditReport, model_path: str | None, color: bool, width: int | None) -> str:
    from explr.render.json import render_json
    return render_json(report)


def _sarif(report: AuditReport, model_path: str | None, color: bool, width: int | None) -> str:
    from explr.render.sarif import render_sarif
    return render_sarif(report, model_path)


FORMATS: dict[str, Callable[[AuditReport, str | None, bool, int | None], str]] = {
    "text": _text,
    "json": _json,
    "sarif": _sarif,
}


def render(report: AuditReport, fmt: str, *, model_path: str | None = None,
           color: bool = False, width: int | None = None) -> str:
    """The report in one of FORMATS; colour and width matter only for text."""
    return FORMATS[fmt](report, model_path, color, width)


def emit(text: str, output: Path | None) -> None:
    """Data to stdout, or atomically to a file (temp file + rename: never a half-written output)."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(Path(output), text)
