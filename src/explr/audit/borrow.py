"""A private copy of a model for the static analysis that borrows the parameters instead of copying them.

Capture runs the model once on concrete values, and a forward may update state: BatchNorm's
running statistics, counters, caches. Modules and buffers are therefore deep-copied, but the
parameters (most of the memory: copying a 130M-parameter model costs as much as a forward pass)
are shared. A forward that writes into a parameter (`w.data.clamp_()`, F.embedding's max_norm,
`out=` / `inplace=True` aimed at it) is seen by a TorchFunctionMode, which saves the parameter
before the first write (for a call on capture proxies, before capture runs it on their concrete
values); on exit every saved parameter gets its values back, so the user's model is unchanged.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from explr.model_copy import private_copy

_F = torch.nn.functional
_STAT_WRITERS = {_F.batch_norm: (1, 2, "running_mean", "running_var"),
                 _F.instance_norm: (1, 2, "running_mean", "running_var")}
_IN_PLACE_DUNDERS = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
                               "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__",
                               "__setitem__"})


def _storage(t: torch.Tensor):
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):
        return None


def _targets(func, args: tuple, kwargs: dict) -> list:
    """Tensors a call may write into."""
    name = getattr(func, "__name__", "")
    out = list(tree_leaves(kwargs.get("out")))
    if args and ((name.endswith("_") and not name.startswith("__")) or name in _IN_PLACE_DUNDERS
                 or kwargs.get("inplace") is True):
        out.append(args[0])
    if func is _F.embedding and kwargs.get("max_norm", args[3] if len(args) > 3 else None) is not None:
        out.append(kwargs.get("weight", args[1] if len(args) > 1 else None))
    if func in _STAT_WRITERS:
        i, j, a, b = _STAT_WRITERS[func]
        out += [kwargs.get(a, args[i] if len(args) > i else None), kwargs.get(b, args[j] if len(args) > j else None)]
    return [t for t in map(_concrete, out) if isinstance(t, torch.Tensor)]


def _concrete(t):
    """A graph-capture proxy stands for its concrete value (capture runs the op on it inside the
    proxy's own dispatch, where this mode is not active)."""
    return t.node.meta.get("val") if isinstance(t, fx.Proxy) else t


class _SaveBeforeWrite(TorchFunctionMode):
    def __init__(self, params: list[nn.Parameter]):
        super().__init__()
        self.by_storage = {_storage(p): p for p in params if _storage(p) is not None}
        self.saved: dict[int, tuple[nn.Parameter, torch.Tensor]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for t in _targets(func, args, kwargs):
            p = self.by_storage.get(_storage(t))
            if p is not None and id(p) not in self.saved:
                self.saved[id(p)] = (p, p.detach().clone())
        return func(*args, **kwargs)

    def restore(self) -> None:
        with torch.no_grad():
            for p, value in self.saved.values():
                p.data.copy_(value)


@contextlib.contextmanager
def borrowed_copy(model: nn.Module) -> Iterator[nn.Module]:
    """A copy of `model` (modules, buffers) sharing its parameters, for the duration of the block."""
    params = list(model.parameters())
    if any(p.is_meta for p in params):
        yield private_copy(model)
        return
    try:
        work = copy.deepcopy(model, {id(p): p for p in params})
    except Exception:  # noqa: BLE001 - what deepcopy refuses, the general copier handles (a full copy)
        yield private_copy(model)
        return
    guard = _SaveBeforeWrite(params)
    try:
        with guard:
            yield work
    finally:
        guard.restore()
