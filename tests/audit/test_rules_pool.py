"""Pooling keeps a term constant over the pooled dims (its exact value too) only when the pool maps a
constant to itself: PoolFormer's `avg_pool(x) - x` then cancels the norm's beta exactly, and a bias
before pool -> BN stays inert. Where the pool does not (count_include_pad=True with padding), the
terms merge. Every static label is checked against the numeric scaling probe (float64)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.audit.test_rules_linalg import assert_labels_hold, labels


class TokenMixerBlock(nn.Module):
    """PoolFormer's block in small: x + scale * mixer(norm1(x)), GroupNorm(1, C) as its norms."""

    def __init__(self, mixer):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.norm1 = nn.GroupNorm(1, 4)
        self.scale = nn.Parameter(torch.ones(4, 1, 1))
        self.norm2 = nn.GroupNorm(1, 4)
        self.fc = nn.Linear(4, 2)
        self.mixer = mixer

    def forward(self, x):
        x = self.stem(x)
        x = x + self.scale * self.mixer(self.norm1(x))
        return self.fc(F.relu(self.norm2(x)).mean((2, 3)))


X = (torch.randn(4, 3, 7, 7, dtype=torch.float64),)


def _avg(y, **kw):
    return F.avg_pool2d(y, 3, 1, 1, **kw)


@pytest.mark.parametrize("mixer", [
    lambda y: _avg(y, count_include_pad=False) - y,  # timm's poolformer
    lambda y: F.max_pool2d(y, 3, 1, 1) - y,  # max(a + b) = max(a) + b for b constant over the window
    lambda y: torch.rsub(_avg(y, count_include_pad=False), y),
    lambda y: -y + _avg(y, count_include_pad=False),
    lambda y: (_avg(y, count_include_pad=False) - y.clone()).contiguous(),
], ids=["avg-minus-x", "max-minus-x", "rsub", "neg-plus-pool", "through-copies"])
def test_pool_minus_its_input_cancels_the_norm_beta_exactly(mixer):
    v, probe = labels(TokenMixerBlock(mixer), X)
    assert v["norm1.bias"].individually_si
    assert v["norm1.bias"].reason.startswith("inert: its constant term is subtracted from itself exactly in ")
    assert probe.has_no_effect("norm1.bias")
    assert_labels_hold(v, probe)


def _in_place_between(y):
    pooled = _avg(y, count_include_pad=False)
    y.mul_(2)  # y now holds 2 * (gamma n + beta): pooled - y keeps -beta
    return pooled - y


def _alias_written(y):
    pooled = _avg(y, count_include_pad=False)
    alias = y.detach()  # the same storage, the same degree
    alias *= 2.0  # operator.imul writes in place: y is 2 * (gamma n + beta) now
    return pooled - y


@pytest.mark.parametrize("mixer", [
    lambda y: _avg(y, count_include_pad=True) - y,  # border windows average in zeros
    lambda y: _avg(y, count_include_pad=False) - 2 * y,
    lambda y: _avg(y, count_include_pad=False) + y,
    lambda y: _avg(y, count_include_pad=False) - y.neg(),
    lambda y: torch.sub(_avg(y, count_include_pad=False), y, alpha=2),
    lambda y: _avg(y, count_include_pad=False) - F.dropout(y, 0.5),
    lambda y: F.avg_pool2d(y, 3, 1, 1, count_include_pad=False, divisor_override=2) - y,
    _in_place_between,
    _alias_written,
], ids=["count-include-pad", "twice", "plus", "minus-neg", "alpha", "dropout", "divisor-override", "in-place",
        "alias-written"])
def test_the_cancellation_never_fires_where_the_values_differ(mixer):
    v, probe = labels(TokenMixerBlock(mixer), X)
    assert not v["norm1.bias"].individually_si
    assert probe.scaling_error(["norm1.bias"], (2.9,)) > 1e-6  # the math agrees: not SI alone
    assert_labels_hold(v, probe)


class BiasPoolNorm(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = pool
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.pool(self.conv(x)))).mean((2, 3)))


@pytest.mark.parametrize("pool", [
    nn.MaxPool2d(3, 2, 1), nn.AvgPool2d(2), nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    nn.AdaptiveAvgPool2d(3), nn.AdaptiveMaxPool2d(2), nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
], ids=["max-padded", "avg-unpadded", "avg-exclude-pad", "adaptive-avg", "adaptive-max", "ceil-exclude-pad"])
def test_a_bias_through_a_constant_keeping_pool_into_bn_is_inert(pool):
    v, probe = labels(BiasPoolNorm(pool), (torch.randn(4, 3, 9, 9, dtype=torch.float64),))
    assert v["conv.bias"].individually_si and v["conv.bias"].reason == "inert: its per-channel term is cancelled by bn"
    assert probe.has_no_effect("conv.bias")
    assert_labels_hold(v, probe)


@pytest.mark.parametrize("pool", [nn.AvgPool2d(3, 1, 1), nn.AvgPool2d(3, 2, 1, ceil_mode=True)],
                         ids=["include-pad", "include-pad-ceil"])
def test_a_pool_that_averages_in_padding_zeros_makes_the_bias_vary(pool):
    v, probe = labels(BiasPoolNorm(pool), (torch.randn(4, 3, 9, 9, dtype=torch.float64),))
    assert v["conv.bias"].si and not v["conv.bias"].individually_si
    assert probe.scaling_error(["conv.bias"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe)
