"""Text and plot of a ScheduleAnalysis (`explr schedule`): the phase and horizon tables, the summary
lines with the growth warning, and the LR figure written like every other output (explr.fileio)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from explr.errors import ExplrError
from explr.fileio import write_atomic
from explr.schedule.analysis import ScheduleAnalysis
from explr.schedule.horizons import growth_warning

_HORIZON_LABELS = {
    "weights_overflow_float32": "SI weights overflow float32",
    "weights_overflow_bfloat16": "SI weights overflow bfloat16",
    "grads_underflow_float16": "SI gradients underflow float16 (no loss scale)",
    "grads_underflow_float16_loss_scaled": "SI gradients underflow float16 (loss scale)",
}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def phase_rows(a: ScheduleAnalysis) -> Table:
    ipe = a.iters_per_epoch
    table = Table(title="TEXP phases (iterations are 0-based, end exclusive)")
    for col in ("phase", "epochs", "iterations", "LR", "converted LR start", "converted LR end", "growth/epoch"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in a.phases:
        epochs = f"{p.start_iter / ipe:g}-{p.end_iter / ipe:g}" if ipe else "-"  # None: epoch length unknown
        table.add_row(p.kind, epochs, f"{p.start_iter}-{p.end_iter}",
                      _fmt(p.base_lr), _fmt(p.converted_lr_start), _fmt(p.converted_lr_end), _fmt(p.growth_per_epoch))
    return table


def horizon_rows(a: ScheduleAnalysis) -> Table:
    table = Table(title="Horizons (ln(1/s) thresholds from the dtype limits and the assumptions below)")
    for col in ("event", "ln(1/s)", "step", "epoch", "when"):
        table.add_column(col, justify="left" if col in ("event", "when") else "right")
    for key, h in a.horizons.items():
        when = "within the run" if h.within_run else "never" if h.step is None else "after the end (last LR held)"
        step, epoch = ("-", "-") if h.step is None else (f"{h.step:,}", f"{a.epoch_of(h.step):,.1f}")
        table.add_row(_HORIZON_LABELS[key], f"{h.threshold_log_inv_scale:.2f}", step, epoch, when)
    return table


def render_text(a: ScheduleAnalysis) -> None:
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)
    h = a.hyper
    console.print(f"SGD lr={a.schedule.base_lr:g} momentum={h.momentum:g} dampening={h.dampening:g} "
                  f"weight_decay={h.weight_decay:g}, {a.iters_per_epoch} iterations/epoch, "
                  f"{a.schedule.total_iters} iterations")
    console.print(f"alpha = {a.alpha:.8f}   growth per step = {a.growth_per_step:.8f}   "
                  f"growth per epoch = {a.growth_per_epoch:.4f}  (at LR {a.schedule.base_lr:g})")
    console.print(phase_rows(a))
    est = a.to_json()["ln_inv_s_T_estimate"]
    console.print(f"s_T = {a.s_final:.6g}   ln(1/s_T) = {a.log_inv_s_final:.4f}   (λ/(1-γ)·Σηt estimate {est:.4f})")
    growth = growth_warning(a.run)
    if growth:
        print(f"explr: warning: {growth}", file=sys.stderr)
    console.print(horizon_rows(a))
    s = a.assumptions
    console.print(f"assumptions: original SI weights up to {s.weight_magnitude:g}, gradient elements of "
                  f"{s.grad_magnitude:g}, loss scale {s.loss_scale:g}; gradients underflow below fp16's smallest "
                  "subnormal 2^-24")


def write_plot(a: ScheduleAnalysis, path: Path) -> None:
    """Original and converted LR per epoch on a log scale (the blog's figure), written atomically."""
    if not path.parent.is_dir():
        raise ExplrError(f"--plot {path}: folder {path.parent} does not exist")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExplrError("--plot needs matplotlib: pip install matplotlib (explr's plot extra)") from None
    per_epoch = a.iters_per_epoch or 1  # epoch length unknown: the x axis counts iterations
    epochs = [(i + 1) / per_epoch for i in range(len(a.run.lrs))]
    fig, ax = plt.subplots(figsize=(7, 4))
    for values, label in ((a.run.lrs, "original LR (with weight decay)"), (a.run.converted, "TEXP LR (no decay)")):
        pts = [(e, v) for e, v in zip(epochs, values) if v > 0]  # log scale: a warmup from 0 starts off-axis
        ax.plot([e for e, _ in pts], [v for _, v in pts], label=label)
    ax.set(yscale="log", xlabel="epoch" if a.iters_per_epoch else "iteration", ylabel="learning rate",
           title="Exact TEXP schedule")
    ax.legend()
    image = io.BytesIO()
    try:
        fig.savefig(image, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    write_atomic(path, image.getvalue())
