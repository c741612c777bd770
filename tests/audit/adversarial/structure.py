"""Adversarial cases in the structure around the ops: norm orders, eval-mode statistics made of
parameters, unbatched pooling, hooks on the root module, a wrapped function named like a torch
op, branches frozen at capture, and an opaque part reading another module's weight."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tests.audit.adversarial.cases import ConvBN, case


def relu(x):
    """Named like torch.relu, registered with torch.fx.wrap, but not a ReLU at all."""
    return torch.tanh(x)


torch.fx.wrap("relu")


class _ConvThen(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)


@case({"conv.weight": "si"})
class VectorNormOrd0(_ConvThen):
    """z / ||z||_0 counts non-zeros: the count does not scale, so z's scale stays."""

    def forward(self, x):
        z = self.conv(x)
        return z / torch.linalg.vector_norm(z, ord=0, dim=1, keepdim=True)


@case({"conv.weight": "si"})
class TensorNormP0(_ConvThen):
    def forward(self, x):
        z = self.conv(x)
        return z / z.norm(p=0, dim=1, keepdim=True)


@case({"conv.weight": "si"})
class NormalizeP0(_ConvThen):
    def forward(self, x):
        return F.normalize(self.conv(x), p=0, dim=1)


@case({}, ("conv.weight",))
class VectorNormInf(_ConvThen):
    """Control: max|z| scales with z, so z / ||z||_inf IS scale-invariant."""

    def forward(self, x):
        z = self.conv(x)
        return z / torch.linalg.vector_norm(z, ord=float("inf"), dim=1, keepdim=True)


@case({"rm": "si", "rv": "si", "conv.weight": "si"})
class EvalBatchNormParamStats(_ConvThen):
    """F.batch_norm(training=False) with parameters as the running statistics."""

    def __init__(self):
        super().__init__()
        self.rm = nn.Parameter(torch.full((4,), 0.2))
        self.rv = nn.Parameter(torch.full((4,), 1.5))

    def forward(self, x):
        return F.batch_norm(self.conv(x), self.rm, self.rv, training=False)


@case({"conv_a.weight": "individually", "conv_b.weight": "individually"}, inputs=lambda: (torch.randn(3, 8, 8),))
class UnbatchedPooling(nn.Module):
    """Unbatched (C, H, W): cat along dim 1 is along H; the pooling window mixes the two halves."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv_b = nn.Conv2d(3, 4, 3, padding=1, bias=False)

    def forward(self, x):
        y = torch.cat([self.conv_a(x), self.conv_b(x)], dim=1)
        y = F.avg_pool2d(y, 3, stride=2, padding=1)
        return F.batch_norm(y, None, None, training=True)


@case({"conv.weight": "si"})
class RootForwardHook(ConvBN):
    def __init__(self):
        super().__init__()
        self.register_forward_hook(lambda m, args, out: out * m.conv.weight.abs().mean())

    def forward(self, x):
        return self.stem(x)


@case({"conv.weight": "si"})
class RootPreHook(ConvBN):
    def __init__(self):
        super().__init__()
        self.register_forward_pre_hook(lambda m, args: (args[0] + m.conv.weight.mean(),))

    def forward(self, x):
        return self.stem(x)


@case({"conv.weight": "si"})
class WrappedNamedLikeTorchOp(ConvBN):
    """relu() here is a user function under torch.fx.wrap: dispatch must not go by its name."""

    def forward(self, x):
        return self.bn(relu(self.conv(x)))


@case({"conv.weight": "si"}, static=False)
class BranchFrozenAtCapture(ConvBN):
    """A Python branch on the weight's value through an untraced path (the parameter dict):
    capture sees the value of the original weights only; perturbed or scaled weights take the
    other branch, where nothing normalizes."""

    def __init__(self):
        super().__init__()
        self.reference = float(self.conv.weight.detach().norm())

    def forward(self, x):
        weight = self.conv._parameters["weight"]
        if abs(float(weight.norm()) - self.reference) < 1e-6:
            return self.stem(x)
        return self.conv(x)


class _Peek(nn.Module):
    """Opaque (a branch on data) and reads a weight it does not own through a plain reference."""

    def __init__(self, other: nn.Module):
        super().__init__()
        self.__dict__["other"] = other  # not registered: named_parameters() does not list it here

    def forward(self, x):
        if x.mean() > 100:
            return x
        return x * self.other.weight.abs().mean()


@case({"conv.weight": "si"})
class OpaqueReadsForeignWeight(ConvBN):
    def __init__(self):
        super().__init__()
        self.peek = _Peek(self.conv)

    def forward(self, x):
        return self.peek(self.stem(x))


class _HandWrittenBatchNorm(_ConvThen):
    """(z - mean) / sqrt(var + 1e-5), written out by hand with a literal eps."""

    def forward(self, x):
        z = self.conv(x)
        var = z.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
        return (z - z.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(var + 1e-5)


@case({"conv.weight": "si"}, inputs=lambda: (1e-3 * torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(0)),))
class HandWrittenEpsLargeAgainstVar(_HandWrittenBatchNorm):
    """Tiny activations: eps/var is about 10, so the literal eps dominates and scaling matters."""


@case({}, ("conv.weight",))
class HandWrittenEpsSmall(_HandWrittenBatchNorm):
    """Control: unit-scale activations, eps/var about 1e-4: SI in the paper's convention."""
