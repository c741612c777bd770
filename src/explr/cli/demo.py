"""`explr demo`: audit -> convert -> check on the bundled PreResNet-32 + CIFAR-10 config. Wiring only."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from explr.cli.app import app
from explr.cli.check import check_plot_path
from explr.cli.progress import internal_errors_as_exit_2, note, progress_bar
from explr.demo import DemoOptions


@app.command("demo")
def demo_command(
    steps: int = typer.Option(DemoOptions.steps, "--steps", help="Training steps of the check (fewer: faster, e.g. for tests)."),
    batch_size: int = typer.Option(DemoOptions.batch_size, "--check-batch-size", help="Synthetic batch size of the check."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw the check's loss, deviation, weight-norm growth and LR ratio to this PNG (needs matplotlib)."),
) -> int:
    """Run audit -> convert -> check on bundled files (about a minute on 2 CPU cores)."""
    with internal_errors_as_exit_2("the demo"):
        from explr.demo import run_demo

        check_plot_path(plot)
        result = run_demo(DemoOptions(steps=steps, batch_size=batch_size),
                          progress=lambda: progress_bar(sys.stderr.isatty()), log=note)
        if plot is not None:
            from explr.check.plot import save_plot
            save_plot(result, str(plot))
            note(f"wrote {plot}")
        return 0 if result.passed else 1
