"""`explr audit MODEL`: load -> explr.audit.api.audit -> render -> exit code. Wiring only."""
from __future__ import annotations

import contextlib
import enum
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import typer

from explr.cli import baseline
from explr.cli.app import DEBUG, app
from explr.errors import ExplrError, quote_error
from explr.render import emit, render

if TYPE_CHECKING:
    from explr.audit_report import AuditReport
    from explr.load import LoadedModel


class OutputFormat(str, enum.Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


class Device(str, enum.Enum):
    cpu = "cpu"
    meta = "meta"


def note(message: str) -> None:
    """A diagnostic: stderr, so stdout stays pure data."""
    print(f"explr: {message}", file=sys.stderr)


@contextlib.contextmanager
def internal_errors_as_exit_2(model: str) -> Iterator[None]:
    """An unexpected exception (a bug, not bad input) still ends as one line and exit 2, unless --debug."""
    try:
        yield
    except (ExplrError, typer.Exit):
        raise
    except Exception as exc:
        if DEBUG["on"]:
            raise
        raise ExplrError(f"internal error while auditing {model}: {quote_error(exc)}; "
                         "rerun with `explr --debug audit ...` for the traceback and report it") from exc


def run_audit(loaded: LoadedModel, *, verify: bool) -> AuditReport:
    from explr.audit.api import audit  # lazy: keeps `explr --help` fast
    try:
        return audit(loaded.model, loaded.example_inputs, verify=verify,
                     model_name=loaded.name, inputs_note=loaded.inputs_note)
    except ExplrError as exc:  # e.g. inputs the model rejects: name the model file in the one line
        exc.args = (f"{loaded.name}: {exc}",)
        note(f"inputs: {loaded.inputs_note}")  # which inputs it rejected (no report states them now)
        raise


def _text_layout(output: Path | None) -> tuple[bool, int | None]:
    """Colour and terminal width only when writing to a terminal; otherwise a width that cuts no name."""
    if output is None and sys.stdout.isatty():
        return True, shutil.get_terminal_size().columns
    return False, None


def _check_output(output: Path | None) -> None:
    if output is not None and not output.parent.is_dir():
        raise ExplrError(f"-o {output}: directory {output.parent} does not exist; create it or choose another path")


@app.command("audit")
def audit_command(
    model: str = typer.Argument(..., metavar="MODEL", help="path/to/file.py, path/to/file.py:NAME or package.module:NAME"),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", help='JSON arguments for a factory or class, e.g. \'{"num_classes": 10}\'.', rich_help_panel="Model", metavar="JSON"),
    input_shape: Optional[list[str]] = typer.Option(None, "--input-shape", help="Example input shape such as 2,3,32,32; repeat per input.", rich_help_panel="Model", metavar="SHAPE"),
    device: Device = typer.Option(Device.cpu, "--device", help="meta: no weights allocated, no numeric check.", rich_help_panel="Model"),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the numeric confirmation.", rich_help_panel="Model"),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="Output format.", rich_help_panel="Output"),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="Exit 1 at or above: error, warning, info, never (default: fail-on in pyproject tool.explr, else error).", rich_help_panel="CI", metavar="LEVEL"),
    select: Optional[str] = typer.Option(None, "--select", help="Only these rule codes/prefixes, e.g. EXP1,EXP301.", rich_help_panel="CI", metavar="CODES"),
    ignore: Optional[str] = typer.Option(None, "--ignore", help="Skip these rule codes/prefixes.", rich_help_panel="CI", metavar="CODES"),
    lock: Optional[Path] = typer.Option(None, "--lock", help="Fail (EXP301) with a diff when the model no longer matches FILE.", rich_help_panel="CI", metavar="FILE"),
    write_lock: Optional[Path] = typer.Option(None, "--write-lock", help="Record the SI set, groups and structure in FILE.", rich_help_panel="CI", metavar="FILE"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the report to FILE, not stdout.", rich_help_panel="Output", metavar="FILE"),
) -> int:
    """Prove which parameters are scale-invariant, explain every verdict, and confirm it numerically."""
    with internal_errors_as_exit_2(model):
        from explr.load import load_model, parse_kwargs, parse_shape  # lazy: torch loads only when auditing
        _check_output(output)
        settings = baseline.resolve_settings(select, ignore, fail_on.value if fail_on else None)  # exit 2 early
        locked = baseline.open_lock(lock, write_to=write_lock)
        loaded = load_model(model, kwargs=parse_kwargs(kwargs), device=device.value,
                            input_shapes=[parse_shape(s) for s in input_shape or ()])
        if fmt is not OutputFormat.text or output is not None:  # a text report on stdout states them itself
            note(f"inputs: {loaded.inputs_note}")
        report = run_audit(loaded, verify=not no_verify)
        outcome = baseline.apply_rules(report, loaded.model, settings, locked)
        color, width = _text_layout(output) if fmt is OutputFormat.text else (False, None)
        emit(render(report, fmt.value, model_path=loaded.path, color=color, width=width), output)
        if output is not None:
            note(f"wrote {output}")
        baseline.record_lock(report, loaded.model, write_lock)
        return outcome.exit_code
