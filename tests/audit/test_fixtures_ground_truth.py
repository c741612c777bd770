"""Numeric ground truth: every fixture's expected verdicts (tests/audit/expectations.py, derived from
docs/theory.md §1, §2) hold on real tensors — float64, train mode, perturbed parameters, eps ~ 0."""
from __future__ import annotations

import random

import pytest

from explr.audit.numeric import ScalingProbe, draw_factor
from tests.audit.expectations import EXPECTED, groups, load_fixture, maximal_si

NOT_SI_FACTOR = (2.9,)  # one counterexample suffices to show a set is not SI



@pytest.fixture(scope="module", params=sorted(EXPECTED))
def case(request):
    model, inputs = load_fixture(request.param)
    return request.param, EXPECTED[request.param], ScalingProbe(model, inputs, seed=0)


def test_expectations_partition_the_parameters(case):
    name, exp, probe = case
    parts = [set(exp["individually_si"]), *map(set, exp["jointly_si"]), set(exp["not_si"])]
    assert sorted(n for part in parts for n in part) == sorted(probe.params), name


def test_individually_si_parameters_are_si_alone(case):
    name, exp, probe = case
    errors = {p: probe.scaling_error([p]) for p in exp["individually_si"]}
    assert max(errors.values(), default=0.0) <= 1e-9, (name, errors)


def test_joint_groups_are_si_together_but_no_member_alone(case):
    name, exp, probe = case
    for group in exp["jointly_si"]:
        assert probe.is_invariant(group), (name, sorted(group))
        alone_si = [p for p in group if probe.is_invariant([p], NOT_SI_FACTOR)]
        assert alone_si == [], (name, "SI alone although expected only jointly", alone_si)


def test_groups_survive_independent_factors(case):
    name, exp, probe = case
    rng = random.Random(7)
    for _ in range(2):
        factors = {p: c for g in groups(exp) for c in [draw_factor(rng)] for p in g}
        assert probe.error(factors) <= 1e-9, name


def test_not_si_parameters_are_not_si_alone_nor_with_the_maximal_set(case):
    name, exp, probe = case
    si = maximal_si(exp)
    wrongly_si = [p for p in sorted(exp["not_si"])
                  if probe.is_invariant([p], NOT_SI_FACTOR) or probe.is_invariant(si | {p}, NOT_SI_FACTOR)]
    assert wrongly_si == [], name


def test_inert_parameters_have_no_effect_and_others_do(case):
    name, exp, probe = case
    inert = set(exp.get("inert", ()))
    for p in sorted(exp["individually_si"]):
        assert probe.has_no_effect(p) == (p in inert), (name, p)


def test_alternative_maximal_choices_are_si(case):
    name, exp, probe = case
    for alt in exp.get("alternatives", ()):
        assert probe.is_invariant(alt), (name, sorted(alt))
        # ... but not combined with what they replace: the maximal set is a choice
        assert not probe.is_invariant(alt | maximal_si(exp), NOT_SI_FACTOR), (name, sorted(alt))
