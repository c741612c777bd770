"""The numeric confirmation's probe (explr.audit.numeric): every forward starts from the same state."""
from __future__ import annotations

import torch
from torch import nn

from explr.audit.api import audit
from explr.audit.numeric import ScalingProbe


class LazyPositionCache(nn.Module):
    """The pattern of timm's ConViT GPSA (timm/models/convit.py, Apache-2.0): a non-persistent buffer
    of shape (1, 1, 1, 3) that the first forward rebinds to the (1, N, N, 3) relative positions."""

    def __init__(self, dim: int = 4):
        super().__init__()
        self.value = nn.Linear(dim, dim)
        self.pos_proj = nn.Linear(3, 1)
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("rel_indices", torch.zeros(1, 1, 1, 3), persistent=False)

    def forward(self, x):  # x: (B, N, dim)
        n = x.shape[1]
        if self.rel_indices.shape[1] != n:
            idx = torch.arange(n, dtype=x.dtype)
            d = idx.view(1, -1) - idx.view(-1, 1)
            self.rel_indices = torch.stack([d, d.abs(), d * d], dim=-1).unsqueeze(0)
        attn = self.pos_proj(self.rel_indices).squeeze(-1).softmax(dim=-1)  # (1, N, N) positional attention
        return self.norm(attn @ self.value(x))


def _model_and_inputs():
    torch.manual_seed(0)
    return LazyPositionCache().double(), (torch.randn(2, 5, 4, dtype=torch.float64),)


def test_a_forward_that_rebinds_a_buffer_is_reproducible_in_the_probe():
    model, inputs = _model_and_inputs()
    probe = ScalingProbe(model, inputs)
    assert probe.noise_floor() == 0.0
    assert probe.model.rel_indices.shape == (1, 1, 1, 3)  # bound back after each forward
    assert probe.scaling_error(["pos_proj.weight"]) > 1e-3  # the cache is used, with real values


def test_claims_next_to_a_lazy_cache_are_confirmed_not_skipped():
    model, inputs = _model_and_inputs()
    report = audit(model, inputs)
    assert report.verification.status == "passed", report.verification.detail
    # pos_proj.bias: one scalar added to every score, cancelled by the softmax
    assert set(report.si_names) == {"value.weight", "value.bias", "pos_proj.bias"}
    assert model.rel_indices.shape == (1, 1, 1, 3)  # the user's model is not touched
