"""Transposes keep every term with its constant dims permuted; a product with a one-term factor
keeps a term where both are constant (rules_basic._mul). MLP-Mixer's token-MLP bias, constant over
the channels after the transpose back, is cancelled by the next LayerNorm over the channels, even
through a per-sample stochastic-depth mask, but not through a per-channel factor. Labels are checked
against the numeric scaling probe (float64)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.audit.test_rules_linalg import assert_labels_hold, labels


class TokenMixing(nn.Module):
    def __init__(self, factor=None, transpose=lambda t: t.transpose(1, 2)):
        super().__init__()
        self.embed = nn.Linear(3, 6)
        self.norm1 = nn.LayerNorm(6)
        self.tok1, self.tok2 = nn.Linear(5, 7), nn.Linear(7, 5)
        self.norm2 = nn.LayerNorm(6)
        self.head = nn.Linear(6, 2)
        self.factor, self.transpose = factor, transpose

    def forward(self, x):
        x = self.embed(x)
        t = self.transpose(self.tok2(F.relu(self.tok1(self.transpose(self.norm1(x))))))
        if self.factor is not None:
            t = t * self.factor
        return self.head(F.relu(self.norm2(x + t)).mean(1))


X = (torch.randn(4, 5, 3, dtype=torch.float64),)
PER_SAMPLE = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=torch.float64).view(4, 1, 1)


@pytest.mark.parametrize("model", [
    TokenMixing(), TokenMixing(PER_SAMPLE), TokenMixing(transpose=lambda t: t.permute(0, 2, 1)),
    TokenMixing(transpose=lambda t: torch.swapaxes(t, -1, -2)),
], ids=["transpose", "per-sample-mask", "permute", "swapaxes"])
def test_a_token_mlp_bias_constant_over_the_channels_is_cancelled_by_the_channel_layer_norm(model):
    v, probe = labels(model, X)
    assert v["tok2.bias"].individually_si
    assert_labels_hold(v, probe)


def test_a_per_channel_factor_makes_the_token_bias_vary_over_the_channels():
    v, probe = labels(TokenMixing(torch.linspace(0.5, 2.0, 6, dtype=torch.float64)), X)
    assert v["tok2.bias"].si and not v["tok2.bias"].individually_si
    assert probe.scaling_error(["tok2.bias"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe)
