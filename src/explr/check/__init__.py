"""`explr check`: train the original and the converted setup side by side and prove the outputs match.

`explr.check(model, config, ...)` is `explr.check.api.check`; the package is callable (see
explr._callable_module).
"""
from __future__ import annotations

from explr._callable_module import make_callable
from explr.check.api import CheckOptions, check
from explr.check.report import SCHEMA, TrajectoryReport

__all__ = ["SCHEMA", "CheckOptions", "TrajectoryReport", "check"]

make_callable(__name__, "explr.check.api:check")
