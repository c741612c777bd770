"""Human summary of a TrajectoryReport (rich table on stdout; plain text when not a terminal)."""
from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from explr.check.report import TrajectoryReport


RESULTS = {"pass": "PASSED: the converted setup trains the same network",
           "fail": "FAILED: the trajectories differ",
           "inconclusive": "INCONCLUSIVE: the deviation cannot be told from noise at this precision"}


def _jump(report: TrajectoryReport) -> str:
    if report.noise_jump_step is None:
        return ""
    return (f"  (before step {report.noise_jump_step}, where the 1-ulp twin jumped to {report.noise_jump_max:.1e}: "
            "a discrete event, not round-off)")


def _fmt(value: float | None, spec: str = ".2e") -> str:
    return "—" if value is None else format(value, spec)


def summary_rows(report: TrajectoryReport) -> list[tuple[str, str]]:
    measured, predicted = report.final_norm_ratio
    growth = (f"{measured:.6g} measured vs {predicted:.6g} predicted (1/s_t; max rel. error "
              f"{_fmt(report.max_norm_ratio_error)})" if measured is not None and predicted is not None
              else "no exact prediction for this setup" if measured is not None else "—")
    rows = [
        ("result", RESULTS[report.outcome]),
        ("max rel. output deviation", _fmt(report.max_rel_deviation)),
        ("tolerance", f"{report.tolerance:.2e}  ({report.tolerance_reason})"),
        ("noise floor", _fmt(report.noise_floor) + _jump(report)),
        ("steps", f"{report.steps} on {report.device}, {report.dtype}"),
        ("phases hit", f"{report.phases_hit} of {report.phases_total}"),
        ("SI parameters", f"{report.si_params} of {report.total_params} tensors on TEXP"),
        ("‖θ̃‖/‖θ‖ of the SI set", growth),
    ]
    if report.growth_per_epoch is not None:
        rows.append(("TEXP LR growth per epoch", f"×{report.growth_per_epoch:.4f} at {report.iters_per_epoch} "
                                                 "iterations/epoch at the base LR"))
    if report.eval_mode is not None:
        ev = report.eval_mode
        rows.append(("eval mode", ev.advice if not ev.running_stats else
                     f"deviation {_fmt(ev.deviation_before)} as trained, {_fmt(ev.deviation_after)} after "
                     f"recalibrating on {ev.batches} batches; expect: {ev.expect.replace('_', ' ')}"))
    return rows


def render_text(report: TrajectoryReport, *, color: bool = False, width: int = 110) -> str:
    table = Table(title=f"explr check: {report.model} with {report.config}", show_header=False, expand=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in summary_rows(report):
        table.add_row(key, value)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width)
    console.print(table)
    if report.diagnosis is not None:
        for line in report.diagnosis.lines():
            console.print(line, highlight=False)
    if report.eval_mode is not None and report.eval_mode.expect == "recalibrated":
        console.print(f"eval mode: {report.eval_mode.advice}", highlight=False)
    for line in report.notes:
        console.print(f"note: {line}", highlight=False)
    return buffer.getvalue()
