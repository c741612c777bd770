"""The constraint solver: propagation, merging, the maximal set, soundness."""
from __future__ import annotations

from fractions import Fraction

import pytest

from explr.audit import solve as solver
from explr.audit.transfer import Constraint, Origin

ORIGIN = Origin("mix", "operator.add", "m")


def c(**coeffs) -> Constraint:
    """c(a=1, b=-1) over variables named a..z -> indices 0..25."""
    return Constraint({ord(k) - ord("a"): Fraction(v) for k, v in coeffs.items()}, ORIGIN)


def feasible(chosen, constraints) -> bool:
    return all(sum(k for v, k in con.form.items() if v in chosen) == 0 for con in constraints)


def test_unconstrained_variables_are_individually_si_and_chosen():
    sol = solver.solve(2, [1, 1], [])
    assert sol.chosen == sol.individually == {0, 1}
    assert sol.groups == [[0], [1]]


def test_single_variable_and_same_sign_constraints_force_zero_with_their_origin():
    out = Origin("output", "output", "")
    sol = solver.solve(3, [1, 1, 1], [Constraint({0: Fraction(1)}, out), c(b=1, c=2)])
    assert sol.chosen == set()
    assert sol.forced[0] is out and set(sol.forced) == {0, 1, 2}


def test_equalities_merge_into_one_joint_group_and_zeros_propagate_through_them():
    sol = solver.solve(4, [1] * 4, [c(a=1, b=-1), c(b=2, c=-2), c(d=1, a=-1), Constraint({3: Fraction(1)}, ORIGIN)])
    assert sol.chosen == set()
    sol = solver.solve(3, [1] * 3, [c(a=1, b=-1), c(b=2, c=-2)])
    assert sol.chosen == {0, 1, 2} and sol.individually == set() and sol.groups == [[0, 1, 2]]


def test_unequal_magnitudes_force_both_to_zero():
    sol = solver.solve(2, [1, 1], [c(a=1, b=-2)])
    assert sol.chosen == set()


def test_preactivation_choice_prefers_more_elements_and_stays_feasible():
    # stream s = g + w (BN affine g, last conv w): either g or w joins s, not both
    cons = [c(g=1, w=1, s=-1)]
    numel = [1] * 26
    numel[ord("w") - 97], numel[ord("g") - 97] = 100, 4
    sol = solver.solve(26, numel, cons)
    assert {ord("s") - 97, ord("w") - 97} <= sol.chosen and ord("g") - 97 not in sol.chosen
    assert ord("g") - 97 in sol.left_out
    assert feasible(sol.chosen, cons)


def test_groups_can_be_scaled_independently():
    cons = [c(a=1, b=-1), c(c=1, d=1, e=-1), c(f=1, g=-1)]
    sol = solver.solve(7, [1, 1, 1, 5, 1, 2, 2], cons)
    for group in sol.groups:
        assert feasible(set(group), cons)


def test_exhausted_search_falls_back_to_zero_which_is_always_feasible(monkeypatch):
    monkeypatch.setattr(solver, "SEARCH_BUDGET", 0)
    cons = [c(a=1, b=1, c=-1)]
    sol = solver.solve(3, [1, 1, 1], cons)
    assert sol.chosen == set() and feasible(sol.chosen, cons)


@pytest.mark.parametrize("seed", range(25))
def test_random_systems_feasible_and_as_heavy_as_brute_force(seed):
    import random
    rng = random.Random(seed)
    n = 8
    cons = [Constraint({v: Fraction(rng.choice([-2, -1, 1, 2])) for v in rng.sample(range(n), rng.randint(1, 4))}, ORIGIN)
            for _ in range(rng.randint(1, 6))]
    numel = [rng.randint(1, 9) for _ in range(n)]
    sol = solver.solve(n, numel, cons)
    assert feasible(sol.chosen, cons)
    subsets = [{v for v in range(n) if m >> v & 1} for m in range(1 << n)]
    best = max(sum(numel[v] for v in s) for s in subsets if feasible(s, cons))
    assert sum(numel[v] for v in sol.chosen) == best
    alone = {v for v in range(n) if feasible({v}, cons)}
    assert sol.individually == alone


def test_a_zero_passed_on_by_a_sum_keeps_its_root_cause():
    out = Origin("output", "output", "")
    sol = solver.solve(3, [1, 1, 1], [c(a=1, b=1, c=-1), Constraint({0: Fraction(1)}, out),
                                      Constraint({2: Fraction(1)}, out)])
    assert sol.forced[1] is out  # b = c - a = 0 because of the output, not because of the sum
