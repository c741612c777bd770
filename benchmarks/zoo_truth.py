"""Numeric ground truth for the zoo table, computed without explr: which parameter tensors of a model
are scale-invariant (SI) on their own, and which belong to some jointly SI set.

Method (float64, train mode, every normalization eps set to 1e-30, parameters perturbed so that no
zero-initialized bias or unit gamma makes a test pass trivially):

* v_i = d/dc f(θ with θ_i scaled by 1+c) at c = 0 is the scaling derivative of tensor i. A set S is
  SI to first order iff sum_{i in S} v_i = 0: the SI sets are the 0/1 vectors of null(V).
* V has one column per tensor and one row per output element. We never form it: its rows are sampled
  as u^T V for random cotangents u, one backward pass each (u^T V_i = <grad_i <u, f>, θ_i>), until the
  sampled rank stops growing; the null space of the samples is then null(V) (generic u).
* Tensor i is individually SI when its column vanishes (below 1e-9 of each sampled row's largest
  entry). For the rest, the null space is brought to reduced row echelon form: a 0/1 null vector has
  its pivot entries as coefficients, so a depth-first search over 0/1 coefficients per connected
  component finds every 0/1 null vector (a component with more than MAX_SOLUTIONS is reported).
* Every first-order answer is then checked by finite scaling: all individually-SI tensors and all
  disjoint SI sets, each by its own random factor in [0.3, 3], in two draws; a failing draw falls
  back to one set at a time, and a set that fails on its own is dropped (counted as not SI).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

VERSION = 6  # bump when the method changes: cached truths of another version are recomputed
TINY_EPS = 1e-30
# Columns are compared after each sampled row is divided by its largest entry: a tensor whose entries
# stay below ZERO_REL in every row has no first-order effect (float64 roundoff: ~1e-15). (Sampling in
# float32 was tried: its roundoff, ~1e-7, overlaps genuinely small effects in deep transformers.)
ZERO_REL = 1e-9
NULL_TOL = 1e-9  # relative singular value (columns scaled to max 1) below this: a null direction
ENTRY_TOL = 1e-6  # a null-vector entry this close to 0 or 1 is 0 or 1
FINITE_TOL = 1e-9  # relative output change allowed by the float64 finite scaling check
MAX_SOLUTIONS = 1 << 14  # 0/1 vectors per component before giving up on enumerating them


@dataclass
class Truth:
    names: list[str]
    numel: dict[str, int]
    individual: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)  # in some SI set (individual ones included)
    sets: list[frozenset[str]] = field(default_factory=list)  # every 0/1 null vector found (confirmed)
    components: list[set[str]] = field(default_factory=list)  # tensors whose SI sets interact
    notes: list[str] = field(default_factory=list)
    backward_passes: int = 0
    undetermined: set[str] = field(default_factory=set)  # in a component too large to enumerate

    def to_json(self) -> dict:
        return {"names": self.names, "numel": self.numel, "individual": sorted(self.individual),
                "members": sorted(self.members), "sets": [sorted(s) for s in self.sets],
                "components": [sorted(c) for c in self.components], "notes": self.notes,
                "backward_passes": self.backward_passes, "undetermined": sorted(self.undetermined)}

    @classmethod
    def from_json(cls, doc: dict) -> "Truth":
        return cls(doc["names"], doc["numel"], set(doc["individual"]), set(doc["members"]),
                   [frozenset(s) for s in doc["sets"]], [set(c) for c in doc["components"]],
                   doc["notes"], doc["backward_passes"], set(doc.get("undetermined", ())))


class Probe:
    """The model as a float64 function of its parameters, with fixed randomness."""

    def __init__(self, model: nn.Module, inputs: tuple, seed: int = 0):
        self.model = copy.deepcopy(model).double().train()
        self.inputs = tuple(x.double() if x.is_floating_point() else x for x in inputs)
        self.seed = seed
        for m in self.model.modules():
            if isinstance(getattr(m, "eps", None), float):
                m.eps = TINY_EPS
        self.params = dict(self.model.named_parameters())
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in self.params.values():
                rms = p.pow(2).mean().sqrt().item()
                scale = rms if rms > 1e-3 else 1.0  # zero biases, layer scales of 1e-6: make them matter
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3 * scale)
            self.base = self.forward()
        self.fast = copy.deepcopy(self.model)  # the differentiated copy (the float64 model stays untouched)
        self.fast_inputs = self.inputs

    def forward(self) -> torch.Tensor:
        torch.manual_seed(self.seed)  # dropout / stochastic depth draw the same masks every pass
        out = self.model(*self.inputs)
        return _flat_output(out)

    def scaled_error(self, factors: dict[str, float]) -> float:
        """Relative output change when each named tensor is multiplied by its factor."""
        with torch.no_grad():
            saved = {n: self.params[n].clone() for n in factors}
            for n, c in factors.items():
                self.params[n].mul_(c)
            try:
                out = self.forward()
            finally:
                for n, t in saved.items():
                    self.params[n].copy_(t)
        return ((out - self.base).norm() / self.base.norm().clamp_min(1e-300)).item()


def _flat_output(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.reshape(-1)
    if isinstance(out, (tuple, list)):
        return torch.cat([_flat_output(o) for o in out])
    if isinstance(out, dict):
        return torch.cat([_flat_output(o) for o in out.values()])
    raise TypeError(f"cannot compare model outputs of type {type(out).__name__}")


def scaling_derivatives(probe: Probe, chunk: int = 6, margin: int = 3) -> torch.Tensor:
    """Rows u^T V (one per random cotangent), each divided by its largest entry, until the sampled rank
    saturates."""
    params = list(probe.fast.parameters())
    torch.manual_seed(probe.seed)
    out = _flat_output(probe.fast(*probe.fast_inputs))
    gen = torch.Generator().manual_seed(probe.seed + 2)
    rows: list[torch.Tensor] = []
    while True:
        us = torch.randn((chunk, *out.shape), generator=gen, dtype=out.dtype)
        rows += [row / row.abs().max().clamp_min(1e-300) for row in _cotangent_rows(out, params, us)]
        sample = torch.stack(rows)
        if _rank(sample) <= len(rows) - margin or len(rows) >= len(params) + margin:
            return sample


def column_magnitudes(rows: torch.Tensor) -> torch.Tensor:
    return rows.abs().amax(0)


def _cotangent_rows(out: torch.Tensor, params: list[torch.Tensor], us: torch.Tensor) -> list[torch.Tensor]:
    """Per cotangent u: <grad_i <u, out>, θ_i> for every tensor i; the backward passes batched where
    autograd can (is_grads_batched), else one by one."""
    try:
        grads = torch.autograd.grad(out, params, us, retain_graph=True, allow_unused=True, is_grads_batched=True)
    except RuntimeError:
        per_u = [torch.autograd.grad(out, params, u, retain_graph=True, allow_unused=True) for u in us]
        grads = [None if g[0] is None else torch.stack(g) for g in zip(*per_u)]
    k = us.shape[0]
    dots = torch.zeros(k, len(params), dtype=torch.float64)
    for i, (g, p) in enumerate(zip(grads, params)):
        if g is not None:
            dots[:, i] = g.reshape(k, -1).double() @ p.detach().reshape(-1).double()
    return list(dots)


def _rank(rows: torch.Tensor) -> int:
    mags = column_magnitudes(rows)
    live = mags > ZERO_REL
    if not live.any():
        return 0
    s = torch.linalg.svdvals(rows[:, live] / mags[live])
    return int((s > NULL_TOL * s[0]).sum())


def zero_one_null_vectors(rows: torch.Tensor, scales: torch.Tensor):
    """All 0/1 vectors x with rows @ x = 0, per connected component (the SVD sees the columns divided
    by `scales`; its null vectors y are mapped back, x = y / scales). Returns (supports of the 0/1
    vectors, components, notes, columns of the components too large to enumerate)."""
    _, s, vh = torch.linalg.svd(rows / scales, full_matrices=True)
    rank = int((s > NULL_TOL * s[0]).sum()) if s.numel() and s[0] > 0 else 0
    near = int(((s > NULL_TOL * s[0] / 10) & (s < NULL_TOL * s[0] * 10)).sum()) if s.numel() else 0
    notes = [f"{near} singular value(s) within 10x of the null threshold"] if near else []
    basis = vh[rank:] / scales  # null space, one vector per row
    if basis.shape[0] == 0:
        return [], [], notes, set()
    rref = _rref(basis)
    support = [set(torch.nonzero(r.abs() > ENTRY_TOL).flatten().tolist()) for r in rref]
    found, components, undetermined = [], [], set()
    for comp_rows in _connected(support):
        cols = sorted(set().union(*(support[r] for r in comp_rows)))
        components.append(set(cols))
        solutions = _zero_one_combinations(rref[comp_rows][:, cols])
        if solutions is None:
            notes.append(f"{len(comp_rows)} interacting null directions over {len(cols)} tensors: more than "
                         f"{MAX_SOLUTIONS} SI sets, not enumerated")
            components[-1] = set()  # reported as undetermined instead
            undetermined.update(cols)
            continue
        found += [tuple(cols[j] for j in sol) for sol in solutions]
    return found, components, notes, undetermined


def _zero_one_combinations(rows: torch.Tensor) -> list[tuple[int, ...]] | None:
    """Every nonzero 0/1 vector x = a @ rows with a in {0,1}^k (rows in reduced row echelon form: the
    pivot entries of x are a), by depth-first search: a branch stops as soon as some entry can no longer
    end at 0 or 1 whatever the remaining coefficients. None when there are more than MAX_SOLUTIONS."""
    k = rows.shape[0]
    pos, neg = rows.clamp_min(0), rows.clamp_max(0)
    rest_hi = torch.cat([pos.flip(0).cumsum(0).flip(0), torch.zeros(1, rows.shape[1], dtype=rows.dtype)])
    rest_lo = torch.cat([neg.flip(0).cumsum(0).flip(0), torch.zeros(1, rows.shape[1], dtype=rows.dtype)])
    out: list[tuple[int, ...]] = []

    def feasible(partial: torch.Tensor, j: int) -> bool:
        lo, hi = partial + rest_lo[j], partial + rest_hi[j]
        can0 = (lo <= ENTRY_TOL) & (hi >= -ENTRY_TOL)
        can1 = (lo <= 1 + ENTRY_TOL) & (hi >= 1 - ENTRY_TOL)
        return bool((can0 | can1).all())

    def search(j: int, partial: torch.Tensor) -> bool:
        if j == k:
            on = (partial - 1).abs() < ENTRY_TOL
            if on.any() and bool(((partial.abs() < ENTRY_TOL) | on).all()):
                out.append(tuple(torch.nonzero(on).flatten().tolist()))
            return len(out) <= MAX_SOLUTIONS
        for a in (0.0, 1.0):
            nxt = partial + a * rows[j]
            if feasible(nxt, j + 1) and not search(j + 1, nxt):
                return False
        return True

    return out if search(0, torch.zeros(rows.shape[1], dtype=rows.dtype)) else None


def _rref(a: torch.Tensor) -> torch.Tensor:
    a = a / a.abs().amax(1, keepdim=True)
    lead = 0
    for r in range(a.shape[0]):
        while lead < a.shape[1] and a[r:, lead].abs().max() < ENTRY_TOL:  # roundoff, not a pivot
            lead += 1
        if lead == a.shape[1]:
            return a[:r]
        pivot = r + int(a[r:, lead].abs().argmax())
        a[[r, pivot]] = a[[pivot, r]]
        a[r] = a[r] / a[r, lead].item()  # not in place: a[r, lead] is a view of a[r]
        others = torch.arange(a.shape[0]) != r
        a[others] -= a[others, lead:lead + 1] * a[r]
        lead += 1
    return a


def _connected(support: list[set[int]]) -> list[list[int]]:
    """Group basis rows whose supports overlap (transitively)."""
    parent = list(range(len(support)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for r, cols in enumerate(support):
        for c in cols:
            if c in owner:
                parent[root(r)] = root(owner[c])
            owner[c] = r
    comps: dict[int, list[int]] = {}
    for r in range(len(support)):
        comps.setdefault(root(r), []).append(r)
    return list(comps.values())


def numeric_truth(model: nn.Module, inputs: tuple, seed: int = 0) -> Truth:
    probe = Probe(model, inputs, seed)
    names = list(probe.params)
    truth = Truth(names, {n: p.numel() for n, p in probe.params.items()})
    rows = scaling_derivatives(probe)
    truth.backward_passes = rows.shape[0]
    mags = column_magnitudes(rows)
    individual = [i for i in range(len(names)) if mags[i] <= ZERO_REL]
    rest = [i for i in range(len(names)) if i not in individual]
    vectors, components, truth.notes, undetermined = \
        zero_one_null_vectors(rows[:, rest], mags[rest]) if rest else ([], [], [], set())
    truth.undetermined = {names[rest[j]] for j in undetermined}
    ambiguous = int(((mags > ZERO_REL / 30) & (mags < ZERO_REL * 30)).sum())
    if ambiguous:
        truth.notes.append(f"{ambiguous} tensor(s) with a first-order effect within 30x of the zero threshold")
    sets = [frozenset(names[rest[j]] for j in v) for v in vectors]
    truth.components = [{names[rest[j]] for j in comp} for comp in components]
    _confirm(probe, truth, {names[i] for i in individual}, sets)
    return truth


def _confirm(probe: Probe, truth: Truth, individual: set[str], sets: list[frozenset[str]]) -> None:
    """Finite scaling: everything at once by independent factors (two draws), else one at a time."""
    minimal = [s for s in sets if not any(o < s for o in sets)]
    disjoint = [s for s in minimal if all(s == o or not (s & o) for o in minimal)]
    gen = torch.Generator().manual_seed(probe.seed + 3)

    def factor() -> float:
        return float(0.3 + 2.7 * torch.rand((), generator=gen, dtype=torch.float64))

    def joint_ok() -> bool:
        units = [{n} for n in individual] + [set(s) for s in disjoint]
        for _ in range(2):
            factors = {n: c for unit in units for c in [factor()] for n in unit}
            if factors and probe.scaled_error(factors) > FINITE_TOL:
                return False
        return True

    def alone_ok(unit) -> bool:
        return all(probe.scaled_error({n: c for n in unit}) <= FINITE_TOL for c in (factor(), factor()))

    if not joint_ok():
        truth.notes.append("joint finite check failed: checked one set at a time")
        individual = {n for n in individual if alone_ok({n})}
        disjoint = [s for s in disjoint if alone_ok(s)]
    confirmed = set(disjoint) | {s for s in minimal if s not in disjoint and alone_ok(s)}
    if len(confirmed) < len(minimal):
        truth.notes.append(f"{len(minimal) - len(confirmed)} first-order SI set(s) failed finite scaling: not counted")
    # every 0/1 null vector is a disjoint union of minimal ones: keep those built from confirmed ones
    truth.sets = [s for s in sets if set().union(*(m for m in confirmed if m <= s)) == s]
    truth.individual = individual
    truth.members = individual | {n for s in confirmed for n in s}
