"""Errors explr reports to users as one line (exit code 2), never as a traceback.

Every message names the file, key or module at fault and says what to do.
"""
from __future__ import annotations


class ExplrError(Exception):
    """Base class: a user-facing problem with the input (CLI exit code 2)."""

    exit_code = 2


class LoadError(ExplrError):
    """The model spec, model file or factory could not give an nn.Module."""


class TraceError(ExplrError):
    """The model could not be run or captured on the example inputs."""


class ConfigError(ExplrError):
    """A training config is invalid, unrecognised or inconsistent."""


class UnsupportedError(ExplrError):
    """The setup has no exact conversion (Nesterov, Adam, clipping...) and approximation was not asked for."""


class OutputError(ExplrError):
    """An output file could not be written."""


def quote_error(exc: BaseException) -> str:
    """`Type: first line of the message` -- one line, for quoting a model's or library's own error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
