"""Homogeneity degrees as values (docs/theory.md §2).

A *form* is a linear combination of 0/1 parameter variables with rational coefficients,
stored as a dict {var index: Fraction} that is never mutated after creation ({} is degree 0).

A tensor's degree is a `Deg`: blocks along the channel dim (dim 1), each a sum of `Term`s.
A term remembers the dims over which it is constant (a per-channel bias is constant over
N, H, W), so a following normalization that averages over those dims can drop it; blocks
let a per-channel normalization see each concatenated block separately (DenseNet). A term
may also know its exact value (`Term.value`: a bias as one op added it, with a sign), so that
`avg_pool(x) - x` can cancel the bias exactly (docs/theory.md §2).
Most ops `resolve` a Deg to one form, which emits the constraints "all terms equal".
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

Form = dict  # dict[int, Fraction]; treated as immutable
ZERO: Form = {}


def f_var(index: int) -> Form:
    return {index: Fraction(1)}


def f_add(a: Form, b: Form, k: Fraction | int = 1) -> Form:
    """a + k*b."""
    if not b or k == 0:
        return a
    out = dict(a)
    for v, c in b.items():
        s = out.get(v, 0) + k * c
        if s:
            out[v] = s
        else:
            out.pop(v, None)
    return out


def f_scale(a: Form, k: Fraction) -> Form:
    return {v: c * k for v, c in a.items()} if k else {}


@dataclass(frozen=True, slots=True)
class Term:
    form: Form
    const: frozenset = frozenset()  # dims (of the tensor) over which this term is constant
    via: object = None  # Origin of the sum or affine that made it a separate term (for reasons)
    # (node, sign): the term is exactly sign * the bias `node` added (broadcast), or None when unknown.
    # Only value-preserving rules keep it (explr.audit.degrees strips it everywhere else).
    value: tuple[object, int] | None = None

    def shifted(self, offset: int, extra: frozenset) -> "Term":
        return Term(self.form, frozenset(d + offset for d in self.const) | extra, self.via, self.value)

    def negated(self) -> "Term":
        """-term: same degree; a known value changes sign."""
        if self.value is None:
            return self
        node, sign = self.value
        return Term(self.form, self.const, self.via, (node, -sign))


@dataclass(frozen=True, slots=True)
class Deg:
    """Degree of one tensor: ((size along dim 1 or None for the whole tensor, terms), ...)."""

    blocks: tuple
    stat: bool = False  # a non-negative scale statistic (var, std, norm): `+ eps` on it keeps the degree

    @staticmethod
    def of(form: Form, stat: bool = False) -> "Deg":
        return Deg(((None, (Term(form),)),), stat)

    @property
    def uniform(self) -> Form | None:
        """The form when the whole tensor has one single-term degree, else None."""
        if len(self.blocks) == 1 and len(self.blocks[0][1]) == 1:
            return self.blocks[0][1][0].form
        return None

    def all_terms(self) -> list[Term]:
        return [t for _, terms in self.blocks for t in terms]

    def forms(self) -> list[Form]:
        return [t.form for t in self.all_terms()]

    def tagged(self, via) -> "Deg":
        """The same degree with every term marked as coming from `via`."""
        return Deg(tuple((size, tuple(Term(t.form, t.const, via, t.value) for t in terms)) for size, terms in self.blocks),
                   self.stat)

    def map_terms(self, fn) -> "Deg":
        """The same blocks with `fn` applied to every term."""
        return Deg(tuple((size, tuple(fn(t) for t in terms)) for size, terms in self.blocks), self.stat)

    def has_values(self) -> bool:
        return any(t.value is not None for t in self.all_terms())


ZERO_DEG = Deg.of(ZERO)


def dedupe_terms(terms) -> tuple[Term, ...]:
    """Merge terms with equal forms (the merged term is constant only where both were)."""
    out: list[Term] = []
    for t in terms:
        for i, o in enumerate(out):
            if o.form == t.form:
                out[i] = Term(o.form, o.const & t.const, o.via or t.via)
                break
        else:
            out.append(t)
    return tuple(out)


def split_blocks(deg: Deg, cuts: list[int], channels: int) -> list[tuple[int, tuple[Term, ...]]]:
    """Refine deg's blocks at the given channel offsets (sizes, terms)."""
    bounds, start = [], 0
    for size, terms in deg.blocks:
        size = channels if size is None else size
        bounds.append((start, start + size, terms))
        start += size
    out = []
    points = sorted(set(cuts) | {0, channels})
    for lo, hi in zip(points, points[1:]):
        terms = next(t for s, e, t in bounds if s <= lo < e)
        out.append((hi - lo, terms))
    return out


def block_cuts(deg: Deg, channels: int) -> list[int]:
    cuts, pos = [], 0
    for size, _ in deg.blocks:
        pos += channels if size is None else size
        cuts.append(pos)
    return cuts


def broadcast_terms(deg: Deg, shape: tuple, out_shape: tuple) -> Deg | None:
    """deg of an operand of `shape` seen in the broadcast `out_shape`; None if its blocks cannot be kept."""
    offset = len(out_shape) - len(shape)
    extra = frozenset(i for i in range(len(out_shape))
                      if i < offset or shape[i - offset] == 1)
    if len(deg.blocks) > 1 and (offset != 0 or 1 in extra):
        return None
    return Deg(tuple((size, tuple(t.shifted(offset, extra) for t in terms))
                     for size, terms in deg.blocks))


def sum_degs(parts: list[Deg], out_shape: tuple) -> Deg:
    """Degree of a + b + ... (operands already broadcast by `broadcast_terms`), blocks aligned."""
    channels = out_shape[1] if len(out_shape) > 1 else 1
    if all(len(p.blocks) == 1 for p in parts):
        terms = dedupe_terms(t for p in parts for t in p.blocks[0][1])
        return Deg(((None, terms),))
    cuts = sorted({c for p in parts for c in block_cuts(p, channels)})
    refined = [split_blocks(p, cuts, channels) for p in parts]
    blocks = tuple((refined[0][i][0], dedupe_terms(t for r in refined for t in r[i][1]))
                   for i in range(len(refined[0])))
    return Deg(blocks)


def cancel_opposites(parts: list[Deg]) -> tuple[list[Deg], list[Term]]:
    """a + b where a holds +v and b holds -v, v the same known value (same node, same dims): the
    pair is exactly 0 and both terms go. Single-block operands only. Returns (parts, terms gone)."""
    if len(parts) != 2 or any(len(p.blocks) != 1 for p in parts):
        return parts, []
    left: list[Term] = []
    right = list(parts[1].blocks[0][1])
    gone = []
    for t in parts[0].blocks[0][1]:
        j = next((j for j, u in enumerate(right) if _opposite(t, u)), None)
        if j is None:
            left.append(t)
        else:
            gone.append(right.pop(j))
    return [Deg(((p.blocks[0][0], tuple(ts)),), p.stat) for p, ts in zip(parts, (left, right))], gone


def _opposite(t: Term, u: Term) -> bool:
    if t.value is None or u.value is None:
        return False
    return t.value[0] is u.value[0] and t.value[1] == -u.value[1] and t.const == u.const and t.form == u.form
