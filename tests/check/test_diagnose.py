"""The cause table and the jump finder on hand-made evidence (no training needed)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from explr.check.data import Batch
from explr.check.diagnose import Evidence, diagnose, find_jump, scale_change
from explr.check.report import StepRecord
from tests.check.helpers import plan


def rec(step, dev, clipped=(False, False), zeros=None):
    return StepRecord(step, dev, 1.0, 1.0, {}, {}, None, None, clipped=clipped, zero_grad_fraction=zeros)


class Normalized(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


PROBE = Batch((torch.randn(6, 3, 6, 6, generator=torch.Generator().manual_seed(0)),), torch.zeros(6, dtype=torch.long))


def evidence(records, **changes):
    return Evidence(plan(**changes.pop("plan", {})), records, changes.pop("tolerance", 1e-6), changes.pop("si", ["conv.weight"]),
                    changes.pop("audit_si", None), Normalized().double(), PROBE, **changes)


def test_find_jump_reports_the_first_step_rising_a_hundredfold():
    records = [rec(1, 1e-15), rec(2, 2e-15), rec(3, 5e-9), rec(4, 1e-3)]
    assert find_jump(records, floor=1e-10) == (4, 5e-9, 1e-3)
    assert find_jump(records, floor=1e-14) == (3, 2e-15, 5e-9)
    assert find_jump([rec(1, 1e-15)], floor=1e-10) is None


def test_no_cause_matches_a_clean_setup_and_the_text_says_so():
    diagnosis = diagnose(evidence([rec(1, 1e-15), rec(2, 1e-2)]))
    assert diagnosis.causes == () and diagnosis.first_exceeded_step == 2
    assert any("none of the known causes" in line for line in diagnosis.lines())


def test_clipping_counts_only_when_it_was_active_before_the_deviation():
    inactive = evidence([rec(1, 1e-15), rec(2, 1e-2)], plan={"grad_clip_norm": 1.0})
    assert diagnose(inactive).causes == ()
    active = evidence([rec(1, 1e-15, clipped=(True, False)), rec(2, 1e-2)], plan={"grad_clip_norm": 1.0})
    assert [c for c, _ in diagnose(active).causes] == ["clipping"]


def test_underflow_needs_more_zero_gradients_in_the_converted_run():
    same = evidence([rec(1, 1e-2, zeros=(0.1, 0.1))])
    worse = evidence([rec(1, 1e-2, zeros=(0.01, 0.3))])
    assert diagnose(same).causes == ()
    assert [c for c, _ in diagnose(worse).causes] == ["underflow"] and "30.0%" in diagnose(worse).causes[0][1]


def test_wrong_si_names_the_parameter_outside_the_proven_set():
    ev = evidence([rec(1, 1e-2)], si=["conv.weight", "fc.weight"], audit_si={"conv.weight"})
    causes = dict(diagnose(ev).causes)
    assert "fc.weight" in causes["wrong_si"] and "conv.weight" not in causes["wrong_si"]
    loo = evidence([rec(1, 1e-2)], si=["conv.weight", "fc.weight"])  # no audit: leave-one-out finds it too
    assert "(fc.weight)" in dict(diagnose(loo).causes)["wrong_si"]


def test_scale_change_separates_invariant_from_non_invariant_sets():
    model = Normalized().double()
    assert scale_change(model, PROBE, ["conv.weight"]) < 1e-12
    assert scale_change(model, PROBE, ["fc.weight"]) > 1e-3


def test_nesterov_and_non_sgd_are_named_from_the_plan():
    assert [c for c, _ in diagnose(evidence([rec(1, 1e-2)], plan={"nesterov": True})).causes] == ["nesterov"]
    assert [c for c, _ in diagnose(evidence([rec(1, 1e-2)], plan={"optimizer": "adamw"})).causes] == ["non_sgd"]


def test_a_noise_floor_too_large_to_judge_is_inconclusive_and_alone():
    noisy = [StepRecord(1, 0.3, 1.0, 1.0, {}, {}, None, None, noise=0.2, zero_grad_fraction=(0.0, 0.5))]
    diagnosis = diagnose(evidence(noisy, tolerance=2.0, plan={"nesterov": True}))
    assert [c for c, _ in diagnosis.causes] == ["inconclusive"] and "2.0e-01" in diagnosis.causes[0][1]


@pytest.mark.parametrize("dtype, autocast, fix, why", [
    (torch.float32, torch.bfloat16, "drop --amp bfloat16 and check in float32 (--dtype float32) or float64",
     "autocast runs matmuls and convolutions in bfloat16 (8 significant bits: a relative rounding step of 8e-03)"),
    (torch.float32, torch.float16, "drop --amp float16 and check in float32", "float16 (11 significant bits"),
    (torch.bfloat16, None, "use --dtype float64 or --dtype float32", "the runs compute in bfloat16 (8 significant"),
    (torch.float32, None, "use --dtype float64:", "the runs compute in float32 (24 significant bits"),
    (torch.float64, None, "use --device cpu", "the runs compute in float64 (53 significant bits"),
])
def test_too_noisy_advice_names_the_flags_that_resolve_it_and_the_rounding_behind_it(dtype, autocast, fix, why):
    noisy = [StepRecord(1, 0.3, 1.0, 1.0, {}, {}, None, None, noise=0.2)]
    advice = dict(diagnose(evidence(noisy, tolerance=2.0, dtype=dtype, autocast=autocast)).causes)["inconclusive"]
    assert fix in advice and why in advice
    assert "rerun with --dtype" not in advice  # the old advice, useless under --amp (already float32)


def test_a_deviation_only_after_the_twin_jumped_is_inconclusive_and_says_why():
    flipped = [rec(1, 1e-6), rec(2, 2e-6), rec(3, 3e-3)]
    diagnosis = diagnose(evidence(flipped, tolerance=4e-5, plan={"nesterov": True}, noise_jump=(3, 5e-2),
                                  verdict="inconclusive", dtype=torch.float32))
    assert [c for c, _ in diagnosis.causes] == ["inconclusive"]
    assert "twin jumped at step 3 to 5.0e-02" in diagnosis.causes[0][1] and "3.0e-03" in diagnosis.causes[0][1]
    assert "another --seed, or use --dtype float64" in diagnosis.causes[0][1]
    under_amp = diagnose(evidence(flipped, tolerance=4e-5, noise_jump=(3, 5e-2), verdict="inconclusive",
                                  dtype=torch.float32, autocast=torch.bfloat16))
    assert "another --seed, or drop --amp bfloat16" in under_amp.causes[0][1]  # --dtype float64 refuses --amp
    failed = diagnose(evidence(flipped, tolerance=4e-5, plan={"nesterov": True}, noise_jump=(3, 5e-2)))
    assert [c for c, _ in failed.causes] == ["nesterov"]
