"""`explr convert CONFIG`: read -> convert -> write (same format) -> summary. Wiring only."""
from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from explr.cli.app import app
from explr.errors import ConfigError
from explr.fileio import refuse_input


class Interval(str, enum.Enum):
    epoch = "epoch"
    step = "step"


def _table(converted, written) -> None:
    """The human summary (stderr): format, SI source, exactness, phases, final LR and weight-norm growth."""
    from rich.console import Console
    from rich.table import Table

    from explr.schedule.horizons import growth_warning

    plan, analysis = converted.plan, converted.analysis
    console = Console(file=sys.stderr, width=110)
    console.print(f"[bold]{converted.detected.name}[/] config ({converted.detected.reason}); "
                  f"{plan.iters_per_epoch or 'unknown'} iterations/epoch, {plan.total_iters} iterations")
    console.print(f"SI parameters: {converted.si.describe()}")
    verdict = "[green]exact[/]" if converted.exact else "[yellow]approximate[/]: " + "; ".join(
        converted.not_exact_because)
    console.print(f"conversion: {verdict}")
    table = Table(title="TEXP phases (SI parameters: weight decay 0, LR below; others unchanged)")
    columns = ("iterations", "epochs", "original LR", "converted LR start", "converted LR end", "growth/epoch")
    for column in columns:
        table.add_column(column, justify="right")
    ipe = plan.iters_per_epoch
    for p in analysis.phases:
        growth = f"{p.growth_per_epoch:.4f}" if p.growth_per_epoch is not None else "varies" if ipe else "-"
        epochs = f"{p.start_iter / ipe:.4g}-{p.end_iter / ipe:.4g}" if ipe else "-"
        table.add_row(f"{p.start_iter}-{p.end_iter}", epochs,
                      f"{p.base_lr:.4g}",
                      f"{p.converted_lr_start:.4g}", f"{p.converted_lr_end:.4g}", growth)
    console.print(table)
    console.print(f"final converted LR {analysis.run.converted[-1]:.4g}; SI weight norms grow by "
                  f"1/s_T = {1 / analysis.s_final:.4g}")
    too_large = growth_warning(analysis.run)
    if too_large:
        console.print(f"[yellow]warning[/]: {too_large}", markup=True, highlight=False)
    for finding in converted.findings:  # every one --json lists (EXP205: fp16 underflow among them)
        console.print(finding.one_line(), markup=False, highlight=False, soft_wrap=True)  # one greppable line
    for note in written.notes:
        console.print(f"note: {note}")
    console.print(f"written to {written.path}" if written.path else "converted config on stdout")


HELP = {
    "config": "Training config: explr, Lightning CLI, Hydra, timm, detectron2 or pycls YAML, or an mmengine .py.",
    "format": "Skip auto-detection and read this format.",
    "output": "Write the converted config here (default: stdout).",
    "in_place": "Overwrite the input (plan formats: write NAME.explr.yaml next to it).",
    "model": "Audit this model now to know which parameters are SI.",
    "lock": "Use the SI parameters recorded in this lock file.",
    "approximate": "Convert setups with no exact equivalent (Nesterov, Adam, clipping, EMA); say what deviates.",
    "json": "Print the explr.convert/1 summary on stdout (then the config needs -o or --in-place).",
    "interval": "How the training code steps a torch scheduler (Hydra; default epoch).",
    "verify": "After writing, train --model with the original and the converted setup side by side (explr check, "
              "within its time budget; GPU when present); exit 1 when they differ. With --lock the SI set "
              "comes from the lock, checked against --model.",
    "epochs": "Length of training in epochs (when the config keeps it under a key explr does not know).",
    "total_iters": "Length of training in optimizer steps.",
    "optimizer_class": "LightningCLI: the optimizer class the script fixes (parser.add_optimizer_args), e.g. "
                       "torch.optim.SGD, when the config's optimizer has no class_path.",
    "scheduler_class": "LightningCLI: the scheduler class the script fixes (parser.add_lr_scheduler_args), e.g. "
                       "torch.optim.lr_scheduler.MultiStepLR.",
    "check": "Write nothing; exit 1 with a diff when the committed converted config (-o FILE; plan formats: "
             "NAME.explr.yaml next to CONFIG) differs from what convert would write now.",
}


def _check(converted, output: Optional[str]) -> int:
    """--check: compare, write nothing; stale or missing -> reason + diff on stderr, exit 1."""
    from explr.configs.write import committed_output, staleness

    stale = staleness(committed_output(converted, output))
    print(f"explr: {stale}" if stale else "explr: converted config is up to date", file=sys.stderr,
          end="" if stale and stale.endswith("\n") else "\n")
    return 1 if stale else 0


@app.command("convert")
def convert_command(
    config: str = typer.Argument(..., metavar="CONFIG", help=HELP["config"]),
    format: Optional[str] = typer.Option(None, "--format", help=HELP["format"], rich_help_panel="Input", metavar="FORMAT"),
    output: Optional[str] = typer.Option(None, "-o", "--output", help=HELP["output"], rich_help_panel="Output", metavar="FILE"),
    in_place: bool = typer.Option(False, "--in-place", help=HELP["in_place"], rich_help_panel="Output"),
    model: Optional[str] = typer.Option(None, "--model", help=HELP["model"], rich_help_panel="Which parameters are SI", metavar="MODEL"),
    lock: Optional[str] = typer.Option(None, "--lock", help=HELP["lock"], rich_help_panel="Which parameters are SI", metavar="FILE"),
    approximate: bool = typer.Option(False, "--approximate", help=HELP["approximate"], rich_help_panel="Input"),
    as_json: bool = typer.Option(False, "--json", help=HELP["json"], rich_help_panel="Output"),
    iters_per_epoch: Optional[int] = typer.Option(None, "--iters-per-epoch", help="Optimizer steps per epoch.", rich_help_panel="Iterations per epoch", metavar="N"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Well-known dataset (cifar10, imagenet, ...).", rich_help_panel="Iterations per epoch", metavar="NAME"),
    dataset_size: Optional[int] = typer.Option(None, "--dataset-size", help="Training examples per epoch.", rich_help_panel="Iterations per epoch", metavar="N"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Per-device batch size.", rich_help_panel="Iterations per epoch", metavar="N"),
    num_devices: Optional[int] = typer.Option(None, "--num-devices", help="Devices sharing each epoch.", rich_help_panel="Iterations per epoch", metavar="N"),
    drop_last: Optional[bool] = typer.Option(None, "--drop-last/--no-drop-last", help="Last partial batch dropped?", rich_help_panel="Iterations per epoch"),
    scheduler_interval: Optional[Interval] = typer.Option(None, "--scheduler-interval", help=HELP["interval"], rich_help_panel="Input"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help=HELP["epochs"], rich_help_panel="Length of training", metavar="N"),
    total_iters: Optional[int] = typer.Option(None, "--total-iters", help=HELP["total_iters"], rich_help_panel="Length of training", metavar="N"),
    optimizer_class: Optional[str] = typer.Option(None, "--optimizer-class", help=HELP["optimizer_class"], rich_help_panel="Input", metavar="CLASS"),
    scheduler_class: Optional[str] = typer.Option(None, "--scheduler-class", help=HELP["scheduler_class"], rich_help_panel="Input", metavar="CLASS"),
    check: bool = typer.Option(False, "--check", help=HELP["check"], rich_help_panel="Output"),
    verify: bool = typer.Option(False, "--verify", help=HELP["verify"], rich_help_panel="Output"),
) -> int:
    """Convert weight decay + LR schedule into the exactly equivalent TEXP schedule, in the config's own format."""
    from explr.configs.api import convert, write_converted
    from explr.configs.write import converted_output

    if check and in_place:
        raise ConfigError("--check compares the committed output and writes nothing: drop --in-place")
    if verify and (model is None or check):
        raise ConfigError("--verify trains the converted setup: it needs --model MODEL (and not --check)")
    model_file = model.split(":")[0] if model and model.split(":")[0].endswith(".py") else None
    refuse_input(Path(output) if output else None, "-o", {"lock file": lock, "model file": model_file})
    converted = convert(config, format=format, model=None if verify and lock else model, lock=lock,
                        approximate=approximate,
                        iters_per_epoch=iters_per_epoch, dataset=dataset, dataset_size=dataset_size,
                        batch_size=batch_size, num_devices=num_devices, drop_last=drop_last,
                        scheduler_interval=scheduler_interval.value if scheduler_interval else None,
                        epochs=epochs, total_iters=total_iters, optimizer_class=optimizer_class,
                        scheduler_class=scheduler_class)
    if check:
        return _check(converted, output)
    if as_json and output is None and not in_place:
        written = converted_output(converted)  # rendered (so every error shows) but not printed
        print("explr: --json without -o/--in-place: only the summary is printed", file=sys.stderr)
    else:
        written = write_converted(converted, output, in_place)
        if written.path is None:
            sys.stdout.write(written.text)
    verified = _verify(converted, model) if verify and model else None
    if as_json:
        summary = {**converted.to_json(), **({"check": verified.to_json()} if verified else {})}
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        _table(converted, written)
    if verified is not None and not as_json:
        from explr.check.render import render_text
        sys.stderr.write(render_text(verified))
    return 0 if verified is None or verified.passed else 1


def _verify(converted, model: str):
    """--verify: the trajectory check on the converted setup (progress on stderr; stdout may hold the config)."""
    from explr.check.api import verify_converted
    from explr.cli.progress import internal_errors_as_exit_2, note, progress_bar

    with internal_errors_as_exit_2("the check"), progress_bar(sys.stderr.isatty()) as on_step:
        return verify_converted(converted, model, on_step=on_step, log=note)
