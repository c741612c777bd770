"""`explr check MODEL CONFIG`: explr.check -> summary table (stdout) | JSON -> exit 0 passed / 1 failed. Wiring only."""
from __future__ import annotations

import dataclasses
import enum
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from explr.cli.app import app
from explr.cli.convert import HELP as CONVERT_HELP
from explr.cli.convert import Interval
from explr.cli.progress import internal_errors_as_exit_2, note, progress_bar
from explr.errors import ExplrError


class DeviceChoice(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DtypeChoice(str, enum.Enum):
    float64 = "float64"
    float32 = "float32"
    bfloat16 = "bfloat16"


class AmpChoice(str, enum.Enum):
    bfloat16 = "bfloat16"
    float16 = "float16"


def emit_report(report, *, as_json: bool, plot: Path | None) -> int:
    from explr.check.render import render_text

    if plot is not None:
        from explr.check.plot import save_plot
        save_plot(report, str(plot))
        note(f"wrote {plot}")
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(render_text(report, color=sys.stdout.isatty()))
    return 0 if report.passed else 1


def check_plot_path(plot: Path | None) -> None:
    if plot is not None and not plot.parent.is_dir():
        raise ExplrError(f"--plot {plot}: directory {plot.parent} does not exist; create it or choose another path")


@app.command("check")
def check_command(
    model: str = typer.Argument(..., metavar="MODEL", help="path/to/file.py[:NAME] or package.module:NAME"),
    config: str = typer.Argument(..., metavar="CONFIG", help="A training config in any format `explr convert` reads."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps of each run (default: as many as fit --budget, at most 200).", rich_help_panel="Run", metavar="N"),
    budget: Optional[float] = typer.Option(None, "--budget", help="Seconds the whole check may take when --steps is not given (default 90): the first steps are timed, then the steps (and the synthetic batch size) are chosen to fit.", rich_help_panel="Run", metavar="SECONDS"),
    amp: Optional[AmpChoice] = typer.Option(None, "--amp", help="Train under torch.autocast with this dtype (float16 adds a GradScaler); needs --dtype float32.", rich_help_panel="Run"),
    no_compress: bool = typer.Option(False, "--no-compress", help="Run the literal first N steps instead of compressing the schedule.", rich_help_panel="Run"),
    data: Optional[str] = typer.Option(None, "--data", help="module:function returning (inputs, target) batches (default: train_batches() in the model file, else synthetic data).", rich_help_panel="Run", metavar="MODULE:FN"),
    check_batch_size: int = typer.Option(16, "--check-batch-size", help="Batch size of the synthetic data.", rich_help_panel="Run", metavar="N"),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device", help="auto picks CUDA when present.", rich_help_panel="Run"),
    dtype: DtypeChoice = typer.Option(DtypeChoice.float64, "--dtype", rich_help_panel="Run"),
    approximate: bool = typer.Option(False, "--approximate", help="Check a setup without exact conversion (Nesterov, Adam, clipping).", rich_help_panel="Comparison"),
    keep_eps: bool = typer.Option(False, "--keep-eps", help="Keep the model's normalization eps (default: 1e-30 in both runs).", rich_help_panel="Comparison"),
    tolerance: Optional[float] = typer.Option(None, "--tolerance", help="Override the justified tolerance.", rich_help_panel="Comparison", metavar="X"),
    si: Optional[list[str]] = typer.Option(None, "--si", help="Treat exactly these parameters as SI instead of auditing (repeat; to see what a wrong SI set does).", rich_help_panel="Comparison", metavar="NAME"),
    lock: Optional[str] = typer.Option(None, "--lock", help="Take the SI parameters from this lock file (explr audit --write-lock) instead of auditing.", rich_help_panel="Comparison", metavar="FILE"),
    seed: int = typer.Option(0, "--seed", rich_help_panel="Run", metavar="N"),
    fmt: Optional[str] = typer.Option(None, "--format", help="Config format (default: detected).", rich_help_panel="Config", metavar="FORMAT"),
    iters_per_epoch: Optional[int] = typer.Option(None, "--iters-per-epoch", rich_help_panel="Config", metavar="N"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name for iterations per epoch (cifar10, imagenet, ...).", rich_help_panel="Config", metavar="NAME"),
    dataset_size: Optional[int] = typer.Option(None, "--dataset-size", rich_help_panel="Config", metavar="N"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="The config's per-device batch size (for iterations per epoch).", rich_help_panel="Config", metavar="N"),
    num_devices: Optional[int] = typer.Option(None, "--num-devices", rich_help_panel="Config", metavar="N"),
    drop_last: Optional[bool] = typer.Option(None, "--drop-last/--no-drop-last", rich_help_panel="Config"),
    scheduler_interval: Optional[Interval] = typer.Option(None, "--scheduler-interval", help="How the training code steps a torch scheduler (Hydra; default epoch).", rich_help_panel="Config"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help=CONVERT_HELP["epochs"], rich_help_panel="Config", metavar="N"),
    total_iters: Optional[int] = typer.Option(None, "--total-iters", help=CONVERT_HELP["total_iters"], rich_help_panel="Config", metavar="N"),
    optimizer_class: Optional[str] = typer.Option(None, "--optimizer-class", help=CONVERT_HELP["optimizer_class"], rich_help_panel="Config", metavar="CLASS"),
    scheduler_class: Optional[str] = typer.Option(None, "--scheduler-class", help=CONVERT_HELP["scheduler_class"], rich_help_panel="Config", metavar="CLASS"),
    as_json: bool = typer.Option(False, "--json", help="Print the explr.check/1 JSON report.", rich_help_panel="Output"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw loss, deviation vs tolerance and noise floor, weight-norm growth and the LR ratio to this PNG (needs matplotlib: the plot extra of explr).", rich_help_panel="Output", metavar="PNG"),
) -> int:
    """Train the original and the converted setup side by side and show the outputs match."""
    with internal_errors_as_exit_2("the check"):
        from explr.check.api import CheckOptions, check
        from explr.configs.adapter import ReadOptions

        check_plot_path(plot)
        if si and lock:
            raise ExplrError("give only one of --si and --lock: both say which parameters are scale-invariant")
        options = CheckOptions(steps=steps, compress=not no_compress, device=device.value, dtype=dtype.value,
                               batch_size=check_batch_size, seed=seed, approximate=approximate,
                               tolerance=tolerance, data=data, keep_eps=keep_eps,
                               amp=amp.value if amp else None)
        if budget is not None:
            options = dataclasses.replace(options, budget=budget)
        read = ReadOptions(iters_per_epoch=iters_per_epoch, dataset=dataset, dataset_size=dataset_size,
                           batch_size=batch_size, num_devices=num_devices, drop_last=drop_last,
                           scheduler_interval=scheduler_interval.value if scheduler_interval else None,
                           epochs=epochs, total_iters=total_iters, optimizer_class=optimizer_class,
                           scheduler_class=scheduler_class)
        with progress_bar(sys.stderr.isatty()) as on_step:
            report = check(model, config, options=options, read_options=read, format=fmt, si=si or lock,
                           on_step=on_step, log=note)
        return emit_report(report, as_json=as_json, plot=plot)
