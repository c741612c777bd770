"""Copying a user's model so explr never mutates it."""
from __future__ import annotations

import copy

import torch
from torch import nn

from explr.errors import TraceError, quote_error


def private_copy(model: nn.Module) -> nn.Module:
    """A deep copy to run on, also for models deepcopy refuses (tensors computed by hooks)."""
    try:
        return copy.deepcopy(model)
    except RuntimeError:  # non-leaf tensor attributes (old hook-based weight_norm's `weight`)
        pass
    derived = {id(v): v.detach().clone() for m in model.modules() for v in vars(m).values()
               if isinstance(v, torch.Tensor) and v.grad_fn is not None}
    try:
        return copy.deepcopy(model, derived)
    except Exception as exc:  # noqa: BLE001 - any failure here is the model's
        raise TraceError(f"cannot copy {type(model).__name__} for a side-effect-free audit: "
                         f"{quote_error(exc)}") from exc
