"""The CI-check options of `explr audit`: --select/--ignore/--fail-on ([tool.explr]), --lock, --write-lock.

Not a command module: `cli/audit.py` calls these few helpers so that its own wiring stays short.
Order matters for "bad input -> exit 2, nothing written": settings and the lock file are read
before the (expensive) audit, the lock file is written only after a successful one.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from explr.errors import ExplrError
from explr.rules.selection import split_selectors
from explr.settings import Settings, load_settings

if TYPE_CHECKING:
    from torch import nn

    from explr.audit_report import AuditReport
    from explr.lock import LockFile


def resolve_settings(select: str | None, ignore: str | None, fail_on: str | None) -> Settings:
    """[tool.explr] from pyproject.toml (cwd upward) overridden by the command line."""
    return load_settings().with_cli(split_selectors(select), split_selectors(ignore), fail_on)


def open_lock(path: Path | None, write_to: Path | None = None) -> LockFile | None:
    """The --lock file (read before auditing: a corrupt one is exit 2 at once); checks --write-lock's directory."""
    if write_to is not None and not write_to.parent.is_dir():
        raise ExplrError(f"--write-lock {write_to}: directory {write_to.parent} does not exist; create it first")
    if path is None:
        return None
    from explr.lock import read_lock
    return read_lock(path)


def apply_rules(report: AuditReport, model: nn.Module, settings: Settings, lock: LockFile | None) -> None:
    """Add the lock comparison (EXP301) to the report, print its diff to stderr, then apply the selection."""
    if lock is not None:
        from explr.lock import lock_diff
        from explr.rules.lock import lock_findings
        lines = lock_diff(lock, report, model)
        if lines:
            print(f"explr: the model differs from {lock.path}:", file=sys.stderr)
            print("".join(f"  {line}\n" for line in lines), end="", file=sys.stderr)
        report.findings.extend(lock_findings(lock, lines))
    report.findings[:] = settings.apply(report.findings)


def record_lock(report: AuditReport, model: nn.Module, path: Path | None) -> None:
    if path is None:
        return
    from explr.lock import write_lock
    write_lock(report, model, path)
    print(f"explr: wrote lock file {path} ({len(report.si_names)} SI parameter tensors, "
          f"{len(report.groups)} groups)", file=sys.stderr)
