"""Every fixture: the static verdicts (individual and group) agree with the numeric scaling test.

The numeric side is explr.audit.numeric.ScalingProbe (float64, train mode, perturbed parameters,
normalization eps ~ 0). The static side never sees it: only `static_report` is used here.
"""
from __future__ import annotations

import random

import pytest

from explr.audit.api import static_report
from explr.audit.numeric import ScalingProbe, draw_factor
from tests.audit.expectations import EXPECTED, load_fixture, maximal_si

TOL = 1e-9
COUNTER = (2.9,)  # one factor that breaks invariance suffices to show "not SI"
ONE_FACTOR = (0.37,)  # per-parameter confirmations; the group test adds random factors


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def case(request):
    model, inputs = load_fixture(request.param)
    report = static_report(model, inputs, model_name=request.param, meta=False)
    return request.param, report, ScalingProbe(model, inputs, seed=0)


def test_every_parameter_has_a_verdict_in_order(case):
    name, report, probe = case
    assert [p.name for p in report.parameters] == list(probe.params), name


def test_groups_are_si_under_independent_factors(case):
    name, report, probe = case
    rng = random.Random(3)
    for _ in range(2):
        factors = {p: c for g in report.groups for c in [draw_factor(rng)] for p in g.members}
        assert probe.error(factors) <= TOL, name


def test_individually_si_parameters_are_si_alone(case):
    name, report, probe = case
    for p in report.parameters:
        if p.individually_si:
            assert probe.scaling_error([p.name], ONE_FACTOR) <= TOL, (name, p.name)


def test_joint_only_members_are_not_si_alone(case):
    name, report, probe = case
    for p in report.parameters:
        if p.si and not p.individually_si:
            assert not probe.is_invariant([p.name], COUNTER), (name, p.name, "SI alone, claimed only jointly")


def test_non_si_parameters_cannot_join_the_si_set(case):
    name, report, probe = case
    si = set(report.si_names)
    for p in report.parameters:
        if not p.si:
            assert not probe.is_invariant([p.name], COUNTER), (name, p.name, "SI alone, claimed not SI")
            assert not probe.is_invariant(si | {p.name}, COUNTER), (name, p.name, "could join the SI set")


def test_static_set_is_at_least_the_hand_derived_maximal_set(case):
    """The solver maximizes elements: never fewer than the set derived by hand in expectations.py."""
    name, report, probe = case
    exp = EXPECTED[name]
    numel = {p.name: p.numel for p in report.parameters}
    assert sum(numel[n] for n in report.si_names) >= sum(numel[n] for n in maximal_si(exp)), name
    assert {p.name for p in report.parameters if p.individually_si} == set(exp["individually_si"]), name
    assert set(report.inert) == set(exp.get("inert", ())), name
    assert {n for o in report.opaque for n in o.params} == set(exp.get("opaque", ())), name
