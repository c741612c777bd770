"""Let a subpackage double as the public function of the same name (`explr.audit(...)`, `explr.check(...)`).

Python binds a submodule onto its parent package when it is imported, so once any `explr.audit.*`
module is loaded, `explr.audit` is the package, not the lazily exported function. Making the package
module callable keeps `explr.audit(model, inputs)` working either way.
"""
from __future__ import annotations

import importlib
import sys
import types


def make_callable(package: str, target: str) -> None:
    """Calling module `package` calls `target` ("module.path:function"), imported on first call."""
    module_path, function = target.split(":")

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(importlib.import_module(module_path), function)(*args, **kwargs)

    sys.modules[package].__class__ = _CallableModule
