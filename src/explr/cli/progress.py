"""What the long-running commands (check, convert --verify, demo) share: stderr notes, progress, and
unexpected exceptions turned into one line (exit 2)."""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

import typer

from explr.cli.app import DEBUG
from explr.errors import ExplrError, quote_error

PROGRESS_EVERY = 5.0  # seconds between progress notes when stderr is not a terminal (CI logs)


def note(message: str) -> None:
    print(f"explr: {message}", file=sys.stderr)


class ProgressNotes:
    """`on_step(t, steps)` for logs: one line on stderr every `every` seconds, and at the last step."""

    def __init__(self, every: float = PROGRESS_EVERY, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] = note):
        self.every, self.clock, self.write = every, clock, write
        self.start = self.last = clock()

    def __call__(self, t: int, steps: int) -> None:
        now = self.clock()
        if now - self.last < self.every and t != steps:
            return
        self.last, elapsed = now, now - self.start
        left = elapsed / t * (steps - t) if t else 0.0
        self.write(f"training step {t}/{steps}, {elapsed:.0f} s so far, ~{left:.0f} s left")


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr while both runs train (a terminal), else a note every few seconds;
    stdout is left alone."""
    if not enabled:
        yield ProgressNotes()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True, redirect_stdout=False) as bar:
        task = bar.add_task("preparing (config, audit, data)", total=None)
        yield lambda t, total: bar.update(task, completed=t, total=total, description="training both runs")


@contextlib.contextmanager
def internal_errors_as_exit_2(what: str) -> Iterator[None]:
    """An unexpected exception (a bug, not bad input) still ends as one line and exit 2, unless --debug."""
    try:
        yield
    except (ExplrError, typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if DEBUG["on"]:
            raise
        raise ExplrError(f"internal error during {what}: {quote_error(exc)}; rerun with `explr --debug ...` "
                         "for the traceback and report it") from exc
