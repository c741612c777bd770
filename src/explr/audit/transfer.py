"""The transfer-rule registry: ONE table from op key to rule, and the vocabulary rules speak.

Like torch/utils/flop_counter.py, each op maps to a small pure function (registered with
`@rule(...)`; a duplicate registration is an error). A rule receives a `Call` (the node, its
argument degrees and concrete values) and returns the output degree(s), emitting constraints
through the `Ctx`. The rules live in `explr.audit.rules_*` (they import this module);
`explr.audit.degrees` loads them and runs the propagation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import fx
from torch.fx.node import map_aggregate

from explr.audit.forms import ZERO, ZERO_DEG, Deg, Form, Term, f_add
from explr.audit_report import Normalizer, UnknownOp

TABLE: dict[str, Callable] = {}


def rule(*keys: str):
    """Register one transfer rule under one or more op keys."""
    def register(fn: Callable) -> Callable:
        for key in keys:
            if key in TABLE:
                raise RuntimeError(f"duplicate transfer rule for {key!r}")
            TABLE[key] = fn
        return fn
    return register


def op_key(node: fx.Node) -> str:
    """'F.relu', 'torch.cat', 'operator.add', 'Tensor.view', 'getattr' ..."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    t = node.target
    mod = getattr(t, "__module__", None) or ""
    name = getattr(t, "__name__", str(t))
    if t is getattr:
        return "getattr"
    if mod == "_operator" or mod == "operator":
        return f"operator.{name}"
    if mod.startswith("torch.nn.functional"):
        return f"F.{name}"
    if getattr(torch.nn.functional, name, None) is t:
        return f"F.{name}"
    return f"torch.{name}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Why a constraint exists: the op and the module it was called in."""

    kind: str  # output | nonhomogeneous | unknown | opaque | opaque-input | unreached | sum | affine | normalized-group | mix
    op: str
    module: str


@dataclass(frozen=True, slots=True)
class Constraint:
    form: Form  # form == 0
    origin: Origin


@dataclass
class Ctx:
    """Accumulates constraints and facts while degrees propagate."""

    param_index: dict[str, int]
    constraints: list[Constraint] = field(default_factory=list)
    unknown_ops: list[UnknownOp] = field(default_factory=list)
    normalizers: list[Normalizer] = field(default_factory=list)
    normalized_by: dict[int, list[str]] = field(default_factory=dict)  # var -> normalizer modules
    dropped: dict[int, str] = field(default_factory=dict)  # var -> normalizer that cancelled its term
    reached: set[int] = field(default_factory=set)  # vars whose get_attr has users
    from_inputs: set = field(default_factory=set)  # nodes whose value depends on the model inputs

    def zero(self, form: Form, origin: Origin) -> None:
        if form:
            self.constraints.append(Constraint(form, origin))

    def equal(self, forms: list[Form], origin: Origin) -> Form:
        """Constrain all forms equal; return the common form."""
        first = forms[0] if forms else ZERO
        for f in forms[1:]:
            self.zero(f_add(f, first, -1), origin)
        return first

    def merge_terms(self, terms, origin: Origin) -> Form:
        """Constrain the terms of a sum equal; blame the sum or affine that built it, if known."""
        if len(terms) > 1:
            origin = next((t.via for t in terms if t.via is not None), origin)
        return self.equal([t.form for t in terms], origin)

    def resolve(self, deg: Deg, origin: Origin) -> Form:
        return self.merge_terms(deg.all_terms(), origin)

    def resolve_blocks(self, deg: Deg, origin: Origin) -> Deg:
        """Keep the channel blocks, merge the terms inside each."""
        return Deg(tuple((size, (Term(self.merge_terms(terms, origin)),)) for size, terms in deg.blocks))

    def note_normalized(self, forms, module: str) -> None:
        for f in forms:
            for v in f:
                mods = self.normalized_by.setdefault(v, [])
                if module not in mods:
                    mods.append(module)


class Call:
    """One node seen by a rule: raw args, their degrees, concrete values and the module."""

    def __init__(self, node: fx.Node, ctx: Ctx, degs: dict[fx.Node, object], key: str):
        self.node, self.ctx, self.degs, self.key = node, ctx, degs, key
        stack = node.meta.get("nn_module_stack") or {}
        self.module = next(reversed(stack.values()))[0] if stack else ""

    def arg(self, i: int, name: str, default=None):
        if len(self.node.args) > i:
            return self.node.args[i]
        return self.node.kwargs.get(name, default)

    def deg(self, a) -> Deg | None:
        """Degree of an argument; None for Python constants.

        A structured value (a tuple of tensors) used as a whole gets one degree that all its
        tensors must share: conservative, never silently degree 0."""
        if not isinstance(a, fx.Node):
            return None
        d = self.degs.get(a)
        if isinstance(d, (tuple, list)):
            parts = [x for x in _flat_degs(d)]
            return Deg.of(self.ctx.equal([self.ctx.resolve(x, self.origin("mix")) for x in parts],
                                         self.origin("mix"))) if parts else None
        return d if isinstance(d, Deg) else None

    @staticmethod
    def val(a):
        return a.meta.get("val") if isinstance(a, fx.Node) else a

    def shape(self, a=None) -> tuple:
        v = self.val(self.node if a is None else a)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else ()

    def origin(self, kind: str) -> Origin:
        return Origin(kind, self.key, self.module)

    def input_degs(self) -> list[Deg]:
        """Degrees of every tensor among the arguments (inside tuples too)."""
        out: list[Deg] = []
        map_aggregate((self.node.args, self.node.kwargs),
                      lambda a: out.extend(_flat_degs(self.degs.get(a))) if isinstance(a, fx.Node) else None)
        return out

    def out_zero(self):
        return zero_like(self.node.meta.get("val"))


def _flat_degs(d) -> list[Deg]:
    if isinstance(d, Deg):
        return [d]
    if isinstance(d, (tuple, list)):
        return [x for item in d for x in _flat_degs(item)]
    return []


def zero_like(value):
    """Degree 0 in the structure of a (possibly nested) value; None for non-tensors."""
    if isinstance(value, torch.Tensor):
        return ZERO_DEG
    if isinstance(value, (tuple, list)):
        return type(value)(zero_like(v) for v in value) if not hasattr(value, "_fields") else \
            tuple(zero_like(v) for v in value)
    return None


def conservative(call: Call, kind: str = "nonhomogeneous"):
    """Inputs to degree 0, output degree 0 (non-homogeneous or unknown ops)."""
    for d in call.input_degs():
        for f in d.forms():
            call.ctx.zero(f, call.origin(kind))
    return call.out_zero()
