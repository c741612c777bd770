"""The CI-check options of `explr audit`: --select/--ignore/--fail-on ([tool.explr]), --lock, --write-lock.

Wiring only: the policy (selection, lock comparison, exit code) is explr.rules.policy, the diff's text
is explr.render.text. Not a command module: `cli/audit.py` calls these helpers to stay short.
Order matters for "bad input -> exit 2, nothing written": settings and the lock file are read
before the (expensive) audit, the lock file is written only after a successful one.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from explr.errors import ExplrError
from explr.rules.policy import PolicyOutcome, apply_policy, resolve_settings
from explr.settings import Settings
from explr.wording import plural

if TYPE_CHECKING:
    from torch import nn

    from explr.audit_report import AuditReport
    from explr.lock import LockFile


__all__ = ["open_lock", "apply_rules", "record_lock", "resolve_settings"]


def open_lock(path: Path | None, write_to: Path | None = None) -> LockFile | None:
    """The --lock file (read before auditing: a corrupt one is exit 2 at once); checks --write-lock's directory."""
    if write_to is not None and not write_to.parent.is_dir():
        raise ExplrError(f"--write-lock {write_to}: directory {write_to.parent} does not exist; create it first")
    if path is None:
        return None
    from explr.lock import read_lock
    return read_lock(path)


def apply_rules(report: AuditReport, model: nn.Module, settings: Settings, lock: LockFile | None) -> PolicyOutcome:
    """The library's CI policy; the lock diff goes to stderr (diagnostics), the findings stay in the report."""
    outcome = apply_policy(report, model, settings=settings, lock=lock)
    if outcome.lock_diff and outcome.lock_path is not None:
        from explr.render.text import lock_diff_text
        print(lock_diff_text(outcome.lock_path, outcome.lock_diff), end="", file=sys.stderr)
    return outcome


def record_lock(report: AuditReport, model: nn.Module, path: Path | None) -> None:
    if path is None:
        return
    from explr.lock import write_lock
    write_lock(report, model, path)
    print(f"explr: wrote lock file {path} ({plural(len(report.si_names), 'SI parameter tensor')}, "
          f"{plural(len(report.groups), 'group')})", file=sys.stderr)
