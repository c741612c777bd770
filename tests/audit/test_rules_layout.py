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
    def __init__(self, factor=None, transpose=lambda t: t.transpose(1, 2), dropout=0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)  # timm's Mlp: nn.Dropout(0) after fc2
        self.embed = nn.Linear(3, 6)
        self.norm1 = nn.LayerNorm(6)
        self.tok1, self.tok2 = nn.Linear(5, 7), nn.Linear(7, 5)
        self.norm2 = nn.LayerNorm(6)
        self.head = nn.Linear(6, 2)
        self.factor, self.transpose = factor, transpose

    def forward(self, x):
        x = self.embed(x)
        t = self.transpose(self.drop(self.tok2(F.relu(self.tok1(self.transpose(self.norm1(x)))))))
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


@pytest.mark.parametrize("model", [TokenMixing(torch.linspace(0.5, 2.0, 6, dtype=torch.float64)),
                                   TokenMixing(dropout=0.5)], ids=["per-channel-factor", "dropout-mask"])
def test_a_factor_varying_over_the_channels_makes_the_token_bias_vary(model):
    v, probe = labels(model, X)
    assert v["tok2.bias"].si and not v["tok2.bias"].individually_si
    assert probe.scaling_error(["tok2.bias"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe)


class ConvToTokens(nn.Module):
    """LeViT in small: conv -> BN -> flatten(2).transpose(1, 2) -> tokens; a Linear, then BatchNorm1d
    over the flattened (batch * tokens) rows, as LeViT's LinearNorm does."""

    def __init__(self, tokens_norm=None):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 6)
        self.bn1d = nn.BatchNorm1d(6)
        self.head = nn.Linear(6, 2)
        self.tokens_norm = tokens_norm

    def forward(self, x):
        t = self.bn(self.conv(x)).flatten(2).transpose(1, 2)  # (B, N, C)
        if self.tokens_norm is not None:
            return self.head(F.relu(self.fc(self.tokens_norm(t))).mean(1))
        y = self.bn1d(self.fc(t).flatten(0, 1)).reshape(t.shape[0], t.shape[1], -1)
        return self.head(F.relu(y).mean(1))


IMG = (torch.randn(3, 3, 4, 4, dtype=torch.float64),)


def test_a_bias_through_flatten_transpose_and_a_flattened_batch_norm_is_si_alone():
    v, probe = labels(ConvToTokens(), IMG)
    assert v["bn.bias"].individually_si and v["bn.weight"].individually_si and v["fc.bias"].individually_si
    assert_labels_hold(v, probe)


class MergedDims(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(64)

    def forward(self, t):
        return self.norm(t.reshape(t.shape[0], -1))  # a row mixes channels and tokens


def test_a_reshape_that_merges_a_varying_dim_into_a_constant_one_is_not_constant():
    """The channel dim (where beta varies) merged with the tokens: the LayerNorm over that row
    does not cancel beta."""
    v, probe = labels(ConvToTokens(nn.Sequential(MergedDims(), nn.Unflatten(1, (16, 4)))), IMG)
    assert not v["bn.bias"].individually_si
    assert probe.scaling_error(["bn.bias"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe)


class GhostLike(nn.Module):
    """GhostNet's module: cat([primary, cheap(primary)])[:, :out], then a 1x1 conv and BN."""

    def __init__(self, index=lambda y: y[:, :5]):
        super().__init__()
        self.primary = nn.Conv2d(3, 3, 1, bias=False)
        self.bn_p = nn.BatchNorm2d(3)
        self.cheap = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        self.bn_c = nn.BatchNorm2d(3)
        self.conv = nn.Conv2d(5, 4, 1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
        self.index = index

    def forward(self, x):
        p = F.relu(self.bn_p(self.primary(x)))
        y = self.index(torch.cat([p, self.bn_c(self.cheap(p))], 1))
        return self.fc(F.relu(self.bn(self.conv(y))).mean((2, 3)))


@pytest.mark.parametrize("index", [lambda y: y[:, :5], lambda y: y[..., 1:, :][:, :5, :, :], lambda y: y[:, None, :5][:, 0]],
                         ids=["channels", "ellipsis-rows", "none-then-int"])
def test_a_channel_slice_keeps_a_constant_term_of_its_block(index):
    v, probe = labels(GhostLike(index), (torch.randn(4, 3, 6, 6, dtype=torch.float64),))
    assert v["bn_c.bias"].individually_si
    assert_labels_hold(v, probe)


def test_a_tensor_index_merges():
    v, probe = labels(GhostLike(lambda y: y[:, torch.tensor([0, 1, 3, 4, 5])]), (torch.randn(4, 3, 6, 6, dtype=torch.float64),))
    assert not v["bn_c.bias"].individually_si
    assert_labels_hold(v, probe, precise=False)


def test_a_view_as_another_dtype_reinterprets_bits_and_is_not_homogeneous():
    class Bits(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1, bias=False)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x).view(torch.int64).view(torch.float64)).sum()

    v, _ = labels(Bits(), (torch.randn(2, 3, 4, 4, dtype=torch.float64),))
    assert not v["conv.weight"].si


class TokenMeanHead(ConvToTokens):
    """LeViT's head in small: the token mean, then BatchNorm1d and a Linear."""

    def __init__(self, reduce):
        super().__init__()
        self.bn1d = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2)
        self.reduce = reduce

    def forward(self, x):
        t = self.bn(self.conv(x)).flatten(2).transpose(1, 2)
        return self.head(self.bn1d(self.reduce(t)))


@pytest.mark.parametrize("reduce", [lambda t: t.mean(1), lambda t: t.sum(dim=(1,)),
                                    lambda t: torch.mean(t, -2, keepdim=True).squeeze(1)],
                         ids=["mean", "sum", "keepdim"])
def test_a_token_mean_keeps_the_bias_constant_over_the_batch(reduce):
    v, probe = labels(TokenMeanHead(reduce), IMG)
    assert v["bn.bias"].individually_si and v["bn.weight"].individually_si
    assert_labels_hold(v, probe)


def test_a_mean_over_the_batch_then_a_batch_norm_over_the_tokens_agrees_with_the_probe():
    """The tokens become BatchNorm1d's batch: beta, constant over them, is cancelled there."""
    v, probe = labels(TokenMeanHead(lambda t: t.mean(0)), IMG)
    assert_labels_hold(v, probe)
