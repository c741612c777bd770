"""Transfer rules for products: linear, conv, matmul, embedding and attention (docs/theory.md §2).

Degrees of factors add; a bias is a separate term, constant over every dim but its own, so a
following BatchNorm can cancel it while a LayerNorm over its dim cannot. Linear and conv act
term by term: an input term constant over some dims stays a separate term where its image is
still constant (a BN's beta through a 1x1 conv into the next BN: cancelled there, so that beta is
scale-invariant alone), see `_conv_constant_dims` for when zero padding breaks that.
"""
from __future__ import annotations

from torch import fx

from explr.audit.forms import ZERO, ZERO_DEG, Deg, Form, Term, f_add
from explr.audit.rules_basic import keys_of
from explr.audit.transfer import Call, conservative, exact_values, rule


# -- products: degrees add; a bias is constant over every dim but its own
def _product_with_bias(call: Call, forms, bias, bias_dims: frozenset, ndim: int | None = None,
                       kept: tuple[Term, ...] = (), has_main: bool = True):
    """The product of `forms` (a term varying everywhere unless `has_main` is False), the input's
    `kept` terms (already multiplied), and the bias: constant over every dim but `bias_dims`."""
    main = ZERO
    for f in forms:
        main = f_add(main, f)
    terms = ([Term(main)] if has_main else []) + list(kept)
    bd = call.deg(bias)
    if bd is not None:
        ndim = len(call.shape()) if ndim is None else ndim
        const = frozenset(range(ndim)) - bias_dims
        terms.append(Term(call.ctx.resolve(bd, call.origin("mix")), const, value=(call.node, 1)))
    if bd is None and not kept and has_main:
        return Deg.of(main)
    return Deg(((None, tuple(terms)),))


def _term_by_term(call: Call, const_after, bias_dims: frozenset):
    """input (x) weight + bias, keeping the input's terms apart where `const_after` says their image
    stays constant."""
    o = call.origin("mix")
    weight: Form = call.ctx.resolve(call.deg(call.arg("weight")) or ZERO_DEG, o)
    varying, kept = call.ctx.separate(call.deg(call.arg("input")) or ZERO_DEG, const_after, o)
    moved = tuple(Term(f_add(t.form, weight), t.const, t.via) for t in kept)
    return _product_with_bias(call, [varying or ZERO, weight], call.arg("bias"), bias_dims, kept=moved,
                              has_main=varying is not None)


@rule("F.linear")
@exact_values
def _linear(call: Call):
    """Acts on the last dim only: a term constant over other dims stays constant over them."""
    last = len(call.shape()) - 1
    return _term_by_term(call, lambda const: const - {last}, frozenset({last}))


@rule(*keys_of(["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"], "F"))
@exact_values
def _conv(call: Call):
    return _term_by_term(call, _conv_constant_dims(call), frozenset({1}))


def _conv_constant_dims(call: Call):
    """Where conv(term) is constant, given where the term is: over the batch if the term is, and
    over a spatial dim the term is constant along only when that dim has no padding. Zero padding
    puts zeros under the kernel at the borders, so conv(constant) is not constant there (any kernel,
    a 1x1 too: its padded border reads only zeros); stride, dilation and groups keep a constant
    constant. A transposed conv sums a varying number of taps per output position: nothing kept."""
    x, w = call.val(call.arg("input")), call.val(call.arg("weight"))
    if "transpose" in call.key or not hasattr(x, "dim") or not hasattr(w, "dim") or x.dim() != w.dim():
        return lambda const: frozenset()  # transposed, or an unbatched input: merge as any product
    pads = _paddings(call.arg("padding", 0), tuple(w.shape[2:]), call.arg("dilation", 1))
    keep = frozenset({0}) | frozenset(2 + i for i, pad in enumerate(pads or ()) if pad == 0)
    return (lambda const: const & keep) if pads is not None else (lambda const: const & {0})


def _paddings(padding, kernel: tuple, dilation) -> tuple | None:
    """Padding per spatial dim ('same' pads dilation * (k - 1) in all); None when it is not readable."""
    n = len(kernel)
    if padding == "valid":
        return (0,) * n
    if padding == "same":
        dil = dilation if isinstance(dilation, (tuple, list)) else (dilation,) * n
        if len(dil) != n or not all(isinstance(d, int) for d in dil):
            return None
        return tuple(d * (k - 1) for d, k in zip(dil, kernel))
    pads = padding if isinstance(padding, (tuple, list)) else (padding,) * n
    return tuple(pads) if len(pads) == n and all(isinstance(p, int) for p in pads) else None


@rule("operator.matmul", "torch.matmul", "Tensor.matmul", "torch.mm", "Tensor.mm", "torch.bmm", "Tensor.bmm",
      "torch.einsum", "torch.outer", "Tensor.outer")
def _matmul(call: Call):
    o = call.origin("mix")
    operands = [a for a in call.node.args if isinstance(a, fx.Node)]
    if call.key == "torch.einsum" and len(call.node.args) == 2 and isinstance(call.node.args[1], (list, tuple)):
        operands = list(call.node.args[1])
    form = ZERO
    for x in operands:
        form = f_add(form, call.ctx.resolve(call.deg(x) or ZERO_DEG, o))
    return Deg.of(form)


@rule("torch.addmm", "Tensor.addmm", "torch.baddbmm", "Tensor.baddbmm")
@exact_values
def _addmm(call: Call):
    """bias + a @ b (HF Conv1D): a product plus a bias over the last dim."""
    o = call.origin("mix")
    forms = [call.ctx.resolve(call.deg(x) or ZERO_DEG, o) for x in (call.arg("mat1", call.arg("batch1")), call.arg("mat2", call.arg("batch2")))]
    bias = call.arg("input")
    if len(call.shape(bias)) > 1:  # a full matrix, not a bias vector: a plain sum
        return Deg.of(call.ctx.equal([f_add(forms[0], forms[1]), call.ctx.resolve(call.deg(bias) or ZERO_DEG, o)], o))
    return _product_with_bias(call, forms, bias, frozenset({len(call.shape()) - 1}))


@rule("F.embedding")
def _embedding(call: Call):
    if call.arg("max_norm") is not None:  # renormalizes rows above a fixed norm: not scale-free
        return conservative(call)
    return Deg.of(call.ctx.resolve(call.deg(call.arg("weight")) or ZERO_DEG, call.origin("mix")))


@rule("F.scaled_dot_product_attention")
def _attention(call: Call):
    """softmax(q k^T / sqrt(d) + mask) v: q, k and the mask inside the softmax, v outside.

    A term of k constant along the keys (dim -2: a key bias, timm's class attention in CaiT/XCiT)
    adds q.b, the same for every key, to each row of scores: the softmax cancels it."""
    o = call.origin("nonhomogeneous")
    for x in (call.arg("query"), call.arg("attn_mask")):
        d = call.deg(x)
        if d is not None:
            call.ctx.zero(call.ctx.resolve(d, o), o)
    key = call.arg("key")
    keys_dim = len(call.shape(key)) - 2
    for t in (call.deg(key) or ZERO_DEG).all_terms():
        if keys_dim >= 0 and keys_dim in t.const:
            for v in t.form:
                call.ctx.dropped.setdefault(v, f"the attention softmax in {call.module or call.node.name}")
        else:
            call.ctx.zero(t.form, o)
    return Deg.of(call.ctx.resolve(call.deg(call.arg("value")) or ZERO_DEG, call.origin("mix")))


@rule("F.multi_head_attention_forward")
def _multi_head_attention(call: Call):
    """nn.MultiheadAttention: q, k, v projections feed the softmax (conservatively all to degree 0,
    with the fused in-projection they share a weight anyway); the out-projection is a linear."""
    o = call.origin("nonhomogeneous")
    out_weight, out_bias = call.arg("out_proj_weight"), call.arg("out_proj_bias")
    for name in ("query", "key", "value", "in_proj_weight", "in_proj_bias", "bias_k", "bias_v",
                 "q_proj_weight", "k_proj_weight", "v_proj_weight", "attn_mask", "key_padding_mask",
                 "static_k", "static_v"):
        d = call.deg(call.arg(name))
        if d is not None:
            call.ctx.zero(call.ctx.resolve(d, o), o)
    ndim = len(call.shape(call.arg("query")))
    weight = call.ctx.resolve(call.deg(out_weight) or ZERO_DEG, call.origin("mix"))
    return (_product_with_bias(call, [weight], out_bias, frozenset({ndim - 1}), ndim), ZERO_DEG)
