"""Transfer rules for joins and selections: cat/stack/where/masked_fill/setitem, comparisons,
padding and clamps, and the non-homogeneous elementwise functions (docs/theory.md §2)."""
from __future__ import annotations

from torch import fx

from explr.audit.transfer import Call, conservative, rule, write
from explr.audit.forms import ZERO, ZERO_DEG, Deg, Term
from explr.audit.rules_basic import EPS_MAX, _first, _is_scalar, keys_of


# -- joins: cat along channels keeps one block per operand; everything else must agree
@rule("torch.cat", "torch.concat", "torch.concatenate")
def _cat(call: Call):
    tensors = list(call.arg("tensors", ()))
    ndim = len(call.shape())
    dim = call.arg("dim", call.arg("axis", 0))
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
    return Deg.of(call.ctx.equal([call.ctx.resolve(call.deg(t) or ZERO_DEG, o) for t in call.arg("tensors", ())], o))


def _branches_equal(call: Call, branches) -> Deg:
    """where/masked_fill: the output holds one branch or the other, so they share the degree
    (a 0 branch fits any degree; another constant forces 0). The mask itself is not read."""
    o = call.origin("sum")
    forms = []
    for x in branches:
        if _is_scalar(x) or x is None:
            if x not in (0, None) and abs(x) != float("inf"):
                forms.append(ZERO)
        else:
            forms.append(call.ctx.resolve(call.deg(x) or ZERO_DEG, o))
    return Deg.of(call.ctx.equal(forms, o))


@rule("torch.where", "Tensor.where")
def _where(call: Call):
    return _branches_equal(call, [call.arg("input"), call.arg("other")])


@rule("Tensor.masked_fill", "torch.masked_fill")
def _masked_fill(call: Call):
    return _branches_equal(call, [call.arg("input"), call.arg("value")])


@rule("operator.setitem")
def _setitem(call: Call):
    target, value = call.node.args[0], call.node.args[2]
    o = call.origin("sum")
    forms = [call.ctx.resolve(call.deg(target) or ZERO_DEG, o)]
    if not _is_scalar(value) or value != 0:
        forms.append(ZERO if _is_scalar(value) else call.ctx.resolve(call.deg(value) or ZERO_DEG, o))
    if isinstance(target, fx.Node):
        write(call, target, Deg.of(call.ctx.equal(forms, o)))
    return None


_COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]


@rule(*keys_of(_COMPARISONS, "operator", "torch", "Tensor"))
def _compare(call: Call):
    """The sign of x is scale-free; comparing with a nonzero threshold or another tensor is not."""
    a, b = call.arg("input"), call.arg("other")
    o = call.origin("nonhomogeneous")
    sides = [call.ctx.resolve(call.deg(x) or ZERO_DEG, o) for x in (a, b) if not _is_scalar(x)]
    if any(_is_scalar(x) and x != 0 for x in (a, b)):
        sides.append(ZERO)
    call.ctx.equal(sides, o)
    return call.out_zero()


@rule("F.pad")
def _pad(call: Call):
    """Zero padding keeps the degree; a term constant along a dim stays constant there when the pad
    repeats values (reflect, replicate, circular: nn.Conv2d's padding_mode), or when that dim is not
    padded. A nonzero fill does not scale."""
    value, mode = call.arg("value"), call.arg("mode", "constant")
    d = _first(call)
    if mode == "constant" and value not in (None, 0, 0.0):
        o = call.origin("nonhomogeneous")
        call.ctx.zero(call.ctx.resolve(d, o), o)
        return ZERO_DEG
    ndim = len(call.shape())
    padded = frozenset(range(ndim - len(call.arg("pad", ())) // 2, ndim))
    varying, kept = call.ctx.separate(d, (lambda c: c - padded) if mode == "constant" else (lambda c: c),
                                      call.origin("mix"))
    return Deg(((None, tuple(([Term(varying)] if varying is not None else []) + kept)),))


@rule("Tensor.clamp", "torch.clamp", "Tensor.clamp_min", "torch.clamp_min", "Tensor.clip", "torch.clip")
def _clamp(call: Call):
    """clamp(stat, min=eps) is the usual guard of a norm; any other fixed threshold is not scale-free."""
    d = _first(call)
    lo = call.arg("min")
    hi = None if call.key.endswith("clamp_min") else call.arg("max")
    if d.stat and hi is None and _is_scalar(lo) and 0 <= lo <= EPS_MAX:
        return d
    return conservative(call)


_NONHOMOGENEOUS = ["sigmoid", "tanh", "gelu", "silu", "exp", "expm1", "log",
                   "log1p", "log2", "relu6", "hardtanh", "hardswish", "hardsigmoid", "elu", "selu", "celu",
                   "softplus", "softsign", "mish", "erf", "sin", "cos", "logsigmoid", "logsumexp", "glu",
                   "alpha_dropout", "feature_alpha_dropout", "tanhshrink", "softshrink", "hardshrink",
                   "threshold", "floor", "ceil", "round", "trunc", "frac", "floor_divide", "remainder", "fmod",
                   # recurrent layers (nn.LSTM/GRU/RNN call these): sigmoid/tanh gates, and a state that feeds
                   # back through the same weights, so even the ReLU RNN mixes degrees (timm's Sequencer2d)
                   "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"]


@rule(*keys_of(_NONHOMOGENEOUS, "F", "torch", "Tensor"), "operator.floordiv", "operator.mod", "Tensor.item",
      "Tensor.tolist")
def _nonhomogeneous(call: Call):
    return conservative(call)


@rule(*keys_of(["softmax", "log_softmax", "softmin"], "F", "torch", "Tensor"))
def _softmax(call: Call):
    """softmax(x + c) = softmax(x) when c is constant along the softmax dim (log_softmax and softmin
    alike): such a term is cancelled, as a per-channel bias is by BatchNorm (ConViT's per-head
    positional bias, softmax over the keys). Every other term: degree 0, softmax is not homogeneous."""
    x = call.arg("input")
    d = call.deg(x) or ZERO_DEG
    ndim = len(call.shape(x))
    dim = call.arg("dim")
    if not isinstance(dim, int) or ndim == 0:  # the legacy implicit dim: nothing is known to cancel
        return conservative(call)
    dim %= ndim
    mixed_blocks = dim == 1 and len(d.blocks) > 1  # a term constant in its own block only varies along dim 1
    o = call.origin("nonhomogeneous")
    for t in d.all_terms():
        if dim in t.const and not mixed_blocks:
            for v in t.form:
                call.ctx.dropped.setdefault(v, f"the softmax in {call.module or call.node.name}")
        else:
            call.ctx.zero(t.form, o)
    return call.out_zero()
