"""Model spec -> nn.Module + example inputs (what `explr audit MODEL` is handed).

Spec forms: `path/to/file.py` (module-level `model`, a zero-argument factory such as
`build_model()`, or the one nn.Module subclass constructible without arguments),
`path/to/file.py:NAME` (attribute, class or callable) and `package.module:NAME`.
Every failure is a one-line LoadError naming the file, attribute or module.

spec.py imports what a spec names, choose.py finds and builds the model in it, inputs.py gives it
example inputs; api.py's load_model does all three.
"""
from __future__ import annotations

from explr.load.api import LoadedModel, load_model
from explr.load.choose import parse_kwargs
from explr.load.inputs import describe_inputs, parse_shape
from explr.load.spec import ModelSpec, parse_spec

__all__ = ["LoadedModel", "ModelSpec", "describe_inputs", "load_model", "parse_kwargs", "parse_shape", "parse_spec"]
