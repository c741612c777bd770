"""Adversarial cases where a tensor operand hides a parameter: fill values, indices, sampling
arguments, `out=`, in-place writes through aliases and into buffers, dtype truncation."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tests.audit.adversarial.cases import ConvBN, case

KEEP = ("conv.weight",)


@case({"v": "si"}, KEEP)
class MaskedFillTensorValue(ConvBN):
    """masked_fill(mask, v) with a parameter v: the output holds v where the mask is set."""

    def __init__(self):
        super().__init__()
        self.v = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        h = self.stem(x)
        return h.masked_fill(h > 0.3, self.v)


@case({"v": "si"}, KEEP)
class FillWithTensor(ConvBN):
    """buf.fill_(v) with a 0-dim parameter: buf then carries v's degree."""

    def __init__(self):
        super().__init__()
        self.v = nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        h = self.stem(x)
        buf = torch.zeros_like(h)
        buf.fill_(self.v)
        return h + buf


class _IndexFromParam(ConvBN):
    """An integer index computed from a parameter: scaling p moves the index, not the values."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.tensor([0.1, 0.5, 0.8, 0.3]))

    def index(self):
        return (self.p.abs() * 2.4).to(torch.long)  # out of range once scaled up: the forward raises


@case({"p": "si"}, KEEP)
class IndexGetitem(_IndexFromParam):
    def forward(self, x):
        return self.stem(x)[:, self.index()]


@case({"p": "si"}, KEEP)
class IndexSelect(_IndexFromParam):
    def forward(self, x):
        return torch.index_select(self.stem(x), 1, self.index())


@case({"p": "si"}, KEEP)
class GatherIndex(_IndexFromParam):
    def forward(self, x):
        h = self.stem(x)
        idx = self.index().view(1, 4, 1, 1).expand_as(h)
        return torch.gather(h, 1, idx)


@case({"p": "si"}, KEEP)
class ScatterIndex(_IndexFromParam):
    def forward(self, x):
        h = self.stem(x)
        idx = self.index().view(1, 4, 1, 1).expand_as(h)
        return torch.zeros_like(h).scatter(1, idx, h)


@case({"p": "si"}, ("table",), inputs=lambda: (torch.randn(4, 3, 6, 6),))
class EmbeddingIndex(_IndexFromParam):
    """Rows of a normalized table picked by an index derived from p."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(4, 5))

    def forward(self, x):
        rows = F.embedding(self.index(), self.table)
        return self.stem(x).mean((2, 3)) + F.normalize(rows, dim=1).sum(1)


@case({"p": "si"}, KEEP)
class TruncateToLong(ConvBN):
    """(2p).to(long) per channel, then mixed by a conv and normalized: truncation is not homogeneous."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.tensor([0.7, 1.6, 2.2, 0.9]))
        self.mix = nn.Conv2d(4, 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4, affine=False)

    def forward(self, x):
        q = (self.p * 2).to(torch.long).to(x.dtype).view(1, 4, 1, 1)
        return self.bn2(self.mix(self.stem(x) * q))


@case({"p": "si"}, KEEP)
class TypeCast(TruncateToLong):
    """The same truncation written with .type(dtype)."""

    def forward(self, x):
        q = (self.p * 2).type(torch.long).type(x.dtype).view(1, 4, 1, 1)
        return self.bn2(self.mix(self.stem(x) * q))


@case({"mu": "si"}, KEEP)
class NormalMean(ConvBN):
    """torch.normal(mean=mu): the sample is mu + noise, so mu reaches the output."""

    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.full((4, 1, 1), 0.3))

    def forward(self, x):
        h = self.stem(x)
        return h + torch.normal(self.mu.expand_as(h), 1.0)


@case({"g": "si"}, KEEP)
class OutKeyword(ConvBN):
    """torch.mul(h, g, out=y): y holds the product, the return value is ignored."""

    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        h = self.stem(x)
        y = torch.empty_like(h)
        torch.mul(h, self.g, out=y)
        return y


@case({"g": "si"}, KEEP)
class InplaceThroughAlias(ConvBN):
    """flat is a view of h taken before h is scaled in place by g: flat sees the write."""

    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        h = self.stem(x)
        flat = h.flatten(1)
        h.mul_(self.g)
        return flat


@case({"g": "si"}, KEEP)
class InplaceIntoBuffer(ConvBN):
    """A buffer written in place with g, then read again: the second read is a new graph node."""

    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.tensor(1.5))
        self.register_buffer("buf", torch.ones(()))

    def forward(self, x):
        self.buf.fill_(1.0)
        self.buf.mul_(self.g)
        return self.stem(x) * self.buf
