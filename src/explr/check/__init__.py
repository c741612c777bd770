"""`explr check`: train the original and the converted setup side by side and prove the outputs match.

`explr.check(model, config, ...)` is `explr.check.api.check`. The package module itself is made
callable so that `explr.check(...)` keeps working after `import explr.check` has replaced the lazy
attribute on `explr` with this module (Python binds a submodule onto its parent package on import).
"""
from __future__ import annotations

import sys
import types

from explr.check.api import CheckOptions, check
from explr.check.report import SCHEMA, TrajectoryReport

__all__ = ["SCHEMA", "CheckOptions", "TrajectoryReport", "check"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return check(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
