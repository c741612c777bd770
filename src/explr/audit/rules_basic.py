"""Transfer rules for elementwise, shape, arithmetic and linear-algebra ops (docs/theory.md §2).

Each rule is a small pure function of a `Call`; keys are registered in transfer.TABLE.
"""
from __future__ import annotations

from fractions import Fraction

import torch
from torch import fx

from explr.audit.forms import ZERO, ZERO_DEG, Deg, broadcast_terms, f_add, f_scale, sum_degs
from explr.audit.transfer import Call, conservative, rule

EPS_MAX = 1e-3  # `stat + eps` with eps up to this keeps the degree (the paper's eps convention)


def keys_of(names, *prefixes) -> list[str]:
    """["F.relu", "torch.relu", ...]: one name under several namespaces."""
    return [f"{p}.{n}" for n in names for p in prefixes]


def _is_scalar(a) -> bool:
    return isinstance(a, (int, float, bool)) and not isinstance(a, fx.Node)


def same_form(call: Call, form, stat: bool = False):
    """`form` for every floating tensor in the output (integer outputs such as indices: 0)."""
    def of(value):
        if isinstance(value, torch.Tensor):
            return Deg.of(form, stat) if value.is_floating_point() else ZERO_DEG
        if isinstance(value, (tuple, list)):
            return tuple(of(v) for v in value)
        return None
    return of(call.node.meta.get("val"))


def _first(call: Call) -> Deg:
    return call.deg(call.arg(0, "input")) or ZERO_DEG


# -- degree unchanged, structure (blocks, constant terms) kept: linear and shape-preserving
@rule(*keys_of(["clone", "contiguous", "detach", "float", "double", "half", "bfloat16", "to", "type_as",
              "cpu", "cuda", "neg", "requires_grad"], "Tensor"),
      "torch.clone", "torch.neg", "operator.neg", "operator.pos", "torch.detach")
def _identity(call: Call):
    return _first(call)


# -- positively homogeneous, per element or per channel: blocks kept, terms inside merged
@rule("F.relu", "torch.relu", "Tensor.relu", "F.leaky_relu", "F.dropout", "F.dropout1d", "F.dropout2d",
      "F.dropout3d", "torch.dropout", *keys_of(["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d",
                                               "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
                                               "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                                               "adaptive_max_pool1d", "adaptive_max_pool2d",
                                               "adaptive_max_pool3d", "interpolate", "upsample"], "F"))
def _per_block(call: Call):
    d = call.ctx.resolve_blocks(_first(call), call.origin("mix"))
    out = call.node.meta.get("val")
    if isinstance(out, tuple):  # (values, indices)
        return (d, ZERO_DEG)
    return d


@rule("F.prelu")
def _prelu(call: Call):
    """max(0, x) + a * min(0, x): the negative part has degree d_x + x_a, so x_a must be 0."""
    slope = call.deg(call.arg(1, "weight"))
    if slope is not None:
        o = call.origin("nonhomogeneous")
        call.ctx.zero(call.ctx.resolve(slope, o), o)
    return call.ctx.resolve_blocks(_first(call), call.origin("mix"))


@rule("torch.abs", "Tensor.abs", "operator.abs")
def _abs(call: Call):
    d = call.ctx.resolve_blocks(_first(call), call.origin("mix"))
    return Deg(d.blocks, stat=True)


# -- degree unchanged, everything merged: shape ops and reductions
_SHAPE_OPS = ["view", "reshape", "flatten", "permute", "transpose", "t", "unsqueeze", "squeeze", "expand",
              "expand_as", "view_as", "reshape_as", "repeat", "narrow", "flip", "roll", "unflatten",
              "movedim", "split", "chunk", "unbind", "tensor_split", "select", "index_select", "gather",
              "cumsum", "tile", "swapaxes", "masked_select", "diagonal", "tril", "triu", "repeat_interleave"]
_REDUCTIONS = ["sum", "mean", "amax", "amin", "max", "min", "topk", "sort", "median", "nansum", "nanmean"]


@rule(*keys_of(_SHAPE_OPS + _REDUCTIONS, "Tensor", "torch"), "F.pixel_shuffle",
      "F.pixel_unshuffle", "F.unfold", "F.fold")
def _merged(call: Call):
    d = _first(call)
    form = call.ctx.resolve(d, call.origin("mix"))
    other = call.arg(1, "other")
    if call.key.endswith((".max", ".min")) and isinstance(call.val(other), torch.Tensor):
        # elementwise max(a, b) of two tensors: homogeneous only if both share the degree
        o = call.origin("sum")
        form = call.ctx.equal([form, call.ctx.resolve(call.deg(other) or ZERO_DEG, o)], o)
    return same_form(call, form, stat=d.stat)


@rule("torch._assert")
def _assert(call: Call):
    """A runtime check: no value flows out of it."""
    return None


@rule("getattr")
def _getattr(call: Call):
    """`.values` of a (values, indices) result picks that element; a tensor attribute (.T, .mT) keeps the degree."""
    src, attr = call.node.args[0], call.node.args[1]
    d, val = call.degs.get(src), call.val(src)
    if isinstance(d, (tuple, list)) and isinstance(val, tuple):
        picked = getattr(val, attr)
        return next((d[i] for i, v in enumerate(val) if v is picked), call.out_zero())
    return _merged(call)


@rule(*keys_of(["argmax", "argmin", "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like",
              "new_zeros", "new_ones", "new_empty", "new_full", "full_like", "sign", "isnan", "isinf", "isfinite",
              "bernoulli", "uniform", "normal", "fill", "zero", "all", "any", "logical_and", "logical_or",
              "logical_not", "nonzero", "count_nonzero"], "Tensor", "torch"))
def _scale_free(call: Call):
    """Outputs that do not depend on a positive scale of the input (or not on its values)."""
    return call.out_zero()


# -- statistics
@rule("Tensor.var", "torch.var", "Tensor.std", "torch.std", "Tensor.norm", "torch.norm",
      "torch.linalg_vector_norm", "torch.vector_norm", "torch.linalg.vector_norm", "torch.var_mean",
      "torch.std_mean", "Tensor.square", "torch.square")
def _statistic(call: Call):
    form = call.ctx.resolve(_first(call), call.origin("mix"))
    power = 2 if call.key.rsplit(".", 1)[1] in ("var", "square") else 1
    if call.key.endswith("_mean"):  # (var or std, mean)
        return (Deg.of(f_scale(form, Fraction(2 if "var" in call.key else 1)), True), Deg.of(form))
    return same_form(call, f_scale(form, Fraction(power)), stat=True)


@rule("Tensor.pow", "torch.pow", "operator.pow", "Tensor.sqrt", "torch.sqrt", "Tensor.rsqrt", "torch.rsqrt",
      "Tensor.reciprocal", "torch.reciprocal")
def _power(call: Call):
    name = call.key.rsplit(".", 1)[1]
    k = {"sqrt": 0.5, "rsqrt": -0.5, "reciprocal": -1}.get(name, call.arg(1, "exponent"))
    base = call.arg(0, "input")
    if not _is_scalar(k) or call.deg(base) is None:
        return conservative(call)
    d = call.deg(base)
    stat = d.stat or (float(k) % 2 == 0)
    return Deg.of(f_scale(call.ctx.resolve(d, call.origin("mix")), Fraction(k)), stat)


# -- sums: constraint "equal degrees", except terms a later normalization removes
@rule("operator.add", "torch.add", "Tensor.add", "operator.sub", "torch.sub", "Tensor.sub", "torch.rsub",
      "Tensor.rsub", "operator.iadd", "operator.isub")
def _sum(call: Call):
    a, b = call.arg(0, "input"), call.arg(1, "other")
    if _is_scalar(a) or _is_scalar(b):
        return _plus_constant(call, b if _is_scalar(a) else a, a if _is_scalar(a) else b)
    da, db = call.deg(a), call.deg(b)
    if da is None or db is None:
        return conservative(call)
    out_shape = call.shape()
    parts = [broadcast_terms(d, call.shape(x), out_shape) or Deg.of(call.ctx.resolve(d, call.origin("sum")))
             for x, d in ((a, da), (b, db))]
    stat = da.stat and db.stat
    out = sum_degs(parts, out_shape)
    return Deg(out.tagged(call.origin("sum")).blocks, stat)


def _plus_constant(call: Call, tensor, c):
    d = call.deg(tensor) or ZERO_DEG
    if c == 0 or (d.stat and 0 < c <= EPS_MAX):
        return d
    call.ctx.zero(call.ctx.resolve(d, call.origin("nonhomogeneous")), call.origin("nonhomogeneous"))
    return ZERO_DEG


def _note_cancelled(call: Call, inputs, out) -> None:
    """x / ||x||, x * rsqrt(mean(x^2)), (w - mean) / std: these variables' scale cancels here."""
    cancelled = set().union(*map(set, inputs)) - set(out)
    if cancelled:
        call.ctx.note_normalized([dict.fromkeys(cancelled, 1)], call.module or call.node.name)


@rule("operator.mul", "torch.mul", "Tensor.mul", "operator.imul")
def _mul(call: Call):
    a, b = call.arg(0, "input"), call.arg(1, "other")
    if _is_scalar(a) or _is_scalar(b):
        return call.deg(b if _is_scalar(a) else a) or ZERO_DEG
    da, db = call.deg(a) or ZERO_DEG, call.deg(b) or ZERO_DEG
    o = call.origin("mix")
    fa, fb = call.ctx.resolve(da, o), call.ctx.resolve(db, o)
    form = f_add(fa, fb)
    _note_cancelled(call, (fa, fb), form)
    return Deg.of(form, stat=(a is b) or (da.stat and db.stat))


@rule("operator.truediv", "torch.div", "Tensor.div", "torch.true_divide", "Tensor.true_divide", "operator.itruediv")
def _div(call: Call):
    a, b = call.arg(0, "input"), call.arg(1, "other")
    if call.node.kwargs.get("rounding_mode") is not None:
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


# -- joins: cat along channels keeps one block per operand; everything else must agree
@rule("torch.cat", "torch.concat", "torch.concatenate")
def _cat(call: Call):
    tensors = list(call.arg(0, "tensors"))
    ndim = len(call.shape())
    dim = call.arg(1, "dim", 0)
    dim = dim + ndim if dim < 0 else dim
    degs = [call.deg(t) or ZERO_DEG for t in tensors]
    if dim == 1 and ndim >= 2:
        blocks = []
        for t, d in zip(tensors, degs):
            channels = call.shape(t)[1]
            for size, terms in d.blocks:
                blocks.append((channels if size is None else size, terms))
        return Deg(tuple(blocks))
    o = call.origin("sum")
    return Deg.of(call.ctx.equal([call.ctx.resolve(d, o) for d in degs], o))


@rule("torch.stack")
def _stack(call: Call):
    o = call.origin("sum")
    return Deg.of(call.ctx.equal([call.ctx.resolve(call.deg(t) or ZERO_DEG, o) for t in call.arg(0, "tensors")], o))


@rule("torch.where", "Tensor.where")
def _where(call: Call):
    o = call.origin("sum")
    if call.key == "Tensor.where":  # x.where(condition, other)
        branches = [call.node.args[0], call.arg(2, "other")]
    else:
        branches = [call.arg(1, "input"), call.arg(2, "other")]
    forms = []
    for x in branches:
        if _is_scalar(x):
            if x != 0:
                forms.append(ZERO)
        else:
            forms.append(call.ctx.resolve(call.deg(x) or ZERO_DEG, o))
    return Deg.of(call.ctx.equal(forms, o))


@rule("Tensor.masked_fill", "torch.masked_fill")
def _masked_fill(call: Call):
    value = call.arg(2, "value")
    form = call.ctx.resolve(_first(call), call.origin("mix"))
    if _is_scalar(value) and (value == 0 or abs(value) == float("inf")):
        return Deg.of(form)
    call.ctx.zero(form, call.origin("nonhomogeneous"))
    return ZERO_DEG


@rule("operator.setitem")
def _setitem(call: Call):
    target, value = call.node.args[0], call.node.args[2]
    o = call.origin("sum")
    forms = [call.ctx.resolve(call.deg(target) or ZERO_DEG, o)]
    if not _is_scalar(value) or value != 0:
        forms.append(ZERO if _is_scalar(value) else call.ctx.resolve(call.deg(value) or ZERO_DEG, o))
    if isinstance(target, fx.Node):
        call.degs[target] = Deg.of(call.ctx.equal(forms, o))
    return None


_COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]


@rule(*keys_of(_COMPARISONS, "operator", "torch", "Tensor"))
def _compare(call: Call):
    """The sign of x is scale-free; comparing with a nonzero threshold or another tensor is not."""
    a, b = call.arg(0, "input"), call.arg(1, "other")
    o = call.origin("nonhomogeneous")
    sides = [call.ctx.resolve(call.deg(x) or ZERO_DEG, o) for x in (a, b) if not _is_scalar(x)]
    if any(_is_scalar(x) and x != 0 for x in (a, b)):
        sides.append(ZERO)
    call.ctx.equal(sides, o)
    return call.out_zero()


@rule("F.pad")
def _pad(call: Call):
    value = call.arg(3, "value", None)
    form = call.ctx.resolve(_first(call), call.origin("mix"))
    if call.arg(2, "mode", "constant") == "constant" and value not in (None, 0, 0.0):
        call.ctx.zero(form, call.origin("nonhomogeneous"))
        return ZERO_DEG
    return Deg.of(form)


@rule("Tensor.clamp", "torch.clamp", "Tensor.clamp_min", "torch.clamp_min", "Tensor.clip", "torch.clip")
def _clamp(call: Call):
    """clamp(stat, min=eps) is the usual guard of a norm; any other fixed threshold is not scale-free."""
    d = _first(call)
    lo = call.arg(1, "min")
    hi = None if call.key.endswith("clamp_min") else call.arg(2, "max")
    if d.stat and hi is None and _is_scalar(lo) and 0 <= lo <= EPS_MAX:
        return d
    return conservative(call)


_NONHOMOGENEOUS = ["sigmoid", "tanh", "gelu", "silu", "softmax", "log_softmax", "softmin", "exp", "expm1", "log",
                   "log1p", "log2", "relu6", "hardtanh", "hardswish", "hardsigmoid", "elu", "selu", "celu",
                   "softplus", "softsign", "mish", "erf", "sin", "cos", "logsigmoid", "logsumexp", "glu",
                   "alpha_dropout", "feature_alpha_dropout", "tanhshrink", "softshrink", "hardshrink",
                   "threshold", "floor", "ceil", "round", "trunc", "frac", "floor_divide", "remainder", "fmod"]


@rule(*keys_of(_NONHOMOGENEOUS, "F", "torch", "Tensor"), "operator.floordiv", "operator.mod", "Tensor.item",
      "Tensor.tolist")
def _nonhomogeneous(call: Call):
    return conservative(call)
