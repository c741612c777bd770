"""The typer app object; command modules register themselves on it (one module per command)."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="explr",
    help="Prove scale invariance and convert weight decay + step-decay LR into the exactly equivalent TEXP schedule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEBUG = {"on": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors.")) -> None:
    DEBUG["on"] = debug
