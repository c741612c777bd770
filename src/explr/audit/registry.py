"""The checked table of transfer rules, keyed by the op objects themselves.

As torch/utils/flop_counter.py does, every key is resolved when it is registered: "F.relu"
becomes the function object torch.nn.functional.relu, "torch.linalg.vector_norm" the builtin
it names, "Tensor.add" a method that torch.Tensor has. A key that names nothing, or an op that
already has a rule, is an error at import time. Dispatch then goes by the node's target object,
so a user function that happens to be called `relu` (registered with torch.fx.wrap) never
borrows torch.relu's rule.
"""
from __future__ import annotations

import builtins
import operator
from typing import Callable

import torch
from torch import fx

# node.meta key of a torch.fx.wrap'd function capture keeps as one opaque call (explr.audit.capture)
OPAQUE_FUNCTION = "explr_opaque_function"
# Node kinds that are not ops but still get a rule.
SPECIAL = frozenset({"output", "opaque", "namedtuple"})
_NAMESPACES = {"F": torch.nn.functional, "torch": torch, "operator": operator}

TABLE: dict[object, Callable] = {}
NAMES: dict[object, str] = {}  # key -> the name it was registered under (for reports)


def resolve(name: str) -> object:
    """The table key for a registered name: an op object, "Tensor.<method>", or a special kind."""
    if name in SPECIAL:
        return name
    if name == "getattr":
        return builtins.getattr
    head, _, path = name.partition(".")
    if head == "Tensor":
        if not path or not hasattr(torch.Tensor, path):
            raise RuntimeError(f"transfer rule key {name!r}: torch.Tensor has no method {path!r}")
        return name
    obj = _NAMESPACES.get(head)
    for atom in path.split(".") if obj is not None and path else ():
        obj = getattr(obj, atom, None)
    if obj is None or not callable(obj):
        raise RuntimeError(f"transfer rule key {name!r} does not name an op")
    return obj


def rule(*names: str | Callable):
    """Register one transfer rule under one or more op names (each must resolve, once), or under op
    objects themselves (a library function outside the F/torch/operator/Tensor namespaces)."""
    def register(fn: Callable) -> Callable:
        for name in names:
            if not isinstance(name, str) and not callable(name):
                raise RuntimeError(f"transfer rule key {name!r} is neither an op name nor a callable")
            key = resolve(name) if isinstance(name, str) else name
            name = name if isinstance(name, str) else f"{getattr(name, '__module__', '')}.{getattr(name, '__qualname__', name)}"
            if key in TABLE:
                raise RuntimeError(f"duplicate transfer rule for {name!r} (already registered as {NAMES[key]!r})")
            TABLE[key], NAMES[key] = fn, name
        return fn
    return register


def op_key(node: fx.Node) -> object:
    """The table key of a node's op ("Tensor.add" for methods, the target object otherwise)."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_module" or OPAQUE_FUNCTION in node.meta:  # the latter: a wrapped function kept whole
        return "opaque"
    if node.op == "output":
        return "output"
    if node.op == "call_function" and is_namedtuple_class(node.target):  # any library's own class
        return "namedtuple"
    return node.target


def is_namedtuple_class(target: object) -> bool:
    return isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields")


def op_name(node: fx.Node) -> str:
    """'F.relu', 'torch.cat', 'operator.add', 'Tensor.view', or module.qualname of a user function."""
    key = op_key(node)
    if isinstance(key, str):
        return key
    try:
        if key in NAMES:
            return NAMES[key]
    except TypeError:  # an unhashable callable
        pass
    mod = getattr(key, "__module__", None) or ""
    name = getattr(key, "__qualname__", None) or getattr(key, "__name__", None) or type(key).__name__
    return f"{mod}.{name}" if mod else name


def lookup(node: fx.Node) -> tuple[Callable | None, bool]:
    """(rule, in_place): x.add_(y) gets the rule of x.add(y); every method ending in "_" writes in place."""
    key = op_key(node)
    try:
        fn = TABLE.get(key)
    except TypeError:
        return None, False
    in_place = isinstance(key, str) and key.startswith("Tensor.") and key.endswith("_") and not key.endswith("__")
    if fn is None and isinstance(key, str) and in_place:
        fn = TABLE.get(key[:-1])
    return fn, in_place
