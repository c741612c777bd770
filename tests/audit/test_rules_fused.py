"""Fused arithmetic rules: addcmul(input, t1, t2, value) = input + value·t1·t2 (timm's ResMLP Affine)."""
from __future__ import annotations

import torch
from torch import nn

from explr.audit.api import audit


class Affine(nn.Module):
    """timm.models.mlp_mixer.Affine: β + α·x with per-channel α, β."""

    def __init__(self, dim):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(dim) + 0.1 * torch.randn(dim))
        self.beta = nn.Parameter(0.1 * torch.randn(dim))

    def forward(self, x):
        return torch.addcmul(self.beta, self.alpha, x)


class AffineNet(nn.Module):
    def __init__(self, value=1.0):
        super().__init__()
        self.ln0 = nn.LayerNorm(6, elementwise_affine=False)
        self.affine = Affine(6)
        self.fc = nn.Linear(6, 6, bias=False)
        self.ln1 = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)
        self.value = value

    def forward(self, x):
        y = self.affine(self.ln0(x)) if self.value == 1.0 else \
            self.affine.beta.addcmul(self.affine.alpha, self.ln0(x), value=self.value)
        return self.head(self.ln1(self.fc(y)))


X = (torch.randn(5, 6, generator=torch.Generator().manual_seed(0)),)


def _verdicts(report):
    return {p.name: (p.si, p.individually_si) for p in report.parameters}


def test_addcmul_is_a_product_inside_a_sum():
    report = audit(AffineNet(), X)
    assert _verdicts(report) == {
        "affine.alpha": (True, False), "affine.beta": (True, False),  # β + α·n: SI only together
        "fc.weight": (True, True), "ln1.weight": (False, False), "ln1.bias": (False, False),
        "head.weight": (False, False), "head.bias": (False, False)}
    assert report.unknown_ops == [] and report.verification.status == "passed"


def test_addcmul_method_form_with_a_scalar_value():
    report = audit(AffineNet(value=0.5), X)
    assert set(report.si_names) == {"affine.alpha", "affine.beta", "fc.weight"}
    assert report.verification.status == "passed"


class ScaledProduct(nn.Module):
    """β + α·fc0(x) -> LayerNorm: β must match the product's degree x_α + x_fc0, so α and fc0 cannot both join."""

    def __init__(self):
        super().__init__()
        self.fc0 = nn.Linear(6, 6, bias=False)
        self.affine = Affine(6)
        self.ln = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.ln(self.affine(self.fc0(x))))


def test_addcmul_constrains_the_sum_to_the_product_degree():
    report = audit(ScaledProduct(), X)
    si = set(report.si_names)
    assert si == {"fc0.weight", "affine.beta"}  # fc0 (36 elements) rather than α (6) carries β's degree
    assert not report.by_name("affine.alpha").si and report.verification.status == "passed"
