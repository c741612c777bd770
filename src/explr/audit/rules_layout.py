"""Transfer rule for transposes and permutations (docs/theory.md §2): the degree is unchanged and
every term is kept, its constant dims permuted with the tensor's, so a bias constant over the
channels still is after `x.transpose(1, 2)` (MLP-Mixer's token MLP: a LayerNorm over the channels
cancels it).
"""
from __future__ import annotations

from explr.audit.forms import Deg, Term
from explr.audit.rules_basic import _first, keys_of
from explr.audit.transfer import Call, rule


@rule(*keys_of(["transpose", "permute", "swapaxes", "swapdims", "t"], "Tensor", "torch"))
def _permute(call: Call):
    d = _first(call)
    perm = _permutation(call)
    if perm is None or (len(d.blocks) > 1 and perm[1] != 1):  # channel blocks moved off dim 1: merge
        return Deg.of(call.ctx.resolve(d, call.origin("mix")), d.stat)
    where = {old: new for new, old in enumerate(perm)}
    return d.map_terms(lambda t: Term(t.form, frozenset(where[i] for i in t.const), t.via))


def _permutation(call: Call) -> list[int] | None:
    """perm with out dim i = input dim perm[i], from the op's arguments (None if they are not ints);
    checked against the actual shapes."""
    shape, out = call.shape(call.arg("input")), call.shape()
    ndim = len(shape)
    args = list(call.node.args[1:]) + list(call.node.kwargs.values())
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = list(args[0])
    ints = [a for a in args if isinstance(a, int)]
    if not ndim or len(ints) != len(args):
        return None
    name = call.key.rsplit(".", 1)[1]
    if name == "t":
        perm = list(range(ndim))[::-1]
    elif name == "permute":
        perm = [i % ndim for i in ints]
    elif len(ints) == 2:
        perm = list(range(ndim))
        a, b = ints[0] % ndim, ints[1] % ndim
        perm[a], perm[b] = perm[b], perm[a]
    else:
        return None
    if sorted(perm) != list(range(ndim)) or tuple(shape[i] for i in perm) != tuple(out):
        return None
    return perm
