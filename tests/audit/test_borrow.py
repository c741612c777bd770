"""The static analysis borrows the model's parameters instead of copying them: whatever its
forward writes into them (weight clipping, F.embedding's max_norm) is undone, and the buffers
are its own copies."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explr.audit.api import static_report
from explr.audit.borrow import borrowed_copy


class _ClipsItsWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
        self.table = nn.Embedding(10, 4)
        with torch.no_grad():
            self.table.weight.mul_(5)  # rows well above max_norm

    def forward(self, x):
        self.conv.weight.data.clamp_(-0.01, 0.01)  # weight clipping inside forward
        rows = F.embedding(torch.arange(4), self.table.weight, max_norm=1.0)
        return self.bn(self.conv(x)).mean((2, 3)) + rows.sum()


def test_writes_into_parameters_are_undone_and_buffers_are_private():
    model = _ClipsItsWeight()
    before = {n: t.detach().clone() for n, t in (*model.named_parameters(), *model.named_buffers())}
    static_report(model, (torch.randn(4, 3, 6, 6),), model_name="m", meta=False)
    after = dict((*model.named_parameters(), *model.named_buffers()))
    assert all(torch.equal(after[n], t) for n, t in before.items())


def test_the_copy_shares_parameters_but_not_buffers():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with borrowed_copy(model) as work:
        assert work[0].weight is model[0].weight
        assert work[1].running_mean is not model[1].running_mean
        work(torch.randn(5, 3))
    assert torch.equal(model[1].running_mean, torch.zeros(3))
