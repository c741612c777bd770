"""Example inputs for a built model: --input-shape, the file's example_inputs(), or a guess from its first layer."""
from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Sequence

import torch
from torch import nn

from explr.errors import LoadError, quote_error

INPUTS_FUNCTION = "example_inputs"  # the model file's own inputs: a function of no arguments
_SPATIAL_DEFAULT = {1: (64,), 2: (32, 32), 3: (16, 16, 16)}  # Conv1d / Conv2d / Conv3d
_BATCH, _TOKENS = 2, 16  # batch 2: train-mode BatchNorm needs more than one value per channel
MAX_INPUT_ELEMENTS = 2**28  # 2 GiB in float64: the audit's copies and probe forwards multiply it


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise LoadError(f"--input-shape {text!r} is not a shape: write comma-separated positive "
                        "integers such as 2,3,32,32")
    elements = math.prod(dims)
    if elements > MAX_INPUT_ELEMENTS:
        raise LoadError(f"--input-shape {text!r} is {elements:.3g} elements, more than an example input needs "
                        f"(at most {MAX_INPUT_ELEMENTS:,}): use a batch of 2 at a small size, such as 2,3,32,32")
    return dims


def _first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    for name, layer in model.named_modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear, nn.Embedding, nn.EmbeddingBag)):
            return name, layer
    return None


def _default_shape(layer: nn.Module) -> tuple[int, ...]:
    if isinstance(layer, nn.modules.conv._ConvNd):
        return (_BATCH, layer.in_channels, *_SPATIAL_DEFAULT[len(layer.kernel_size)])
    if isinstance(layer, nn.Linear):
        return (_BATCH, layer.in_features)
    return (_BATCH, _TOKENS)  # Embedding: a batch of token ids


def _float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())


def _random_input(shape: tuple[int, ...], model: nn.Module, first: nn.Module | None,
                  device: torch.device, generator: torch.Generator) -> torch.Tensor:
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        if device.type == "meta":
            return torch.empty(shape, dtype=torch.long, device=device)
        return torch.randint(0, first.num_embeddings, shape, generator=generator).to(device)
    if device.type == "meta":
        return torch.empty(shape, dtype=_float_dtype(model), device=device)
    return torch.randn(shape, generator=generator, dtype=_float_dtype(model)).to(device)


def describe_inputs(inputs: Sequence[Any]) -> str:
    def one(x: Any) -> str:
        if isinstance(x, torch.Tensor):
            return f"{str(x.dtype).removeprefix('torch.')}[{', '.join(map(str, x.shape))}]"
        return type(x).__name__
    return ", ".join(one(x) for x in inputs)


def _inputs_from_file(module: ModuleType, where: str, device: torch.device) -> tuple[Any, ...]:
    try:
        value = getattr(module, INPUTS_FUNCTION)()
    except (Exception, SystemExit) as exc:
        raise LoadError(f"{where}: {INPUTS_FUNCTION}() raised {quote_error(exc)}; fix it or pass --input-shape") from exc
    inputs = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise LoadError(f"{where}: {INPUTS_FUNCTION}() must return a tensor or a tuple of tensors, "
                        f"not {type(value).__name__}")
    return tuple(x.to(device) for x in inputs)


def example_inputs_for(model: nn.Module, module: ModuleType, where: str, shapes: Sequence[tuple[int, ...]],
                    device: torch.device) -> tuple[tuple[Any, ...], str]:
    """Inputs and a note saying where they came from: --input-shape, example_inputs(), or the first layer."""
    found = _first_layer(model)
    first = found[1] if found else None
    generator = torch.Generator().manual_seed(0)
    if shapes:
        inputs = tuple(_random_input(s, model, first, device, generator) for s in shapes)
        return inputs, f"{describe_inputs(inputs)} (from --input-shape)"
    if callable(getattr(module, INPUTS_FUNCTION, None)):
        inputs = _inputs_from_file(module, where, device)
        return inputs, f"{describe_inputs(inputs)} (from {INPUTS_FUNCTION}() in {where})"
    if found is None:
        raise LoadError(f"{where}: cannot infer example inputs (no Conv, Linear or Embedding layer); "
                        f"pass --input-shape or define {INPUTS_FUNCTION}() in the model file")
    name, layer = found
    inputs = (_random_input(_default_shape(layer), model, layer, device, generator),)
    return inputs, (f"{describe_inputs(inputs)} (inferred from the first layer {name or '<root>'}: "
                    f"{type(layer).__name__}; pass --input-shape to change)")
