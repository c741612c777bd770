"""Command-line entry point: wiring only. Errors become one stderr line and exit code 2."""
from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from explr.cli.app import DEBUG, app
from explr.errors import ExplrError

# Command modules register on `app` when imported (one module per command).
from explr.cli import audit as _audit  # noqa: F401,E402
from explr.cli import convert as _convert  # noqa: F401,E402
from explr.cli import rules as _rules  # noqa: F401,E402
from explr.cli import schedule as _schedule  # noqa: F401,E402
from explr.cli import check as _check  # noqa: F401,E402
from explr.cli import demo as _demo  # noqa: F401,E402

__all__ = ["app", "main"]

# Usage errors: typer >= 0.24 vendors click as typer._click, older typer raises click's own. Looked up at run
# time so that the type checker sees one type whichever of the two (or both) is installed.
try:
    _ClickException: Any = importlib.import_module("typer._click").ClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    _ClickException = importlib.import_module("click").ClickException


def _without_flag_placeholders(command: Any) -> Any:
    """Boolean flags take no value: drop the `<bool>` typer shows for them, which invites `--json true`."""
    commands = [command, *getattr(command, "commands", {}).values()]
    for cmd in commands:
        help_option = cmd.get_help_option(cmd.context_class(cmd))
        for param in [*cmd.params, *([help_option] if help_option else [])]:
            if getattr(param, "is_flag", False):
                param.metavar = ""
    return command


def main(argv: list[str] | None = None) -> int:
    command = _without_flag_placeholders(typer.main.get_command(app))
    try:
        result = command.main(args=argv, prog_name="explr", standalone_mode=False)
    except ExplrError as exc:
        if DEBUG["on"]:
            raise
        print(f"explr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("explr: aborted", file=sys.stderr)
        return 2
    except _ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())
