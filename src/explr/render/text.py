"""Text renderer (rich): a table grouped by module, the findings, the verification line and the summary.

Without a terminal (CI logs) the width is chosen so that no parameter or module name is cut;
columns fold rather than truncate, so even a narrow terminal never loses part of a name.
"""
from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from explr.audit_report import AuditReport, ParamVerdict, Verification
from explr.findings import Severity

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


def findings_table(report: AuditReport) -> Table:
    """One row per finding, most severe first; a long message wraps under itself (hanging indent)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    ranked = sorted(report.findings, key=lambda f: -f.severity.rank)  # stable: keeps rule order within a level
    for f in ranked:
        where = f"{f.module}: " if f.module else ""
        table.add_row(Text(f"  {f.severity.value}", style=SEVERITY_STYLE[f.severity]), Text(f.code),
                      Text(where + f.message))
    return table


def verification_text(v: Verification) -> Text:
    text = Text("verification: ")
    text.append(v.status, style=VERIFICATION_STYLE.get(v.status, ""))
    if v.max_rel_error is not None:
        text.append(f" (max relative error {v.max_rel_error:.2e})")
    return text


def render_text(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    width = max(width, _least_width(report)) if width else _natural_width(report)
    console = Console(file=io.StringIO(), width=width, force_terminal=color,
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
    out = console.file.getvalue()
    return out if color else "".join(line.rstrip() + "\n" for line in out.splitlines())  # no padding in logs
