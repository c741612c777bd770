"""load_model(spec): the model a spec names, built, with example inputs (what `explr audit MODEL` is handed)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from explr.load.choose import resolve_model
from explr.load.inputs import example_inputs_for
from explr.load.spec import imported, parse_spec


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    example_inputs: tuple[Any, ...]
    inputs_note: str  # how the inputs were chosen, stated in the report
    name: str  # the spec as the user wrote it
    path: str | None  # the model's source file, when known (SARIF locations)


def load_model(spec: str, *, kwargs: dict[str, Any] | None = None,
               input_shapes: Sequence[tuple[int, ...]] = (), device: str = "cpu") -> LoadedModel:
    """Build the model a spec names and example inputs for it (spec forms: see explr.load).

    device="meta": import and build under `torch.device("meta")`, so no weight is allocated;
    the inputs are meta tensors too. The model is not run here: the audit runs it first and
    quotes the model's own error when it rejects the inputs.
    """
    parsed = parse_spec(spec)
    target = torch.device(device)
    build_context = torch.device("meta") if target.type == "meta" else contextlib.nullcontext()
    with build_context, imported(parsed) as module:
        where, model = resolve_model(module, parsed, kwargs or {})
        model = model.to(target)
        inputs, note = example_inputs_for(model, module, parsed.target, input_shapes, target)
    path = module.__file__ if parsed.is_file else getattr(module, "__file__", None)
    return LoadedModel(model, inputs, note, spec, path)
