"""Solve the degree constraints: which 0/1 assignments of parameter variables are feasible.

Every constraint is `form == 0` over 0/1 variables. Propagation first (a constraint whose
coefficients all have one sign forces its variables to 0; k*x_a - k*x_b merges a and b in a
union-find), then a small branch-and-bound per connected component of what is left,
maximizing the number of parameter elements (docs/theory.md §2: in a pre-activation block either
the last conv or the BN affine before it joins the stream, not both). Soundness does not
depend on the search: the final assignment is checked against every constraint, and a
component that fails the check (or exhausts the search budget without a solution) is set
to 0, which is always feasible because every constraint is homogeneous.
"""
from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from explr.audit.transfer import Constraint, Origin

SEARCH_BUDGET = 50_000  # branch-and-bound nodes per component


@dataclass
class Solution:
    chosen: set[int]  # variables set to 1 in the maximal assignment
    individually: set[int]  # x_p = 1 alone is feasible
    groups: list[list[int]]  # connected classes of the chosen assignment
    forced: dict[int, Origin] = field(default_factory=dict)  # var -> the constraint that forced it to 0
    left_out: set[int] = field(default_factory=set)  # 0 by the search's choice, not forced
    links: dict[int, list[Origin]] = field(default_factory=dict)  # chosen var -> origins tying it to others


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
        return min(ra, rb)


def _on_classes(form: dict, uf: _UnionFind, zero: Container[int]) -> dict:
    out: dict = {}
    for v, k in form.items():
        r = uf.find(v)
        if r in zero:
            continue
        s = out.get(r, 0) + k
        if s:
            out[r] = s
        else:
            out.pop(r)
    return out


def _propagate(n: int, constraints: list[Constraint]):
    """Unit propagation and merging; returns (uf, zero classes with origin, remaining constraints)."""
    uf = _UnionFind(n)
    zero: dict[int, Origin] = {}  # class -> why it is 0
    pending = list(constraints)
    changed = True
    while changed:
        changed, rest = False, []
        for c in pending:
            form = _on_classes(c.form, uf, zero)
            if not form:
                continue
            origin = _root_cause(c, uf, zero)
            ks = list(form.values())
            if all(k > 0 for k in ks) or all(k < 0 for k in ks):
                for r in form:
                    zero.setdefault(r, origin)
                changed = True
            elif len(form) == 2 and ks[0] == -ks[1]:
                a, b = form
                r = uf.union(a, b)
                for old in (a, b):
                    if old in zero and r not in zero:
                        zero[r] = zero[old]
                changed = True
            else:
                rest.append(Constraint(form, origin))
        pending = rest
    zero = {uf.find(r): o for r, o in zero.items()}
    return uf, zero, [Constraint(_on_classes(c.form, uf, set(zero)), c.origin) for c in pending]


# Origins that are reasons in themselves; the others (a sum, an affine, a merge) only pass a zero on.
PRIMARY_KINDS = frozenset({"output", "nonhomogeneous", "unknown", "opaque", "opaque-input", "opaque-read", "opaque-call-input",
                           "unreached", "unaccounted", "rule-error", "refuted"})


def _root_cause(c: Constraint, uf: _UnionFind, zero: dict) -> Origin:
    """x_b = x_a with x_a = 0 because of a softmax: b is 0 because of that softmax."""
    if c.origin.kind in PRIMARY_KINDS:
        return c.origin
    return next((zero[uf.find(v)] for v in c.form if uf.find(v) in zero), c.origin)


def _components(constraints: list[Constraint]) -> list[tuple[list[int], list[dict]]]:
    uf = _UnionFind(0)
    index: dict[int, int] = {}
    for c in constraints:
        ids = []
        for r in c.form:
            if r not in index:
                index[r] = len(uf.parent)
                uf.parent.append(index[r])
            ids.append(index[r])
        for i in ids[1:]:
            uf.union(ids[0], i)
    comps: dict[int, tuple[list[int], list[dict]]] = {}
    for r, i in index.items():
        comps.setdefault(uf.find(i), ([], []))[0].append(r)
    for c in constraints:
        if c.form:
            comps[uf.find(index[next(iter(c.form))])][1].append(c.form)
    return list(comps.values())


def _search(classes: list[int], forms: list[dict], weight: dict[int, int]) -> set[int]:
    """Branch and bound: the feasible 0/1 assignment of `classes` with the most weight.

    When the budget runs out, the best assignment found so far is kept (it is feasible)."""
    order = sorted(classes, key=lambda r: -weight[r])
    touching: dict[int, list[dict]] = {r: [] for r in classes}
    for f in forms:
        for r in f:
            touching[r].append(f)
    best: list = [-1, set()]
    value: dict[int, int] = {}
    budget = [SEARCH_BUDGET]

    def consistent(r: int) -> bool:
        """Only the constraints touching the variable just assigned can have changed."""
        for f in touching[r]:
            free = [u for u in f if u not in value]
            total = sum(k * value[u] for u, k in f.items() if u in value)
            if not free and total != 0:
                return False
            if len(free) == 1 and -total / f[free[0]] not in (0, 1):
                return False
        return True

    def dfs(i: int, gained: int, remaining: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or gained + remaining <= best[0]:
            return
        if i == len(order):
            best[0], best[1] = gained, {r for r, x in value.items() if x}
            return
        r = order[i]
        for x in (1, 0):
            value[r] = x
            if consistent(r):
                dfs(i + 1, gained + x * weight[r], remaining - weight[r])
            del value[r]

    dfs(0, 0, sum(weight[r] for r in classes))
    return best[1]


def _feasible(chosen: set[int], constraints: list[Constraint]) -> list[Constraint]:
    return [c for c in constraints if sum(k for v, k in c.form.items() if v in chosen) != 0]


def solve(n: int, numel: list[int], constraints: list[Constraint]) -> Solution:
    uf, zero, rest = _propagate(n, constraints)
    members: dict[int, list[int]] = {}
    for v in range(n):
        members.setdefault(uf.find(v), []).append(v)
    weight = {r: sum(numel[v] for v in vs) for r, vs in members.items()}
    chosen_classes = {r for r in members if r not in zero}
    searched: set[int] = set()
    for classes, forms in _components(rest):
        best = _search(classes, forms, weight)
        searched |= set(classes) - best
        chosen_classes -= set(classes) - best
    chosen = {v for r in chosen_classes for v in members[r]}
    for bad in _feasible(chosen, constraints):  # safety net: never return an infeasible set
        chosen -= _component_of(bad, constraints)
    forced = {v: zero[uf.find(v)] for v in range(n) if uf.find(v) in zero}
    left_out = {v for v in range(n) if v not in chosen and v not in forced}
    individually = _individually_si(n, constraints) - set(forced)
    groups, links = _groups(chosen, constraints)
    return Solution(chosen, individually, groups, forced, left_out, links)


def _component_of(seed: Constraint, constraints: list[Constraint]) -> set[int]:
    comp, frontier = set(seed.form), True
    while frontier:
        frontier = False
        for c in constraints:
            if comp & set(c.form) and not set(c.form) <= comp:
                comp |= set(c.form)
                frontier = True
    return comp


def _individually_si(n: int, constraints: list[Constraint]) -> set[int]:
    touched = {v for c in constraints for v, k in c.form.items() if k != 0}
    return set(range(n)) - touched


def _groups(chosen: set[int], constraints: list[Constraint]):
    uf = _UnionFind(max(chosen, default=-1) + 1)
    links: dict[int, list[Origin]] = {}
    for c in constraints:
        vs = [v for v in c.form if v in chosen]
        for v in vs[1:]:
            uf.union(vs[0], v)
        if len(vs) > 1:
            for v in vs:
                if c.origin not in links.setdefault(v, []):
                    links[v].append(c.origin)
    classes: dict[int, list[int]] = {}
    for v in sorted(chosen):
        classes.setdefault(uf.find(v), []).append(v)
    return sorted(classes.values(), key=lambda g: g[0]), links
