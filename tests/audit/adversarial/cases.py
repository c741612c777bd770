"""The registry of adversarial cases: a model factory, example inputs, and the claims that would be false.

`culprits` are derived by hand: the parameters that are NOT scale-invariant (si) or not SI alone
(individually) although a naive degree analysis says so. `keeps` are truly SI parameters the audit
must still find (the rest of the model is ordinary). `static` says whether the static analysis
alone is expected to be conservative (False only where no capture can see the trick).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

CASES: dict[str, "Case"] = {}


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple]
    culprits: dict[str, str]  # parameter -> "si" (not SI at all) | "individually" (SI only jointly)
    keeps: frozenset[str] = field(default_factory=frozenset)
    static: bool = True


def image(*shape: int) -> Callable[[], tuple]:
    shape = shape or (4, 3, 6, 6)
    return lambda: (torch.randn(*shape, generator=torch.Generator().manual_seed(0)),)


def case(culprits: dict[str, str], keeps=(), inputs=None, static: bool = True):
    """Register the decorated nn.Module class as a case named after it."""
    def register(cls):
        CASES[cls.__name__] = Case(cls.__name__, cls, inputs or image(), culprits, frozenset(keeps), static)
        return cls
    return register


class ConvBN(nn.Module):
    """conv (no bias) -> BatchNorm without affine: conv.weight is SI, the output has degree 0."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels, affine=False)

    def stem(self, x):
        return self.bn(self.conv(x))
