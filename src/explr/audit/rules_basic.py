"""Transfer rules for elementwise, shape, arithmetic and sampling ops (docs/theory.md §2).

Each rule is a small pure function of a `Call`; it reads its arguments by name. An operand a
rule does not read is forced to degree 0 by the caller (explr.audit.degrees), so a rule only
marks operands it deliberately ignores (`metadata_only`: their shape or dtype is all it uses).
"""
from __future__ import annotations

import operator
from fractions import Fraction

import torch
from torch import fx

from explr.audit.forms import ZERO, ZERO_DEG, Deg, Term, broadcast_terms, cancel_opposites, f_add, f_scale, sum_degs
from explr.audit.numeric import EPS_RATIO_LIMIT
from explr.audit.registry import resolve
from explr.audit.transfer import Call, EpsSite, conservative, exact_values, own_value, rule, without_values

EPS_MAX = 1e-3  # `stat + eps` with eps up to this keeps the degree (the paper's eps convention)
_NAMESPACES = {"F": torch.nn.functional, "torch": torch, "Tensor": torch.Tensor, "operator": operator}


def keys_of(names, *prefixes) -> list[str]:
    """["F.relu", "torch.relu", "Tensor.relu", ...]: each name under those namespaces that have it,
    once per distinct op (F.hardshrink IS torch.hardshrink).

    A name that no namespace has is a typo: an error, not a key that silently never matches."""
    out: list[str] = []
    seen: list[object] = []  # the ops themselves: F.hardshrink IS torch.hardshrink
    for n in names:
        found = [f"{p}.{n}" for p in prefixes if hasattr(_NAMESPACES[p], n)]
        if not found:
            raise RuntimeError(f"transfer rule name {n!r} exists in none of {prefixes}")
        for key in found:
            op = resolve(key)
            if not any(op is s for s in seen):
                seen.append(op)
                out.append(key)
    return out


def _is_scalar(a) -> bool:
    return isinstance(a, (int, float, bool)) and not isinstance(a, fx.Node)


def _floating(value) -> bool:
    return isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex())


def same_form(call: Call, form, stat: bool = False):
    """`form` for every floating tensor in the output (integer outputs such as indices: 0)."""
    def of(value):
        if isinstance(value, torch.Tensor):
            return Deg.of(form, stat) if _floating(value) else ZERO_DEG
        if isinstance(value, (tuple, list)):
            return tuple(of(v) for v in value)
        return None
    return of(call.node.meta.get("val"))


def _first(call: Call) -> Deg:
    return call.deg(call.arg("input")) or ZERO_DEG


# -- degree unchanged, structure (blocks, constant terms) kept: linear and shape-preserving
@rule(*keys_of(["clone", "contiguous", "detach", "float", "double", "half", "bfloat16", "to", "type", "type_as",
                "cpu", "cuda", "long", "int", "short", "bool", "byte", "char", "requires_grad_"], "Tensor"),
      "torch.clone", "torch.neg", "Tensor.neg", "operator.neg", "operator.pos", "torch.detach")
@exact_values
def _identity(call: Call):
    d = _first(call)
    if call.key.endswith(".neg"):
        d = d.map_terms(Term.negated)
    call.metadata_only(call.arg("other"), call.arg("dtype"), call.arg("device"))
    if _floating(call.val(call.arg("input"))) and not _floating(call.val(call.node)):
        o = call.origin("nonhomogeneous", "to an integer dtype: truncation does not scale")
        call.ctx.zero(call.ctx.resolve(d, o), o)
        return ZERO_DEG
    return d


def _keeps_channels(call: Call) -> bool:
    """Channel blocks (dim 1) survive only if dim 1 is the channel dim and the op leaves it alone:
    an unbatched (C, H, W) pooling pools along dim 1."""
    x = call.val(call.arg("input"))
    out = call.val(call.node)
    out = out[0] if isinstance(out, tuple) else out
    if not isinstance(x, torch.Tensor) or not isinstance(out, torch.Tensor) or x.dim() != out.dim() or x.dim() < 2:
        return False
    if x.shape[1] != out.shape[1]:
        return False
    name = call.key.rsplit(".", 1)[1]
    return not name.endswith(("1d", "2d", "3d")) or "dropout" in name or x.dim() == int(name[-2]) + 2


# -- positively homogeneous, per element or per channel: blocks kept, terms inside merged (pooling:
#    explr.audit.rules_pool)
@rule("F.relu", "torch.relu", "Tensor.relu", "F.leaky_relu", "F.dropout", "F.dropout1d", "F.dropout2d",
      "F.dropout3d", "torch.dropout", *keys_of(["interpolate", "upsample"], "F"))
def _per_block(call: Call):
    o = call.origin("mix")
    d = _first(call)
    if "dropout" in call.key and (call.arg("p", 0.5) == 0 or call.arg("training", call.arg("train", True)) is False):
        return d  # no mask drawn (timm's Mlp keeps nn.Dropout(0)): the identity, every term kept
    d = call.ctx.resolve_blocks(d, o) if _keeps_channels(call) else Deg.of(call.ctx.resolve(d, o))
    out = call.node.meta.get("val")
    if isinstance(out, tuple):  # (values, indices)
        return (d, ZERO_DEG)
    return d


@rule("F.prelu")
def _prelu(call: Call):
    """max(0, x) + a * min(0, x): the negative part has degree d_x + x_a, so x_a must be 0."""
    slope = call.deg(call.arg("weight"))
    if slope is not None:
        o = call.origin("nonhomogeneous")
        call.ctx.zero(call.ctx.resolve(slope, o), o)
    return call.ctx.resolve_blocks(_first(call), call.origin("mix"))


@rule("torch.abs", "Tensor.abs", "operator.abs")
def _abs(call: Call):
    d = call.ctx.resolve_blocks(_first(call), call.origin("mix"))
    return Deg(d.blocks, stat=True)


# -- degree unchanged, everything merged: shape ops and reductions (index operands are not read:
#    the caller forces them to degree 0)
_SHAPE_OPS = ["expand", "expand_as", "repeat", "narrow", "flip", "roll",
              "movedim", "split", "chunk", "unbind", "tensor_split", "select", "index_select", "gather",
              "cumsum", "tile", "masked_select", "diagonal", "tril", "triu", "repeat_interleave"]
_REDUCTIONS = ["amax", "amin", "max", "min", "topk", "sort", "median", "nansum", "nanmean"]


@rule(*keys_of(_SHAPE_OPS + _REDUCTIONS, "Tensor", "torch"), "F.pixel_shuffle",
      "F.pixel_unshuffle", "F.unfold", "F.fold")
def _merged(call: Call):
    d = _first(call)
    form = call.ctx.resolve(d, call.origin("mix"))
    other = call.arg("other")
    if call.key.endswith((".max", ".min")) and isinstance(call.val(other), torch.Tensor):
        # elementwise max(a, b) of two tensors: homogeneous only if both share the degree
        o = call.origin("sum")
        form = call.ctx.equal([form, call.ctx.resolve(call.deg(other) or ZERO_DEG, o)], o)
    elif call.key.endswith("_as"):
        call.metadata_only(other)  # expand_as(other): other's shape only
    return same_form(call, form, stat=d.stat)


@rule(*keys_of(["scatter", "scatter_add", "index_add", "index_copy", "masked_scatter", "index_put"], "Tensor", "torch"))
def _placed(call: Call):
    """Values of `src` placed into `input` at an index: both must share the degree (the index: 0)."""
    o = call.origin("sum")
    values = [call.arg(n) for n in ("input", "src", "source", "values", "value")]
    forms = [call.ctx.resolve(call.deg(v) or ZERO_DEG, o) for v in values if isinstance(v, fx.Node)]
    if any(_is_scalar(v) and v != 0 for v in values):
        forms.append(ZERO)
    return Deg.of(call.ctx.equal(forms, o))


@rule("torch._assert")
def _assert(call: Call):
    """A runtime check: no value flows out of it."""
    call.metadata_only(call.node.args)
    return None


@rule("getattr")
def _getattr(call: Call):
    """`.values` of a (values, indices) result picks that element; a tensor attribute (.T, .mT) keeps the degree."""
    src, attr = call.node.args[0], call.node.args[1]
    d = call.degs.get(src) if isinstance(src, fx.Node) else None
    val = call.val(src)
    if isinstance(d, (tuple, list)) and isinstance(val, tuple) and isinstance(attr, str):
        call.metadata_only(src)
        picked = getattr(val, attr)
        return next((d[i] for i, v in enumerate(val) if v is picked), call.out_zero())
    return _merged(call)


@rule(*keys_of(["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "new_zeros", "new_ones",
                "new_empty", "new_full", "full_like"], "Tensor", "torch"))
def _shape_only(call: Call):
    """Built from the input's shape and dtype, not its values."""
    call.metadata_only(call.arg("input"))
    return call.out_zero()


@rule(*keys_of(["argmax", "argmin", "sign", "isnan", "isinf", "isfinite", "all", "any", "logical_and", "logical_or",
                "logical_not", "nonzero", "count_nonzero"], "Tensor", "torch"))
def _scale_free(call: Call):
    """Values that a positive scale of the operands does not change (signs, positions, non-zeros)."""
    call.metadata_only(call.node.args, call.node.kwargs)
    return call.out_zero()


@rule(*keys_of(["uniform_", "normal_", "bernoulli_", "random_", "exponential_", "geometric_", "log_normal_",
                "cauchy_"], "Tensor"))
def _resample(call: Call):
    """x.normal_(...) overwrites x with random numbers: x's shape only; tensor parameters (the p of
    bernoulli_) are not read, so they are forced to degree 0."""
    call.metadata_only(call.arg("input"))
    return call.out_zero()


@rule("torch.normal", "torch.bernoulli", "Tensor.bernoulli", "torch.poisson", "torch.multinomial")
def _sample(call: Call):
    """A sample drawn with tensor parameters (a mean, probabilities) is not a scaled copy of them."""
    return conservative(call)


@rule("Tensor.fill_", "torch.fill", "Tensor.zero_", "torch.zero_")
def _fill(call: Call):
    """x.fill_(v): every element becomes v; a tensor v brings its degree."""
    call.metadata_only(call.arg("input"))
    value = call.arg("value")
    return Deg.of(call.ctx.resolve(call.deg(value) or ZERO_DEG, call.origin("mix")))


# -- statistics
_NORM_ORDER = {"norm": "p", "vector_norm": "ord", "norm_linalg": "ord"}


@rule("Tensor.var", "torch.var", "Tensor.std", "torch.std", "Tensor.norm", "torch.norm",
      "torch.linalg.vector_norm", "torch.linalg.norm", "torch.linalg.matrix_norm", "torch.var_mean",
      "torch.std_mean", "Tensor.square", "torch.square")
def _statistic(call: Call):
    d = _first(call)
    if call.arg("p", call.arg("ord")) == 0:  # ||x||_0 counts non-zeros: it does not scale
        call.metadata_only(call.arg("input"))
        return same_form(call, ZERO)
    form = call.ctx.resolve(d, call.origin("mix"))
    power = 2 if call.key.rsplit(".", 1)[1] in ("var", "square") else 1
    if call.key.endswith("_mean"):  # (var or std, mean)
        return (Deg.of(f_scale(form, Fraction(2 if "var" in call.key else 1)), True), Deg.of(form))
    return same_form(call, f_scale(form, Fraction(power)), stat=True)


@rule("Tensor.pow", "torch.pow", "operator.pow", "Tensor.sqrt", "torch.sqrt", "Tensor.rsqrt", "torch.rsqrt",
      "Tensor.reciprocal", "torch.reciprocal")
def _power(call: Call):
    name = call.key.rsplit(".", 1)[1]
    k = {"sqrt": 0.5, "rsqrt": -0.5, "reciprocal": -1}.get(name, call.arg("exponent", call.arg("other")))
    base = call.arg("input")
    d = call.deg(base) if _is_scalar(k) else None
    if d is None:
        return conservative(call)
    stat = d.stat or (float(k) % 2 == 0)
    return Deg.of(f_scale(call.ctx.resolve(d, call.origin("mix")), Fraction(k)), stat)


# -- sums: constraint "equal degrees", except terms a later normalization removes
@rule("operator.add", "torch.add", "Tensor.add", "operator.sub", "torch.sub", "Tensor.sub", "torch.rsub",
      "operator.iadd", "operator.isub")
@exact_values
def _sum(call: Call):
    a, b = call.arg("input"), call.arg("other")
    if _is_scalar(a) or _is_scalar(b):
        return _plus_constant(call, b if _is_scalar(a) else a, a if _is_scalar(a) else b)
    da, db = call.deg(a), call.deg(b)
    if da is None or db is None:
        return conservative(call)
    out_shape = call.shape()
    parts = [broadcast_terms(own_value(call.ctx, x, d), call.shape(x), out_shape)
             or Deg.of(call.ctx.resolve(d, call.origin("sum"))) for x, d in ((a, da), (b, db))]
    stat = da.stat and db.stat
    parts = _cancel_exact(call, _signed(call, parts))
    out = sum_degs(parts, out_shape)
    return Deg(out.tagged(call.origin("sum")).blocks, stat)


def _signed(call: Call, parts: list[Deg]) -> list[Deg]:
    """The operands as the sum adds them: a - b adds -b (known term values change sign); with an
    alpha (a + alpha * b) the values are no longer known."""
    if call.arg("alpha", 1) != 1:
        return [without_values(p) for p in parts]
    op = call.key.rsplit(".", 1)[1].rstrip("_")  # x.sub_(y) subtracts too
    if op in ("sub", "isub"):
        return [parts[0], parts[1].map_terms(Term.negated)]
    if op == "rsub":  # rsub(a, b) = b - a
        return [parts[0].map_terms(Term.negated), parts[1]]
    return parts


def _cancel_exact(call: Call, parts: list[Deg]) -> list[Deg]:
    """v - v = 0 for the same known value v (a bias through `avg_pool(x) - x`): the pair vanishes."""
    parts, gone = cancel_opposites(parts)
    for t in gone:
        for v in t.form:
            call.ctx.cancelled.setdefault(v, f"its constant term is subtracted from itself exactly in {call.key.rsplit('.', 1)[1]}"
                                             f"{' in ' + call.module if call.module else ''}")
    return parts


def _plus_constant(call: Call, tensor, c):
    """x + c is homogeneous only for c = 0; `statistic + eps` (eps small against the statistic on
    the example inputs) is read as the statistic, the convention of every normalization's eps."""
    d = call.deg(tensor) or ZERO_DEG
    if c == 0:
        return d
    o = call.origin("nonhomogeneous")
    form = call.ctx.resolve(d, o)
    if d.stat and 0 < c <= EPS_MAX and form:
        ratio = _eps_ratio(call.val(tensor), c)
        if ratio is None or ratio <= EPS_RATIO_LIMIT:
            call.ctx.eps_sites.append(EpsSite(float(c), call.module or call.node.name, frozenset(form), ratio))
            return d
        o = call.origin("nonhomogeneous", f"eps {c:g} is {ratio:.2g} of the statistic it is added to")
    call.ctx.zero(form, o)
    return ZERO_DEG


def _eps_ratio(stat, eps: float) -> float | None:
    """eps / mean(statistic) on the example inputs; None on the meta device."""
    if not isinstance(stat, torch.Tensor) or stat.is_meta or stat.numel() == 0:
        return None
    mean = float(stat.detach().double().mean())
    return eps / mean if mean > 0 else float("inf")


def _note_cancelled(call: Call, inputs, out) -> None:
    """x / ||x||, x * rsqrt(mean(x^2)), (w - mean) / std: these variables' scale cancels here."""
    cancelled = set().union(*map(set, inputs)) - set(out)
    if cancelled:
        call.ctx.note_normalized([dict.fromkeys(cancelled, 1)], call.module or call.node.name)


@rule("operator.mul", "torch.mul", "Tensor.mul", "operator.imul")
def _mul(call: Call):
    a, b = call.arg("input"), call.arg("other")
    if _is_scalar(a) or _is_scalar(b):
        return call.deg(b if _is_scalar(a) else a) or ZERO_DEG
    da, db = call.deg(a) or ZERO_DEG, call.deg(b) or ZERO_DEG
    stat = (a is b) or (da.stat and db.stat)
    o = call.origin("mix")
    if a is not b and len(da.all_terms()) > 1 and db.uniform is not None:
        return _distributed(call, (a, da), (b, db), stat)
    if a is not b and len(db.all_terms()) > 1 and da.uniform is not None:
        return _distributed(call, (b, db), (a, da), stat)
    fa, fb = call.ctx.resolve(da, o), call.ctx.resolve(db, o)
    form = f_add(fa, fb)
    _note_cancelled(call, (fa, fb), form)
    return Deg.of(form, stat=stat)


def _distributed(call: Call, terms_of, factor, stat: bool) -> Deg:
    """(t1 + t2 + ...) * f = t1 f + t2 f + ...: a term constant where f is too (f per sample, a
    stochastic-depth mask; f per channel, a layer scale) stays a separate term there."""
    (x, dx), (y, dy) = terms_of, factor
    out_shape = call.shape()
    bx, by = broadcast_terms(dx, call.shape(x), out_shape), broadcast_terms(dy, call.shape(y), out_shape)
    f = dy.uniform
    if bx is None or by is None or len(bx.blocks) > 1 or f is None:
        form = f_add(call.ctx.resolve(dx, call.origin("mix")), call.ctx.resolve(dy, call.origin("mix")))
        return Deg.of(form, stat)
    f_const = by.all_terms()[0].const
    varying, kept = call.ctx.separate(bx, lambda const: const & f_const, call.origin("mix"))
    terms = ([Term(f_add(varying, f))] if varying is not None else []) + [
        Term(f_add(t.form, f), t.const, t.via) for t in kept]
    _note_cancelled(call, [t.form for t in bx.all_terms()] + [f], {v: 1 for t in terms for v in t.form})
    return Deg(((None, tuple(terms)),), stat)


@rule("operator.truediv", "torch.div", "Tensor.div", "torch.true_divide", "Tensor.true_divide", "operator.itruediv")
def _div(call: Call):
    a, b = call.arg("input"), call.arg("other")
    if call.arg("rounding_mode") is not None:
        return conservative(call)
    if _is_scalar(b):
        return call.deg(a) or ZERO_DEG
    o = call.origin("mix")
    fa = ZERO if _is_scalar(a) else call.ctx.resolve(call.deg(a) or ZERO_DEG, o)
    fb = call.ctx.resolve(call.deg(b) or ZERO_DEG, o)
    out = f_add(fa, fb, -1)
    _note_cancelled(call, (fa, fb), out)
    stat = (call.deg(b) or ZERO_DEG).stat and (_is_scalar(a) or (call.deg(a) or ZERO_DEG).stat)
    return Deg.of(out, stat)
