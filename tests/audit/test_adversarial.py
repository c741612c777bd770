"""Adversarial models (tests/audit/adversarial/): no false scale-invariance claim reaches the final
report, the static analysis alone is already conservative where a capture can see the trick, and
truly SI parameters next to the trick are still found."""
from __future__ import annotations

import pytest
import torch

from explr.audit.api import audit, static_report
from explr.audit.numeric import ScalingProbe
from tests.audit.adversarial import all_cases
from tests.audit.expectations import EXPECTED, load_fixture, maximal_si

CASES = all_cases()
TOL = 1e-9


def false_claims(report, case) -> list[str]:
    return [name for name, kind in case.culprits.items()
            if report.by_name(name).individually_si or (kind == "si" and report.by_name(name).si)]


@pytest.fixture(scope="module", params=sorted(CASES))
def audited(request):
    case = CASES[request.param]
    return case, audit(case.build(), case.inputs())


def test_final_report_carries_no_false_claim(audited):
    case, report = audited
    assert false_claims(report, case) == [], (case.name, report.verification.detail)


def test_final_claims_hold_numerically_on_an_independent_probe(audited):
    case, report = audited
    probe = ScalingProbe(case.build(), case.inputs(), seed=11, eps_literals=[e.eps for e in report.hand_written_eps])
    for g in report.groups:
        if g.members:
            assert probe.scaling_error(g.members) <= TOL, (case.name, g.members)
    for p in report.parameters:
        if p.individually_si:
            assert probe.scaling_error([p.name]) <= TOL, (case.name, p.name)


def test_truly_si_neighbours_are_kept(audited):
    case, report = audited
    assert case.keeps <= set(report.si_names), case.name


def test_a_refuted_claim_is_withdrawn_with_its_reason_and_exp109():
    case = CASES["BranchFrozenAtCapture"]  # no capture can see this one: the confirmation must
    assert false_claims(static_report(case.build(), case.inputs(), model_name="m", meta=False), case)
    report = audit(case.build(), case.inputs())
    verdict = report.by_name("conv.weight")
    assert not verdict.si and verdict.reason.startswith("refuted numerically: scaling group 0 (conv.weight) by ")
    assert "changed the output by" in verdict.reason
    assert "EXP109" in {f.code for f in report.findings} and report.verification.status == "failed"
    assert report.to_json()["parameters"][0]["si"] is False and report.si_names == []


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.static))
def test_static_analysis_alone_is_conservative(name):
    case = CASES[name]
    assert false_claims(static_report(case.build(), case.inputs(), model_name=name, meta=False), case) == []


def test_forward_that_raises_on_a_scaled_copy_refutes():
    case = CASES["IndexGetitem"]  # scaled up, the index derived from p runs out of range
    probe = ScalingProbe(case.build(), case.inputs())
    assert probe.error({"p": 2.9}) == float("inf")


class _IntegerIndexParameter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1, bias=False)
        self.idx = torch.nn.Parameter(torch.tensor([2, 0, 1]), requires_grad=False)

    def forward(self, x):
        return torch.nn.functional.batch_norm(torch.index_select(self.conv(x), 1, self.idx), None, None, training=True)


def test_unaccounted_operand_is_forced_to_zero_and_says_so():
    report = static_report(_IntegerIndexParameter(), (torch.randn(4, 3, 5, 5),), model_name="m", meta=False)
    assert report.by_name("conv.weight").si
    idx = report.by_name("idx")
    assert not idx.si and idx.reason == "operand idx of index_select is not accounted for by its rule (degree forced to 0)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixtures_keep_their_real_si_through_the_full_audit(name):
    """Soundness costs no real SI: on every fixture the confirmation passes and withdraws nothing."""
    model, inputs = load_fixture(name)
    report = audit(model, inputs)
    numel = {p.name: p.numel for p in report.parameters}
    assert report.verification.status == ("skipped" if name == "no_norm" else "passed"), report.verification.detail
    assert sum(numel[n] for n in report.si_names) >= sum(numel[n] for n in maximal_si(EXPECTED[name]))
