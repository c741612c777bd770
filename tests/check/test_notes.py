"""explr.check.notes: what a check states beside its verdict (no training needed)."""
from __future__ import annotations

from torch import nn

from explr.audit_report import AuditReport, Normalizer
from explr.check.api import AMPS
from explr.check.notes import amp_notes, config_notes, tighten_eps
from explr.check.setups import EXACT_EPS, original_run
from explr.configs.convert import analysis_of
from tests.check.helpers import plan


class Standardized(nn.Module):
    """A BatchNorm, a LayerNorm, and a custom normalization only the audit knows about."""

    def __init__(self):
        super().__init__()
        self.bn, self.ln, self.custom, self.fc = nn.BatchNorm1d(4), nn.LayerNorm(4), nn.Identity(), nn.Linear(4, 2)
        self.custom.eps = 1e-5

    def forward(self, x):
        return self.fc(self.ln(self.bn(x)))


def test_the_eps_of_every_normalization_is_tightened_and_said_so():
    model = Standardized()
    note = tighten_eps(model, ["fc.weight"], keep_eps=False)  # names as given: the built-in norms only
    assert (model.bn.eps, model.ln.eps, model.custom.eps) == (EXACT_EPS, EXACT_EPS, 1e-5)
    assert len(note) == 1 and "(2 layers)" in note[0] and "--keep-eps" in note[0]


def test_the_audits_own_normalizers_are_tightened_too():
    model = Standardized()
    custom = Normalizer("custom", "weight_standardization", 1e-5, ())
    report = AuditReport("Standardized", parameters=[], groups=[], normalizers=[custom])
    assert "(3 layers)" in tighten_eps(model, report, keep_eps=False)[0] and model.custom.eps == EXACT_EPS


def test_kept_eps_is_left_alone_and_said_so():
    model = Standardized()
    assert "eps kept" in tighten_eps(model, ["fc.weight"], keep_eps=True)[0] and model.bn.eps == 1e-5


def test_config_notes_put_what_is_not_exact_first_then_findings_then_the_horizon_a_full_run_reaches():
    fp16 = plan(precision="16-true")  # 160 CIFAR epochs: converted SI gradients underflow float16 at epoch ~38
    notes = config_notes(fp16, ["nesterov momentum"], analysis_of(fp16))
    assert notes[0] == "not exact: nesterov momentum" and "EXP205" in notes[1]
    assert notes[-1].startswith("the full run (precision 16-true): converted SI gradients underflow float16")
    assert "from iteration 14,789 (epoch 38)" in notes[-1] and "renormalize" in notes[-1]
    assert config_notes(plan(), [], analysis_of(plan())) == []  # float32, exact, within range: nothing to say


def test_amp_notes_count_the_steps_each_grad_scaler_skipped():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    runs = [original_run(name, model, plan(), plan().lr, amp) for name, amp in
            (("original", AMPS["float16"]), ("perturbed", AMPS["float16"]), ("bf16", AMPS["bfloat16"]))]
    runs[0].skipped = 2
    assert amp_notes(runs) == ["GradScaler skipped steps (overflow): original 2, perturbed 0"]
    assert amp_notes(runs[2:]) == []  # bf16 autocast has no GradScaler: nothing is skipped
