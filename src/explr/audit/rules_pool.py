"""Transfer rule for pooling (docs/theory.md §2): positively homogeneous, channel blocks kept.

A term constant over the pooled dims comes out of the pool unchanged when the pool maps a
constant to itself: max pooling always (max(a + b) = max(a) + b for b constant over the window;
padding is -inf, never a candidate), adaptive average pooling always (it divides by the window it
read), average pooling when it divides by the elements it read (count_include_pad=False, or no
padding and no ceil_mode) and has no divisor_override. Such a term stays a separate term, its
exact value too, so `avg_pool(x) - x` (PoolFormer's token mixer) cancels a bias exactly. With
count_include_pad=True and padding, the border windows average in zeros: a constant is not
constant after the pool, and every term merges as before.
"""
from __future__ import annotations

from explr.audit.forms import ZERO_DEG, Deg, Term
from explr.audit.rules_basic import _first, _keeps_channels, keys_of
from explr.audit.transfer import Call, exact_values, rule

_MAX = ["max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"]
_AVG = ["avg_pool1d", "avg_pool2d", "avg_pool3d"]
_ADAPTIVE_AVG = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"]


@rule(*keys_of(_MAX + _AVG + _ADAPTIVE_AVG, "F"))
@exact_values
def _pool(call: Call):
    """Per channel block: terms constant over the pooled dims pass unchanged (exact values too) when
    the pool keeps constants; the other terms merge into one."""
    d = _first(call)
    o = call.origin("mix")
    if not _keeps_channels(call):  # unbatched (C, H, W): it pools along dim 1 too
        deg = Deg.of(call.ctx.resolve(d, o))
    else:
        ndim = len(call.shape(call.arg("input")))
        pooled = frozenset(range(ndim - int(call.key[-2]), ndim))
        keep = _keeps_constants(call)
        blocks = []
        for size, terms in d.blocks:
            kept: list[Term] = []
            merged: list[Term] = []
            for t in terms:
                (kept if keep and pooled <= t.const else merged).append(t)
            blocks.append((size, tuple(([Term(call.ctx.merge_terms(merged, o))] if merged else []) + kept)))
        deg = Deg(tuple(blocks))
    return (deg, ZERO_DEG) if isinstance(call.node.meta.get("val"), tuple) else deg  # (values, indices)


def _keeps_constants(call: Call) -> bool:
    """Does this pool map a tensor constant over the pooled dims to the same constant?"""
    name = call.key.rsplit(".", 1)[1]
    if name in _MAX or name in _ADAPTIVE_AVG:
        return True
    if call.arg("divisor_override") is not None:
        return False
    if call.arg("count_include_pad", True) is False:
        return True
    padding = call.arg("padding", 0)
    pads = padding if isinstance(padding, (tuple, list)) else (padding,)
    return all(p == 0 for p in pads) and call.arg("ceil_mode", False) is False
