"""The vocabulary transfer rules speak: `Call` (one node, its arguments by name, their degrees and
concrete values), `Ctx` (the constraints and facts being collected), `Origin`/`Constraint`, and
`write` for ops that write into a tensor. The table of rules itself is `explr.audit.registry`
(keyed by op objects, checked at registration); the rules live in `explr.audit.rules_*` and
import `rule` from here; `explr.audit.degrees` loads them and runs the propagation.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
from torch import fx
from torch.fx.node import map_aggregate

from explr.audit.arguments import bind
from explr.audit.forms import ZERO, ZERO_DEG, Deg, Form, Term, f_add
from explr.audit.registry import TABLE, rule
from explr.audit_report import Normalizer, UnknownOp

__all__ = ["TABLE", "Call", "Constraint", "Ctx", "EpsSite", "Origin", "conservative", "exact_values", "own_value",
           "rule", "unshared", "without_values", "write", "zero_like"]

# Rules whose known term values are exact: they pass their input terms on unchanged (a sum, a copy)
# or add a bias themselves. explr.audit.degrees strips `Term.value` from what every other rule returns.
EXACT_VALUES: set = set()


def exact_values(fn):
    """Mark a rule whose output's known term values (a bias, signed) are exact."""
    EXACT_VALUES.add(fn)
    return fn


@dataclass(frozen=True, slots=True)
class Origin:
    """Why a constraint exists: the op and the module it was called in."""

    # output | nonhomogeneous | unknown | opaque | opaque-input | unreached | unaccounted | rule-error
    # | sum | affine | normalized-group | mix
    kind: str
    op: str
    module: str
    detail: str = ""  # the operand or failure a reason names


@dataclass(frozen=True, slots=True)
class Constraint:
    form: Form  # form == 0
    origin: Origin


@dataclass(frozen=True, slots=True)
class EpsSite:
    """`statistic + eps` with a small literal eps, read as the statistic (the paper's convention)."""

    eps: float
    module: str
    vars: frozenset  # the variables whose invariance relies on eps being negligible
    ratio: float | None  # eps / mean(statistic) on the example inputs at capture (None on meta)


@dataclass
class Ctx:
    """Accumulates constraints and facts while degrees propagate."""

    param_index: dict[str, int]
    constraints: list[Constraint] = field(default_factory=list)
    unknown_ops: list[UnknownOp] = field(default_factory=list)
    normalizers: list[Normalizer] = field(default_factory=list)
    eps_sites: list[EpsSite] = field(default_factory=list)
    normalized_by: dict[int, list[str]] = field(default_factory=dict)  # var -> normalizer modules
    dropped: dict[int, str] = field(default_factory=dict)  # var -> normalizer that cancelled its term
    # var -> why its term vanishes exactly elsewhere than right before a normalization (for reasons)
    cancelled: dict[int, str] = field(default_factory=dict)
    reached: set[int] = field(default_factory=set)  # vars whose get_attr has users
    from_inputs: set = field(default_factory=set)  # nodes whose value depends on the model inputs
    buffer_degs: dict[str, object] = field(default_factory=dict)  # buffer written in place -> its degree
    position: dict = field(default_factory=dict)  # node -> index in the graph
    storages: dict = field(default_factory=dict)  # storage id -> nodes whose value lives there

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

    def separate(self, deg: Deg, const_after, origin: Origin) -> tuple[Form | None, list[Term]]:
        """A linear map applied term by term: `const_after(t.const)` is where a term's image stays
        constant. Terms that stay constant somewhere are kept apart (a normalization may cancel
        them later); the rest merge into one form (None if there is no such term). A term of one
        channel block is zero outside it: constant along the channel dim no more."""
        kept, varying = [], []
        blocked = frozenset({1}) if len(deg.blocks) > 1 else frozenset()
        for t in deg.all_terms():
            const = const_after(t.const - blocked)
            if const:
                kept.append(Term(t.form, const, t.via))
            else:
                varying.append(t)
        return (self.merge_terms(varying, origin) if varying else None), kept

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
    """One node seen by a rule: arguments by name, their degrees, concrete values and the module."""

    def __init__(self, node: fx.Node, ctx: Ctx, degs: dict[fx.Node, object], key: str):
        self.node, self.ctx, self.degs, self.key = node, ctx, degs, key
        stack = node.meta.get("nn_module_stack") or {}
        self.module = next(reversed(stack.values()))[0] if stack else ""
        self.read: set[fx.Node] = set()  # operands whose degree the rule took into account
        self._bound: dict | None = None

    @property
    def bound(self) -> dict:
        """{parameter name: argument}; the first positional argument is always "input"."""
        if self._bound is None:
            try:
                found = bind(self.node)
            except Exception:  # noqa: BLE001 - a signature we cannot use: name only the input
                found = None
            if found is None:  # no signature fits: only the input and keywords can be named
                found = {**({"input": self.node.args[0]} if self.node.args else {}), **self.node.kwargs}
            self._bound = found
        return self._bound

    def arg(self, name: str, default=None):
        return self.bound.get(name, default)

    def deg(self, a) -> Deg | None:
        """Degree of an argument; None for Python constants.

        A structured value (a tuple of tensors) used as a whole gets one degree that all its
        tensors must share: conservative, never silently degree 0."""
        if not isinstance(a, fx.Node):
            return None
        self.read.add(a)
        d = self.degs.get(a)
        if isinstance(d, (tuple, list)):
            parts = flat_degs(d)
            return Deg.of(self.ctx.equal([self.ctx.resolve(x, self.origin("mix")) for x in parts],
                                         self.origin("mix"))) if parts else None
        return d if isinstance(d, Deg) else None

    def metadata_only(self, *args) -> None:
        """These operands contribute their shape/dtype only (zeros_like(x), a.type_as(b)): no degree."""
        map_aggregate(args, lambda a: self.read.add(a) if isinstance(a, fx.Node) else None)

    @staticmethod
    def val(a):
        return a.meta.get("val") if isinstance(a, fx.Node) else a

    def shape(self, a=None) -> tuple:
        v = self.val(self.node if a is None else a)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else ()

    def origin(self, kind: str, detail: str = "") -> Origin:
        return Origin(kind, self.key, self.module, detail)

    def input_degs(self) -> list[Deg]:
        """Degrees of every tensor among the arguments (inside tuples too)."""
        out: list[Deg] = []
        map_aggregate((self.node.args, self.node.kwargs), lambda a: out.extend(self._read(a)))
        return out

    def _read(self, a) -> list[Deg]:
        if not isinstance(a, fx.Node):
            return []
        self.read.add(a)
        return flat_degs(self.degs.get(a))

    def out_zero(self):
        return zero_like(self.node.meta.get("val"))


def flat_degs(d) -> list[Deg]:
    if isinstance(d, Deg):
        return [d]
    if isinstance(d, (tuple, list)):
        return [x for item in d for x in flat_degs(item)]
    return []


def zero_like(value):
    """Degree 0 in the structure of a (possibly nested) value; None for non-tensors."""
    if isinstance(value, torch.Tensor):
        return ZERO_DEG
    if isinstance(value, (tuple, list)):
        return type(value)(zero_like(v) for v in value) if not hasattr(value, "_fields") else \
            tuple(zero_like(v) for v in value)
    return None


def unshared(ctx: Ctx, node) -> bool:
    """No other node's value lives in this node's storage (no view of it, no in-place write into it)
    and no `x[i] = v` writes into it (operator.setitem returns None: no storage of its own)."""
    val = node.meta.get("val") if isinstance(node, fx.Node) else None
    return isinstance(val, torch.Tensor) and len(ctx.storages.get(storage_id(val), ())) <= 1 and not any(
        u.target is operator.setitem and u.args[0] is node for u in node.users)


def own_value(ctx: Ctx, node, deg: Deg) -> Deg:
    """A degree of one term is all of the node's value: that term's value is known (the node, +1),
    unless another node shares the storage (a write there would change it behind the degree)."""
    terms = deg.all_terms()
    if len(terms) != 1 or len(deg.blocks) != 1 or terms[0].value is not None or not unshared(ctx, node):
        return deg
    t = terms[0]
    return Deg(((deg.blocks[0][0], (Term(t.form, t.const, t.via, (node, 1)),)),), deg.stat)


def without_values(out):
    """The degree(s) with every known term value forgotten (a rule that does not preserve values)."""
    if isinstance(out, Deg):
        return out.map_terms(lambda t: Term(t.form, t.const, t.via)) if out.has_values() else out
    if isinstance(out, (tuple, list)):
        return type(out)(without_values(x) for x in out) if not hasattr(out, "_fields") else \
            tuple(without_values(x) for x in out)
    return out


def conservative(call: Call, kind: str = "nonhomogeneous"):
    """Inputs to degree 0, output degree 0 (non-homogeneous or unknown ops)."""
    for d in call.input_degs():
        for f in d.forms():
            call.ctx.zero(f, call.origin(kind))
    return call.out_zero()



def storage_id(t: torch.Tensor):
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):  # a tensor without storage (sparse, nested): its own
        return id(t)



def write(call: Call, target: fx.Node, new) -> None:
    """`target` now holds a value of degree `new`. Live aliases of its storage (a view taken
    earlier and used later) see the write too; the degree must then stay what it was."""
    old = call.degs.get(target)
    here = call.ctx.position.get(call.node, 0)
    val = target.meta.get("val")
    aliases = [n for n in call.ctx.storages.get(storage_id(val), ()) if n is not target and n is not call.node
               and call.ctx.position[n] < here and any(call.ctx.position.get(u, 0) > here for u in n.users)] \
        if isinstance(val, torch.Tensor) else []
    if aliases and isinstance(old, Deg):
        o = call.origin("mix", f"written in place while {aliases[0].name} aliases it")
        call.ctx.equal([call.ctx.resolve(old, o), call.ctx.resolve(new, o)], o)
    call.degs[target] = new
    if target.op == "get_attr" and isinstance(target.target, str) and target.target not in call.ctx.param_index:
        call.ctx.buffer_degs[target.target] = new  # a later read of the buffer is a new get_attr node


