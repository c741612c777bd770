"""The CI policy as library code: which findings count, the lock comparison (EXP301), the exit code.

`explr audit` only wires it; a Python caller gets the same behaviour:

    report = explr.audit(model, example_inputs)
    outcome = explr.apply_policy(report, model, lock="explr.lock.json")  # [tool.explr] from pyproject.toml
    sys.exit(outcome.exit_code)        # 0 clean, 1 a finding at or above fail-on (a lock mismatch is an error)

Settings come from the nearest `[tool.explr]` (explr.settings); explicit arguments win as on the
command line: `select` replaces, `ignore` adds, `fail_on` replaces.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence, Union

from explr.findings import Finding, Severity
from explr.rules.selection import split_selectors
from explr.settings import Settings, load_settings

if TYPE_CHECKING:  # torch loads only when a model is compared: `explr --help` stays fast
    from torch import nn

    from explr.audit_report import AuditReport
    from explr.lock import LockFile

Selectors = Union[str, Sequence[str], None]  # "EXP1,EXP301" or ["EXP1", "EXP301"]


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    findings: tuple[Finding, ...]  # after the lock comparison and the rule selection
    lock_diff: tuple[str, ...]  # readable differences from the lock file (empty: it matches, or no lock)
    lock_path: Path | None
    settings: Settings

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.findings, self.settings.fail_on)


def exit_code_for(findings: Iterable[Finding], fail_on: str) -> int:
    """1 when a finding is at or above `fail_on` (never: always 0), else 0 (ruff's convention)."""
    if fail_on == "never":
        return 0
    threshold = Severity(fail_on).rank
    return 1 if any(f.severity.rank >= threshold for f in findings) else 0


def resolve_settings(select: Selectors = None, ignore: Selectors = None, fail_on: str | None = None,
                     start: Path | None = None) -> Settings:
    """[tool.explr] of the nearest pyproject.toml at or above `start` (default: cwd), overridden by the arguments."""
    return load_settings(start).with_cli(_selectors(select), _selectors(ignore), fail_on)


def apply_policy(report: AuditReport, model: nn.Module, *, settings: Settings | None = None,
                 lock: LockFile | str | Path | None = None) -> PolicyOutcome:
    """Compare with `lock` (EXP301 per difference), then keep the selected findings.

    The report's findings are replaced by the ones that count, so every renderer shows exactly what
    decided the exit code. `settings` defaults to [tool.explr] found from the working directory.
    """
    from explr.lock import lock_diff, read_lock
    from explr.rules.lock import lock_findings

    settings = settings if settings is not None else resolve_settings()
    locked = read_lock(lock) if isinstance(lock, (str, Path)) else lock
    diff = lock_diff(locked, report, model) if locked is not None else []
    if locked is not None:
        report.findings.extend(lock_findings(locked, diff))
    report.findings[:] = settings.apply(report.findings)
    return PolicyOutcome(tuple(report.findings), tuple(diff), locked.path if locked else None, settings)


def _selectors(value: Selectors) -> list[str] | None:
    if value is None or isinstance(value, str):
        return split_selectors(value)
    return list(value)
