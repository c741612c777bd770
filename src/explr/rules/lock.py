"""EXP301: the audited model differs from its committed lock file (explr.lock computes the diff)."""
from __future__ import annotations

from torch import nn

from explr.audit_report import AuditReport
from explr.findings import Finding
from explr.lock import LockFile, lock_diff
from explr.rules.registry import finding


def compare_lock(lock: LockFile, report: AuditReport, model: nn.Module) -> list[Finding]:
    """One EXP301 finding per difference between `lock` and the audited `model`; [] when it matches."""
    return lock_findings(lock, lock_diff(lock, report, model))


def lock_findings(lock: LockFile, diff_lines: list[str]) -> list[Finding]:
    return [finding("EXP301", f"{line} (since {lock.path.name})") for line in diff_lines]
