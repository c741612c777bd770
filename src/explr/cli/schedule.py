"""`explr schedule`: the exact TEXP schedule for SGD hyperparameters. Wiring only (rendering: explr.render.schedule)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from explr.cli.app import app
from explr.errors import ConfigError
from explr.lr_schedule import DECAYS, schedule_from_epochs
from explr.render.schedule import render_text, write_plot
from explr.schedule.analysis import analyze
from explr.schedule.horizons import Assumptions
from explr.schedule.phantom import SGDHyper


def parse_milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(m) for m in text.replace(" ", "").split(",") if m)
    except ValueError:
        raise ConfigError(f"--milestones {text!r} must be comma-separated whole epochs, e.g. 80,120") from None


@app.command("schedule")
def schedule_command(
    lr: float = typer.Option(..., "--lr", help="Base learning rate of the original run."),
    momentum: float = typer.Option(..., "--momentum", help="SGD momentum, in [0, 1)."),
    weight_decay: float = typer.Option(..., "--weight-decay", help="Weight decay of the scale-invariant params."),
    iters_per_epoch: int = typer.Option(..., "--iters-per-epoch", help="Optimizer steps per epoch."),
    milestones: str = typer.Option("80,120", "--milestones", help="Step-decay epochs, comma-separated ('' = none)."),
    gamma: float = typer.Option(0.1, "--gamma", help="LR factor at each milestone."),
    epochs: int = typer.Option(160, "--epochs", help="Length of the run in epochs."),
    warmup_epochs: int = typer.Option(0, "--warmup-epochs", help="Linear warmup from LR 0, in epochs."),
    dampening: float = typer.Option(0.0, "--dampening", help="SGD dampening."),
    decay: str = typer.Option("step", "--decay", help=f"LR decay: {', '.join(DECAYS)}."),
    grad_magnitude: float = typer.Option(1e-4, "--grad-magnitude", help="Assumed SI gradient element size."),
    weight_magnitude: float = typer.Option(1.0, "--weight-magnitude", help="Assumed largest SI weight element."),
    loss_scale: float = typer.Option(2.0 ** 16, "--loss-scale", help="fp16 loss scale for the horizon."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (schema explr.schedule/1) instead of tables."),
    plot: Path = typer.Option(None, "--plot", help="Also draw original vs converted LR (log scale) to this PNG."),
) -> int:
    """Exact TEXP schedule: α, LR growth per step/epoch, phases, s_T and numeric horizons."""
    try:
        schedule = schedule_from_epochs(lr, iters_per_epoch, epochs, parse_milestones(milestones), gamma,
                                        warmup_epochs, decay)
        a = analyze(schedule, SGDHyper(momentum, dampening, weight_decay), iters_per_epoch,
                    Assumptions(weight_magnitude, grad_magnitude, loss_scale))
    except ValueError as exc:
        raise ConfigError(f"explr schedule: {exc}") from None
    if plot is not None:  # first: a bad --plot path is exit 2 with nothing printed
        write_plot(a, plot)
        print(f"explr: wrote {plot}", file=sys.stderr)
    if as_json:
        sys.stdout.write(json.dumps(a.to_json(), indent=2, allow_nan=False) + "\n")
    else:
        render_text(a)
    return 0
