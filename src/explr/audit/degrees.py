"""Degree propagation over a captured graph, one node at a time, through the transfer-rule table.

Soundness does not rest on each rule being complete:
- an op without a rule is never guessed: its tensor inputs are constrained to degree 0 and an
  `UnknownOp` fact names it and its module;
- every tensor operand counts: one the rule did not read (an index, a fill value, a mask, the
  mean of a sampler) has its degree forced to 0, and the reason says so;
- in-place writes (`x.mul_(g)`, `out=`, `x[i] = v`, `F.relu(inplace=True)`) rebind the
  written node (`transfer.write`: live aliases of its storage must keep the degree, a written
  buffer is read back with its new degree);
- a term's exact value (`Term.value`, what lets `avg_pool(x) - x` cancel a bias) is kept only by
  rules marked `exact_values`, and only on a node no other node shares storage with: a view or an
  in-place write could change the value behind the degree;
- a rule that raises does not stop the audit: the op is treated as unknown and the fact names
  the fx node, the module and the source line (as torch.fx.Interpreter.run_node does).
The vocabulary is in `explr.audit.transfer`, the table in `explr.audit.registry`; the rules in
`explr.audit.rules_*`, loaded here explicitly (the structural ones - output, opaque, getitem -
are below).
"""
from __future__ import annotations

import torch
from torch import fx
from torch.fx.node import map_aggregate

# The transfer rules register into the table when their modules load: this is the one loader.
from explr.audit import (rules_basic, rules_fused, rules_join, rules_layout, rules_linalg, rules_norm,  # noqa: F401
                         rules_pool)
from explr.audit.capture import OPAQUE_FUNCTION
from explr.audit.forms import Deg, f_var
from explr.audit.registry import lookup, op_name
from explr.audit.transfer import (EXACT_VALUES, Call, Ctx, Origin, conservative, flat_degs, exact_values, rule,
                                  storage_id, unshared, without_values, write, zero_like)
from explr.audit_report import UnknownOp
from explr.errors import quote_error


def analyse(graph: fx.Graph, param_index: dict[str, int]) -> Ctx:
    """Propagate degrees through `graph`; return the constraints and facts."""
    ctx = Ctx(param_index)
    degs: dict[fx.Node, object] = {}
    for i, node in enumerate(graph.nodes):
        ctx.position[node] = i
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            ctx.storages.setdefault(storage_id(val), []).append(node)
    for node in graph.nodes:
        if node.op == "placeholder" or any(a in ctx.from_inputs for a in node.all_input_nodes):
            ctx.from_inputs.add(node)
        degs[node] = _node_degree(node, ctx, degs, param_index)
    return ctx


def _node_degree(node: fx.Node, ctx: Ctx, degs: dict, param_index: dict[str, int]):
    if node.op == "placeholder":
        return zero_like(node.meta.get("val"))
    if node.op == "get_attr" and isinstance(node.target, str):  # a get_attr's target is always a name
        var = param_index.get(node.target)
        if var is None:
            return ctx.buffer_degs.get(node.target) or zero_like(node.meta.get("val"))
        if node.users:
            ctx.reached.add(var)
        return Deg.of(f_var(var))
    call = Call(node, ctx, degs, op_name(node))
    fn, in_place = lookup(node)
    if fn is None:
        ctx.unknown_ops.append(UnknownOp(call.key, call.module))
        return conservative(call, "unknown")
    try:
        out = fn(call)
    except Exception as exc:  # noqa: BLE001 - a rule's failure names its place; the op counts as unknown
        ctx.unknown_ops.append(UnknownOp(call.key, call.module, f"its rule failed at {place(node)}: {quote_error(exc)}"))
        return conservative(call, "rule-error")
    if isinstance(node.meta.get("val"), torch.Tensor) and not isinstance(out, Deg):
        return conservative(call, "unknown")  # a rule that lost track of a tensor: never assume degree 0
    _force_unread(call)
    if fn not in EXACT_VALUES or not unshared(ctx, node):  # a known term value survives only exact copies
        out = without_values(out)
    target = _written(call, in_place)
    if target is not None and isinstance(out, Deg):
        write(call, target, out)
    return out


def place(node: fx.Node) -> str:
    """'node add_1 (module layer1.0, model.py:42 `out = a + b`)': where a node came from."""
    stack = node.meta.get("nn_module_stack") or {}
    module = next(reversed(stack.values()))[0] if stack else ""
    where = [f"module {module}"] if module else []
    if node.meta.get("source"):
        where.append(node.meta["source"])
    return f"node {node.name}" + (f" ({', '.join(where)})" if where else "")


def _force_unread(call: Call) -> None:
    """Every tensor operand counts: one the rule did not account for is forced to degree 0."""
    def check(a) -> None:
        if isinstance(a, fx.Node) and a not in call.read:
            call.read.add(a)
            for d in flat_degs(call.degs.get(a)):
                for f in d.forms():
                    call.ctx.zero(f, call.origin("unaccounted", a.name))
    map_aggregate((call.node.args, call.node.kwargs), check)


def _written(call: Call, in_place: bool) -> fx.Node | None:
    """The node an op writes into: `out=`, or its input when the op works in place."""
    out = call.node.kwargs.get("out")
    if isinstance(out, fx.Node):
        return out
    if in_place or call.arg("inplace") is True:
        target = call.arg("input")
        return target if isinstance(target, fx.Node) else None
    return None


@rule("output")
def _output(call: Call):
    for d in call.input_degs():
        for f in d.forms():
            call.ctx.zero(f, call.origin("output"))


@rule("opaque")
def _opaque(call: Call):
    """Inputs to degree 0, and every parameter it was seen reading (its own, or another module's
    through a plain Python reference)."""
    for name in sorted(call.node.meta.get("reads", ())):
        var = call.ctx.param_index.get(name)
        if var is not None:
            call.ctx.zero(f_var(var), Origin("opaque-read", call.key, str(call.node.target)))
    function = call.node.meta.get(OPAQUE_FUNCTION)
    if function is not None:  # a torch.fx.wrap'd function whose body could not be traced
        call.key = function
        return conservative(call, "opaque-call-input")
    return conservative(call, "opaque-input")


@rule("namedtuple")
def _namedtuple(call: Call):
    """A namedtuple built from its fields (torchvision's GoogLeNetOutputs(logits, aux2, aux1)): the
    tuple of their degrees, so that a later `.logits` or `[0]` picks its own field's degree."""
    fields: tuple[str, ...] = getattr(call.node.target, "_fields", ())
    values = dict(zip(fields, call.node.args)) | dict(call.node.kwargs)
    nodes = {f: a for f, a in values.items() if isinstance(a, fx.Node)}
    call.read.update(nodes.values())
    return tuple(call.degs.get(nodes[f]) if f in nodes else None for f in fields)


@rule("operator.getitem")
@exact_values
def _getitem(call: Call):
    src, index = call.node.args[0], call.node.args[1]
    if not isinstance(src, fx.Node):
        return call.out_zero()
    d = call.degs.get(src)
    call.read.add(src)
    if isinstance(d, (tuple, list)):
        if not isinstance(index, (int, slice)):  # a tensor index: the rule fails, the op counts as unknown
            raise TypeError(f"index {index} of a tuple output is not a constant")
        return d[index]
    if isinstance(d, Deg):
        return rules_layout.sliced(call, index)
    return call.out_zero()
