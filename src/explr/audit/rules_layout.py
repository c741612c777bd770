"""Transfer rules for ops that only move elements (docs/theory.md §2): transposes, reshapes and
basic slicing. The degree is unchanged and a term constant over some dims stays a separate term
where the moved tensor is still constant: permuted dims for a transpose (MLP-Mixer's token-MLP
bias after `transpose(1, 2)`: a LayerNorm over the channels cancels it); for a reshape, an output
dim made only of constant input dims (LeViT's `x.flatten(0, 1)` before its BatchNorm1d); for
`x[:, ::2, :k]`, every dim a slice keeps; for a sum or mean, every dim it does not reduce
(LeViT's token mean before its BatchNorm1d head). Other terms merge, as for any shape op.
"""
from __future__ import annotations

from explr.audit.forms import Deg, Term
from explr.audit.rules_basic import _first, keys_of
from explr.audit.transfer import Call, conservative, rule

Groups = list[tuple[tuple[int, ...], tuple[int, ...]]]  # (input dims, output dims) holding the same elements
_RESHAPES = ["view", "reshape", "flatten", "unflatten", "view_as", "reshape_as", "squeeze", "unsqueeze"]


@rule(*keys_of(["transpose", "permute", "swapaxes", "swapdims", "t"], "Tensor", "torch"))
def _permute(call: Call):
    """Every term kept, its constant dims permuted; channel blocks survive only if dim 1 stays."""
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


@rule(*keys_of(_RESHAPES, "Tensor", "torch"))
def _reshape(call: Call):
    """A row-major reshape: an output dim made only of constant input dims is constant."""
    call.metadata_only(call.arg("other"))  # view_as(other): other's shape only
    x, out = call.val(call.arg("input")), call.val(call.node)
    if getattr(x, "dtype", None) != getattr(out, "dtype", None):  # x.view(dtype) reinterprets the bits
        return conservative(call)
    return _moved(call, _reshaped_dims(call.shape(call.arg("input")), call.shape()))


def _moved(call: Call, groups: Groups | None, fixed=frozenset()) -> Deg:
    """The input's terms after a move: output dims in `fixed` (size 1) are constant; those of a group
    (input dims -> output dims) are constant where all its input dims were. None: merge all."""
    d = _first(call)
    o = call.origin("mix")
    if groups is None:
        return Deg.of(call.ctx.resolve(d, o), d.stat)

    def const_after(const: frozenset) -> frozenset:
        return frozenset(fixed).union(*(frozenset(outs) for ins, outs in groups if set(ins) <= const))

    varying, kept = call.ctx.separate(d, const_after, o)
    return Deg(((None, tuple(([Term(varying)] if varying is not None else []) + kept)),), d.stat)


def _reshaped_dims(shape: tuple, out: tuple) -> Groups | None:
    """Groups (input dims, output dims) of a row-major reshape, size-1 dims each a group of their
    own (constant trivially); None if the shapes do not pair up."""
    if 0 in shape or 0 in out:
        return None
    groups: Groups = [((i,), ()) for i, n in enumerate(shape) if n == 1]
    groups += [((), (j,)) for j, n in enumerate(out) if n == 1]
    ins = [i for i, n in enumerate(shape) if n != 1]
    outs = [j for j, n in enumerate(out) if n != 1]
    while ins or outs:
        gi, go = [ins.pop(0)] if ins else [], [outs.pop(0)] if outs else []
        if not gi or not go:
            return None
        pi, po = shape[gi[0]], out[go[0]]
        while pi != po:
            if pi < po and ins:
                gi.append(ins.pop(0))
                pi *= shape[gi[-1]]
            elif po < pi and outs:
                go.append(outs.pop(0))
                po *= out[go[-1]]
            else:
                return None
        groups.append((tuple(gi), tuple(go)))
    return groups


def sliced(call: Call, index) -> Deg:
    """x[index] with basic indexing (ints, slices, None, ...): a slice keeps its dim (and what is
    constant along it), an int drops one, None adds a size-1 dim; a tensor index: merge all."""
    items = list(index) if isinstance(index, tuple) else [index]
    ndim = len(call.shape(call.arg("input")))
    if not all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items) or items.count(Ellipsis) > 1:
        return _moved(call, None)
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (ndim - used)
    items += [slice(None)] * (ndim - sum(1 for i in items if i is not None))
    groups: Groups = []
    fixed, dim, out_dim = set(), 0, 0
    for i in items:
        if i is None:
            fixed.add(out_dim)
        elif isinstance(i, slice):
            groups.append(((dim,), (out_dim,)))
        dim += i is not None
        out_dim += not isinstance(i, int)
    return _moved(call, groups, frozenset(fixed))


@rule(*keys_of(["sum", "mean"], "Tensor", "torch"))
def _reduce(call: Call):
    """A sum or mean is linear: a term constant along a dim it keeps is still constant there."""
    ndim = len(call.shape(call.arg("input")))
    dim, keepdim = call.arg("dim"), call.arg("keepdim", False) is True
    dims = range(ndim) if dim is None or dim == () else dim if isinstance(dim, (tuple, list)) else (dim,)
    if not ndim or not all(isinstance(d, int) for d in dims):
        return _moved(call, None)
    reduced = {d % ndim for d in dims}
    groups: Groups = []
    fixed, out_dim = set(), 0
    for d in range(ndim):
        if d not in reduced:
            groups.append(((d,), (out_dim,)))
        elif keepdim:
            fixed.add(out_dim)  # size 1 now
        out_dim += d not in reduced or keepdim
    return _moved(call, groups, frozenset(fixed))
