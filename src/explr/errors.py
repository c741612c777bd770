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
