"""Text renderer (rich): a table grouped by module, the findings, the verification line and the summary.

Without a terminal (CI logs) the width is chosen so that no parameter or module name is cut;
columns fold rather than truncate, so even a narrow terminal never loses part of a name.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from explr.audit_report import AuditReport, ParamVerdict, Verification
from explr.findings import Finding, Severity

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERIFICATION_STYLE = {"passed": "green", "failed": "bold red", "skipped": "yellow"}
_FIXED_COLUMNS = 3 + 12 + 5  # SI, individually, group
_REASON_MAX = 100  # beyond this a reason wraps onto the next line
_MIN_WIDTH = 120  # without a terminal: findings wrap at 120 columns at the earliest
_FOLD_MIN = 20  # module and reason columns fold, but never below this width


def _split(name: str) -> tuple[str, str]:
    module, _, leaf = name.rpartition(".")
    return module or "(root)", leaf


def _shape(p: ParamVerdict) -> str:
    return "x".join(map(str, p.shape)) if p.shape else "scalar"


def _column_widths(report: AuditReport) -> dict[str, int]:
    """Longest cell (or header) per column; the reason counts up to _REASON_MAX."""
    names = [_split(p.name) for p in report.parameters]
    return {
        "module": max([len("module")] + [len(m) for m, _ in names]),
        "parameter": max([len("parameter")] + [len(leaf) for _, leaf in names]),
        "shape": max([len("shape")] + [len(_shape(p)) for p in report.parameters]),
        "reason": min(max([len("reason")] + [len(p.reason) for p in report.parameters]), _REASON_MAX),
    }


def _table_width(widths: dict[str, int]) -> int:
    return sum(widths.values()) + _FIXED_COLUMNS + 3 * 6  # 3 spaces between 7 columns


def _natural_width(report: AuditReport) -> int:
    """A width at which every name, shape and (short) reason fits on one line."""
    return max(_MIN_WIDTH, _table_width(_column_widths(report)))


def _least_width(report: AuditReport) -> int:
    """Below this a narrow terminal would squeeze the reason to a few letters: fold module and reason only."""
    widths = _column_widths(report)
    widths["module"] = min(widths["module"], _FOLD_MIN)
    widths["reason"] = min(widths["reason"], _FOLD_MIN)
    return _table_width(widths)


def _yes_no(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("no", style="dim")


def parameter_table(report: AuditReport) -> Table:
    """Module and reason fold when space is short; the short columns keep their natural width."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    widths = _column_widths(report)
    table.add_column("module", overflow="fold", min_width=min(widths["module"], _FOLD_MIN))
    table.add_column("parameter", overflow="fold", min_width=widths["parameter"])
    table.add_column("shape", overflow="fold", min_width=widths["shape"])
    table.add_column("SI", min_width=3)
    table.add_column("individually", min_width=12)
    table.add_column("group", justify="right", min_width=5)
    table.add_column("reason", overflow="fold", min_width=min(widths["reason"], _FOLD_MIN))
    previous = None
    for p in report.parameters:  # named_parameters order keeps a module's tensors together
        module, leaf = _split(p.name)
        table.add_row(Text(module if module != previous else ""), Text(leaf), Text(_shape(p)),
                      _yes_no(p.si), _yes_no(p.individually_si),
                      Text("-" if p.group is None else str(p.group)), Text(p.reason))
        previous = module
    return table


@dataclass(frozen=True, slots=True)
class FindingLine:
    """Findings that say the same thing about different modules, shown as one line."""

    severity: Severity
    code: str
    message: str  # with the module's own name written as <module> when several share it
    modules: tuple[str, ...]

    def text(self) -> str:
        if len(self.modules) < 2:
            return f"{self.modules[0]}: {self.message}" if self.modules else self.message
        return f"{len(self.modules)} modules ({', '.join(self.modules)}): {self.message}"


def _template(f: Finding) -> str:
    """The message with its module's name replaced, so that repeats of one rule compare equal."""
    if not f.module:
        return f.message
    return re.sub(rf"(?<![\w.]){re.escape(f.module)}(?!\w)", "<module>", f.message)


def finding_lines(findings: list[Finding]) -> list[FindingLine]:
    """Most severe first (stable: rule order within a level); repeats of a message across modules collapse."""
    lines: dict[tuple, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: -f.severity.rank):
        key = (f.severity, f.code, _template(f)) if f.module else (f.severity, f.code, f.message, id(f))
        lines.setdefault(key, []).append(f)
    out = []
    for (severity, code, *_), same in lines.items():
        message = _template(same[0]) if len(same) > 1 else same[0].message
        out.append(FindingLine(severity, code, message, tuple(f.module for f in same if f.module)))
    return out


def findings_table(report: AuditReport) -> Table:
    """One row per finding line; a long message wraps under itself (hanging indent)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for line in finding_lines(report.findings):
        table.add_row(Text(f"  {line.severity.value}", style=SEVERITY_STYLE[line.severity]),
                      Text(line.code), Text(line.text()))
    return table


def verification_text(v: Verification) -> Text:
    text = Text("verification: ")
    text.append(v.status, style=VERIFICATION_STYLE.get(v.status, ""))
    if v.max_rel_error is not None:
        text.append(f" (max relative error {v.max_rel_error:.2e})")
    return text


def render_text(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    width = max(width, _least_width(report)) if width else _natural_width(report)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color,
                      color_system="standard" if color else None, markup=False, emoji=False,
                      highlight=False, legacy_windows=False)
    # One-line facts are never wrapped by rich (soft_wrap): a log keeps them greppable.
    console.print(Text(f"explr audit: {report.model} (mode: {report.mode})", style="bold"), soft_wrap=True)
    if report.inputs:
        console.print(Text(f"inputs: {report.inputs}"), soft_wrap=True)
    console.print(parameter_table(report))
    console.print(Text(f"findings ({len(report.findings)}):" if report.findings else "findings: none"))
    if report.findings:
        console.print(findings_table(report))
    console.print(verification_text(report.verification), soft_wrap=True)
    if report.verification.detail:
        console.print(Text(f"  {report.verification.detail}", style="dim"), soft_wrap=True)
    console.print(Text(report.summary(), style="bold"), soft_wrap=True)
    out = buffer.getvalue()
    return out if color else "".join(line.rstrip() + "\n" for line in out.splitlines())  # no padding in logs


def render_markdown(markdown: str, *, width: int, color: bool = True) -> str:
    """Markdown (a rule's documentation) laid out for a terminal: headings, emphasis, code blocks."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color,
                      color_system="standard" if color else None, emoji=False, legacy_windows=False)
    console.print(Markdown(markdown))
    return buffer.getvalue()


def lock_diff_text(lock_path: Path, lines: Sequence[str]) -> str:
    """The readable difference between a model and its lock file (stderr of `explr audit --lock`)."""
    return f"explr: the model differs from {lock_path}:\n" + "".join(f"  {line}\n" for line in lines)
