"""Transfer rules for normalizations: output degree 0 over what they normalize, then the affine.

A train-mode normalization makes its output independent of the input's scale, provided every
term of the input has the same degree inside each normalization group; a term constant over
all averaged dims (a per-channel bias before BatchNorm/InstanceNorm) is removed by the mean
subtraction and recorded as inert. The affine gamma*n + beta leaves two terms, gamma's
(varying everywhere) and beta's (constant over the non-parameter dims), so BN -> BN drops beta
while BN -> ReLU makes them equal.
"""
from __future__ import annotations

import torch
from torch import fx

from explr.audit.forms import ZERO, ZERO_DEG, Deg, Term, block_cuts, dedupe_terms
from explr.audit.transfer import Call, exact_values, rule
from explr.audit_report import Normalizer


def _groups_of_terms(call: Call, deg: Deg, reduce: frozenset, channel_group: int | None):
    """Term lists normalized together: one per channel block when the channel dim is not mixed."""
    channels = call.shape(call.arg("input"))[1] if len(call.shape(call.arg("input"))) > 1 else 1
    aligned = channel_group is not None and all(c % channel_group == 0 for c in block_cuts(deg, channels))
    if 1 not in reduce or aligned or len(deg.blocks) == 1:
        return [terms for _, terms in deg.blocks]
    # blocks normalized together: a term constant over its own block's channels is not constant
    # over the whole group any more
    return [[Term(t.form, t.const - {1}, t.via, t.value) for t in deg.all_terms()]]


def _normalize(call: Call, reduce: frozenset, *, mean_subtract: bool, channel_group: int | None = None) -> None:
    """Emit the constraints of normalizing input over `reduce`; record dropped (inert) terms."""
    x = call.arg("input")
    deg = call.deg(x) or ZERO_DEG
    name = call.module or call.node.name
    for terms in _groups_of_terms(call, deg, reduce, channel_group):
        kept = []
        for t in terms:
            if mean_subtract and reduce <= t.const and t.form:
                _record_cancelled(call, t, name)
                continue
            kept.append(t)
        # terms of a residual sum: blame the sum; anything else (a bias): the normalization
        origin = next((t.via for t in kept if t.via is not None and t.via.kind == "sum"),
                      call.origin("normalized-group"))
        call.ctx.equal([t.form for t in kept], origin)
        call.ctx.note_normalized([t.form for t in kept], name)


def _record_cancelled(call: Call, term: Term, name: str) -> None:
    """A bias itself (its value known: right before the norm, or through sums and pools that keep
    it) is inert (EXP102); a term that reached the norm through a linear map is cancelled too, but
    is no bias to remove."""
    for v in term.form:
        if term.value is not None:
            call.ctx.dropped.setdefault(v, name)
        else:
            call.ctx.cancelled.setdefault(v, f"its constant term stays constant through a linear map and is "
                                             f"cancelled by {name}")


def _affine(call: Call, weight, bias, param_dims: frozenset) -> Deg:
    o, via = call.origin("mix"), call.origin("affine")
    wd, bd = call.deg(weight), call.deg(bias)
    terms = [Term(call.ctx.resolve(wd, o) if wd is not None else ZERO, frozenset(), via)]
    if bd is not None:
        ndim = len(call.shape())
        terms.append(Term(call.ctx.resolve(bd, o), frozenset(range(ndim)) - param_dims, via, (call.node, 1)))
    return Deg(((None, dedupe_terms(terms)),))


def _record(call: Call, kind: str, eps, reduce: frozenset, weight=None, bias=None) -> None:
    names = tuple(a.target for a in (weight, bias)
                  if isinstance(a, fx.Node) and a.op == "get_attr" and a.target in call.ctx.param_index)
    if call.arg("input") not in call.ctx.from_inputs:  # normalizing a weight, not activations
        kind = "weight_standardization"
    call.ctx.normalizers.append(Normalizer(call.module or call.node.name, kind,
                                           float(eps) if eps is not None else None, names,
                                           _input_var(call.val(call.arg("input")), reduce)))


def _input_var(x, reduce: frozenset) -> float | None:
    """Mean variance of the input over the normalized dims (for the eps rule); None on meta."""
    if not isinstance(x, torch.Tensor) or x.is_meta or not x.is_floating_point() or not reduce:
        return None
    dims = tuple(d for d in sorted(reduce) if d < x.dim())
    if not dims:
        return None
    return float(x.detach().double().var(dim=dims, unbiased=False).mean())


def _spatial(call: Call) -> frozenset:
    return frozenset(range(2, len(call.shape(call.arg("input")))))


@rule("F.batch_norm")
@exact_values
def _batch_norm(call: Call):
    weight, bias = call.arg("weight"), call.arg("bias")
    reduce = frozenset({0}) | _spatial(call)
    _record(call, "batch_norm", call.arg("eps", 1e-5), reduce, weight, bias)
    _per_channel_statistics(call, reduce, batch_stats=call.arg("training", False))
    return _affine(call, weight, bias, frozenset({1}))


def _per_channel_statistics(call: Call, reduce: frozenset, batch_stats: bool) -> None:
    """Batch statistics normalize (the running statistics are only written); running statistics
    make (x - mean) / sqrt(var + eps) with fixed numbers: input and statistics all at degree 0."""
    stats = (call.arg("running_mean"), call.arg("running_var"))
    if batch_stats:
        call.metadata_only(stats)
        _normalize(call, reduce, mean_subtract=True, channel_group=1)
        return
    o = call.origin("nonhomogeneous")
    for x in (call.arg("input"), *stats):
        call.ctx.zero(call.ctx.resolve(call.deg(x) or ZERO_DEG, o), o)


@rule("F.instance_norm")
@exact_values
def _instance_norm(call: Call):
    weight, bias = call.arg("weight"), call.arg("bias")
    reduce = _spatial(call)
    _record(call, "instance_norm", call.arg("eps", 1e-5), reduce, weight, bias)
    _per_channel_statistics(call, reduce, batch_stats=call.arg("use_input_stats", True))
    return _affine(call, weight, bias, frozenset({1}))


@rule("F.group_norm")
@exact_values
def _group_norm(call: Call):
    weight, bias = call.arg("weight"), call.arg("bias")
    channels = call.shape(call.arg("input"))[1]
    per_group = channels // call.arg("num_groups")
    reduce = _spatial(call) | (frozenset({1}) if per_group > 1 else frozenset())
    _record(call, "group_norm", call.arg("eps", 1e-5), reduce, weight, bias)
    _normalize(call, reduce, mean_subtract=True, channel_group=per_group)
    return _affine(call, weight, bias, frozenset({1}))


def _last_dims(call: Call, count: int) -> frozenset:
    ndim = len(call.shape(call.arg("input")))
    return frozenset(range(ndim - count, ndim))


@rule("F.layer_norm")
@exact_values
def _layer_norm(call: Call):
    weight, bias = call.arg("weight"), call.arg("bias")
    reduce = _last_dims(call, len(call.arg("normalized_shape")))
    _record(call, "layer_norm", call.arg("eps", 1e-5), reduce, weight, bias)
    _normalize(call, reduce, mean_subtract=True)
    return _affine(call, weight, bias, reduce)


@rule("F.rms_norm")
def _rms_norm(call: Call):
    weight = call.arg("weight")
    reduce = _last_dims(call, len(call.arg("normalized_shape")))
    _record(call, "rms_norm", call.arg("eps"), reduce, weight)
    _normalize(call, reduce, mean_subtract=False)
    return _affine(call, weight, None, reduce)


@rule("F.normalize")
def _l2_normalize(call: Call):
    """x / max(||x||_p, eps): degree 0, except p = 0 (the count of non-zeros does not scale)."""
    if call.arg("p", 2.0) == 0:
        return Deg.of(call.ctx.resolve(call.deg(call.arg("input")) or ZERO_DEG, call.origin("mix")))
    ndim = len(call.shape(call.arg("input")))
    dim = call.arg("dim", 1)
    dims = frozenset(d % ndim for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
    _record(call, "normalize", call.arg("eps", 1e-12), dims)
    _normalize(call, dims, mean_subtract=False)
    return ZERO_DEG


@rule("torch._weight_norm")
def _weight_norm(call: Call):
    """g * v / ||v|| (norm over all dims but `dim`): v's scale cancels, the result has g's degree."""
    v, g = call.arg("v"), call.arg("g")
    name = call.module or call.node.name
    call.ctx.normalizers.append(Normalizer(name, "weight_norm", None, tuple(  # the gain g is its "affine"
        a.target for a in (g,) if isinstance(a, fx.Node) and a.target in call.ctx.param_index)))
    o = call.origin("normalized-group")
    vform = call.ctx.resolve(call.deg(v) or ZERO_DEG, o)
    call.ctx.note_normalized([vform], name)
    return Deg.of(call.ctx.resolve(call.deg(g) or ZERO_DEG, call.origin("mix")))
