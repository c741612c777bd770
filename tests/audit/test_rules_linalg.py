"""Linear and conv act term by term: a term that stays constant is kept apart, so a later norm can
cancel it (a projection BN's beta before a 1x1 conv -> BN is SI alone), and never where zero
padding, a transposed conv or a channel block makes the image vary. Every static label is checked
against the numeric scaling probe (float64, train mode, perturbed parameters, eps ~ 0)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explr.audit.api import static_report
from explr.audit.forms import Deg, Term
from explr.audit.numeric import ScalingProbe
from explr.audit.transfer import Ctx, Origin

TOL = 1e-9


class ProjectionThenConv(nn.Module):
    """conv -> BN (no activation: a projection BN) -> conv2 -> BN -> ReLU -> head."""

    def __init__(self, conv2: nn.Module):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = conv2
        self.bn2 = nn.BatchNorm2d(conv2.out_channels)
        self.fc = nn.Linear(conv2.out_channels, 2)

    def forward(self, x):
        return self.fc(F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x))))).mean((2, 3)))


X = (torch.randn(4, 3, 9, 9, dtype=torch.float64),)


def labels(model: nn.Module, inputs=X) -> tuple[dict, ScalingProbe]:
    report = static_report(model.double(), inputs, model_name="m", meta=False)
    return {p.name: p for p in report.parameters}, ScalingProbe(model, inputs, seed=0)


def assert_labels_hold(v: dict, probe: ScalingProbe, precise: bool = True) -> None:
    """Soundness: every tensor labelled SI alone is SI alone; and (`precise`) every one labelled
    only jointly is not (a conservative rule may miss that)."""
    for name, p in v.items():
        error = probe.scaling_error([name], (0.37, 2.9))
        if p.individually_si:
            assert error <= TOL, (name, error)
        elif p.si and precise:
            assert error > TOL, (name, "SI alone, labelled only jointly")


@pytest.mark.parametrize("conv2", [
    nn.Conv2d(4, 4, 1, bias=False),
    nn.Conv2d(4, 4, 3, bias=False),  # no padding: a constant stays constant under any kernel
    nn.Conv2d(4, 4, 3, stride=2, dilation=2, bias=False),
    nn.Conv2d(4, 6, 3, groups=2, bias=False),
    nn.Conv2d(4, 4, 3, padding="valid", bias=False),
], ids=["1x1", "3x3-unpadded", "stride-dilation", "groups", "valid"])
def test_projection_bn_before_an_unpadded_conv_and_bn_is_si_alone(conv2):
    v, probe = labels(ProjectionThenConv(conv2))
    assert v["bn1.weight"].individually_si and v["bn1.bias"].individually_si
    assert v["bn1.bias"].reason == "inert: its constant term stays constant through a linear map and is cancelled by bn2"
    assert v["bn1.weight"].reason == "normalized by bn2"
    assert_labels_hold(v, probe)


@pytest.mark.parametrize("conv2", [
    nn.Conv2d(4, 4, 3, padding=1, bias=False),  # zero padding: conv(constant) is smaller at the borders
    nn.Conv2d(4, 4, 1, padding=1, bias=False),  # a 1x1 kernel too: its padded border reads only zeros
    nn.Conv2d(4, 4, 3, padding="same", bias=False),
    nn.Conv2d(4, 4, 3, padding=(0, 1), bias=False),  # one padded dim is enough
    nn.Conv2d(4, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False),
    nn.ConvTranspose2d(4, 4, 1, stride=2, bias=False),  # a transposed conv leaves gaps between taps
    nn.ConvTranspose2d(4, 4, 3, bias=False),  # and sums fewer taps at the borders
], ids=["3x3-padded", "1x1-padded", "same", "one-dim-padded", "padded-strided-grouped", "transposed-stride",
        "transposed-3x3"])
def test_zero_padding_or_a_transposed_conv_keeps_beta_only_jointly(conv2):
    v, probe = labels(ProjectionThenConv(conv2))
    assert v["bn1.bias"].si and not v["bn1.bias"].individually_si
    assert probe.scaling_error(["bn1.bias"], (2.9,)) > 1e-6  # and the math agrees: it is not SI alone
    assert_labels_hold(v, probe)


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
def test_a_repeating_padding_mode_pads_a_constant_with_itself(mode):
    """nn.Conv2d(padding_mode=...) pads with F.pad first, then convolves unpadded: constants survive."""
    v, probe = labels(ProjectionThenConv(nn.Conv2d(4, 4, 3, padding=1, padding_mode=mode, bias=False)))
    assert v["bn1.bias"].individually_si and v["bn1.weight"].individually_si
    assert_labels_hold(v, probe)


class ZeroPadThenConv(ProjectionThenConv):
    def forward(self, x):
        y = F.pad(self.bn1(self.conv1(x)), (0, 0, 1, 1))  # zeros above and below: H padded, W not
        return self.fc(F.relu(self.bn2(self.conv2(y))).mean((2, 3)))


def test_an_explicit_zero_pad_before_an_unpadded_conv_is_not_constant():
    v, probe = labels(ZeroPadThenConv(nn.Conv2d(4, 4, 1, bias=False)))
    assert v["bn1.bias"].si and not v["bn1.bias"].individually_si
    assert probe.scaling_error(["bn1.bias"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe)


class LinearThenBatchNorm(nn.Module):
    """LayerNorm -> Linear -> BatchNorm1d: the LN beta is constant over the batch, so is its image."""

    def __init__(self, between=None):
        super().__init__()
        self.fc1 = nn.Linear(5, 6)
        self.ln = nn.LayerNorm(6)
        self.fc2 = nn.Linear(6, 4)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2)
        self.between = between

    def forward(self, x):
        y = self.ln(self.fc1(x))
        if self.between is not None:
            y = self.between(y)
        return self.head(F.relu(self.bn(self.fc2(y))))


def test_layer_norm_beta_through_a_linear_into_batch_norm_is_si_alone():
    v, probe = labels(LinearThenBatchNorm(), (torch.randn(8, 5, dtype=torch.float64),))
    assert v["ln.bias"].individually_si and v["fc2.bias"].individually_si
    assert "bn" in v["ln.bias"].reason and "inert" in v["fc2.bias"].reason
    assert_labels_hold(v, probe)


def test_a_per_sample_factor_between_makes_the_beta_vary_over_the_batch():
    """x * noise with noise per sample (stochastic depth): the image of beta varies over the batch."""
    noise = torch.tensor([[1.0], [0.0], [2.0], [1.0], [0.5], [1.0], [3.0], [1.0]], dtype=torch.float64)
    v, probe = labels(LinearThenBatchNorm(lambda y: y * noise), (torch.randn(8, 5, dtype=torch.float64),))
    assert v["ln.bias"].si and not v["ln.bias"].individually_si
    assert probe.scaling_error(["ln.bias"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe)


def test_a_term_of_one_channel_block_is_not_constant_along_the_channel_dim():
    """Ctx.separate: a block's term is zero outside its block, so dim 1 leaves its constant dims."""
    ctx = Ctx({})
    term = Term({0: 1}, frozenset({0, 1, 2}))
    blocked = Deg(((2, (term,)), (3, (Term({1: 1}),))))
    varying, kept = ctx.separate(blocked, lambda const: const, Origin("mix", "F.linear", ""))
    assert varying == {1: 1} and [t.const for t in kept] == [frozenset({0, 2})]
    assert ctx.constraints == []
    _, kept_whole = ctx.separate(Deg(((None, (term,)),)), lambda const: const, Origin("mix", "F.linear", ""))
    assert [t.const for t in kept_whole] == [frozenset({0, 1, 2})]
