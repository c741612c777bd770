"""Arguments of a graph node by name, as `torch.fx.Node.normalized_arguments` does.

Rules read `call.arg("eps")`, never `node.args[7]`: the signature comes from the op itself
(Python functions: `inspect.signature`; torch builtins and Tensor methods: their TorchScript
schemas, the same source torch.fx.operator_schemas uses), and among overloads the first one
whose tensor parameters receive tensors (by the concrete values of the capture) wins, so
`torch.max(x, other)` and `torch.max(x, dim)` bind differently. A method's receiver is called
"input" (torch.fx renames a schema's "self" so); operator.add's (a, b) are "input", "other".
"""
from __future__ import annotations

import functools
import inspect
import typing

import torch
from torch import fx
from torch.fx.operator_schemas import _torchscript_schema_to_signature, get_signature_for_torch_op

# operator.* functions are positional-only (a, b, /): the names rules use for them, by position.
_OPERATOR_NAMES = ("input", "other", "value")


@functools.lru_cache(maxsize=None)
def _method_signatures(name: str) -> tuple[inspect.Signature, ...]:
    schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    return tuple(_torchscript_schema_to_signature(s) for s in schemas)


@functools.lru_cache(maxsize=None)
def _function_signatures(target) -> tuple[inspect.Signature, ...]:
    if getattr(target, "__module__", None) in ("_operator", "operator"):
        return ()
    try:
        return (inspect.signature(target),)
    except (TypeError, ValueError):
        pass
    try:
        return tuple(get_signature_for_torch_op(target) or ())
    except Exception:  # noqa: BLE001 - no schema: the caller binds positionally
        return ()


def _signatures(node: fx.Node) -> tuple[inspect.Signature, ...]:
    if node.op == "call_method":
        return _method_signatures(node.target)
    try:
        return _function_signatures(node.target)
    except TypeError:  # an unhashable callable object
        return ()


def _value(a):
    return a.meta.get("val") if isinstance(a, fx.Node) else a


def _is_tensor_type(annotation) -> bool | None:
    """True: a Tensor parameter; False: a non-tensor one; None: cannot tell (lists, Any, unannotated)."""
    if annotation is inspect.Parameter.empty:
        return None
    if annotation is torch.Tensor:
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union:
        return True if torch.Tensor in args else (None if any(_is_tensor_type(a) is None for a in args) else False)
    if typing.get_origin(annotation) in (list, tuple):
        return None
    return False if isinstance(annotation, type) else None


def _fits(sig: inspect.Signature, bound: inspect.BoundArguments) -> bool:
    for name, value in bound.arguments.items():
        if _value(value) is None:
            continue
        want = _is_tensor_type(sig.parameters[name].annotation)
        if want is not None and want != isinstance(_value(value), torch.Tensor):
            return False
    return True


def _bind(sig: inspect.Signature, node: fx.Node) -> inspect.BoundArguments:
    """A method's receiver is its `input` (schemas rename `self`), wherever the schema puts it."""
    if node.op != "call_method" or "input" not in sig.parameters:
        return sig.bind(*node.args, **node.kwargs)
    rest = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "input"])
    bound = rest.bind(*node.args[1:], **node.kwargs)
    return inspect.BoundArguments(sig, {"input": node.args[0], **bound.arguments})


def bind_call(func, args: tuple, kwargs: dict) -> inspect.BoundArguments | None:
    """A direct call's arguments bound to the function's signature (None: no signature fits)."""
    for sig in _function_signatures(func):
        try:
            return sig.bind(*args, **kwargs)
        except TypeError:
            continue
    return None


def bind(node: fx.Node) -> dict | None:
    """{parameter name: argument} for the node's call; None when no signature of the op accepts it."""
    if node.op == "call_function" and getattr(node.target, "__module__", None) in ("_operator", "operator") \
            or node.target is getattr:
        return {**dict(zip(_OPERATOR_NAMES, node.args)), **node.kwargs}
    loose = None  # binds, but a tensor went where the schema wants none (or the reverse)
    for sig in _signatures(node):
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
            continue  # (*args, **kwargs) wrappers (boolean_dispatch) name nothing
        try:
            bound = _bind(sig, node)
        except (TypeError, IndexError):
            continue
        if _fits(sig, bound):
            return _with_input(sig, dict(bound.arguments))
        loose = loose or _with_input(sig, dict(bound.arguments))
    return loose


def _with_input(sig: inspect.Signature, arguments: dict) -> dict:
    """The first positional tensor is also "input", whatever the function calls it (torch.split's
    `tensor`, a Python function in torch/functional.py): rules read their main operand by that name."""
    first = next(iter(sig.parameters.values()), None)
    if "input" in arguments or first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        return arguments
    value = arguments.get(first.name)
    return {**arguments, "input": value} if isinstance(value, fx.Node) else arguments

