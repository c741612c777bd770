"""Degree propagation over a captured graph, one node at a time, through the transfer-rule table.

The table and the `Call`/`Ctx` vocabulary are in `explr.audit.transfer`; the rules themselves in
`explr.audit.rules_*`, loaded here explicitly (the structural ones - output, opaque, getitem - are
below). An op without a rule is never guessed: all its tensor inputs are constrained to degree 0
and an `UnknownOp` fact names it and its module.
"""
from __future__ import annotations

import torch
from torch import fx

# The transfer rules register into TABLE when their modules load: this is the one loader.
from explr.audit import rules_basic, rules_linalg, rules_norm  # noqa: F401
from explr.audit.forms import Deg, f_var
from explr.audit.transfer import TABLE, Call, Ctx, conservative, op_key, rule, zero_like
from explr.audit_report import UnknownOp


def analyse(graph: fx.Graph, param_index: dict[str, int]) -> Ctx:
    """Propagate degrees through `graph`; return the constraints and facts."""
    ctx = Ctx(param_index)
    degs: dict[fx.Node, object] = {}
    for node in graph.nodes:
        if node.op == "placeholder" or any(a in ctx.from_inputs for a in node.all_input_nodes):
            ctx.from_inputs.add(node)
        degs[node] = _node_degree(node, ctx, degs, param_index)
    return ctx


def _node_degree(node: fx.Node, ctx: Ctx, degs: dict, param_index: dict[str, int]):
    if node.op == "placeholder":
        return zero_like(node.meta.get("val"))
    if node.op == "get_attr":
        var = param_index.get(node.target)
        if var is None:
            return zero_like(node.meta.get("val"))
        if node.users:
            ctx.reached.add(var)
        return Deg.of(f_var(var))
    key = "output" if node.op == "output" else \
        ("opaque" if node.op == "call_module" else op_key(node))
    call = Call(node, ctx, degs, key)
    fn, in_place = TABLE.get(key), bool(call.arg(99, "inplace", False))
    if fn is None and key.startswith("Tensor.") and key.endswith("_") and not key.endswith("__"):
        fn, in_place = TABLE.get(key[:-1]), True  # x.add_(y): the rule of x.add(y), then x is rebound
    if fn is None:
        ctx.unknown_ops.append(UnknownOp(key, call.module))
        return conservative(call, "unknown")
    out = fn(call)
    if isinstance(node.meta.get("val"), torch.Tensor) and not isinstance(out, Deg):
        return conservative(call, "unknown")  # a rule that lost track of a tensor: never assume degree 0
    if in_place and node.args and isinstance(node.args[0], fx.Node):
        _rebind(call, node.args[0], out)
    return out


def _rebind(call: Call, target: fx.Node, out: Deg) -> None:
    """An in-place op changes its target; on a view it changes the base too, which we do not
    track: there the op must keep the target's degree."""
    old = call.degs.get(target)
    if target.op != "get_attr" and op_key(target) in VIEW_KEYS and isinstance(old, Deg):
        o = call.origin("mix")
        call.ctx.equal([call.ctx.resolve(old, o), call.ctx.resolve(out, o)], o)
    call.degs[target] = out


VIEW_KEYS = frozenset({f"{p}.{n}" for p in ("Tensor", "torch") for n in (
    "view", "reshape", "flatten", "permute", "transpose", "t", "unsqueeze", "squeeze", "expand", "narrow",
    "select", "split", "chunk", "unbind", "diagonal", "unflatten", "movedim", "swapaxes", "view_as",
    "expand_as", "as_strided", "detach")} | {"operator.getitem", "getattr"})


@rule("output")
def _output(call: Call):
    for d in call.input_degs():
        for f in d.forms():
            call.ctx.zero(f, call.origin("output"))


@rule("opaque")
def _opaque(call: Call):
    return conservative(call, "opaque-input")


@rule("operator.getitem")
def _getitem(call: Call):
    src = call.node.args[0]
    d = call.degs.get(src) if isinstance(src, fx.Node) else None
    if isinstance(d, (tuple, list)):
        return d[call.node.args[1]]
    if isinstance(d, Deg):
        return Deg.of(call.ctx.resolve(d, call.origin("mix")))
    return call.out_zero()

