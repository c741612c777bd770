"""A tiny normalized net (the measurement net of docs/theory.md §3) and a deterministic float64 training loop."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

# stem+conv2 write the residual stream (jointly SI: the stream ends in bn3); conv has a bias before
# bn2 (weight individually SI, bias inert); {bn1.weight, bn1.bias} jointly SI via relu -> conv -> BN.
# bn3's affine and the head reach the output unnormalized: not SI, they keep their schedule and decay.
SI_NAMES = ("stem.weight", "conv.weight", "conv.bias", "conv2.weight", "bn1.weight", "bn1.bias")


class TinyNet(nn.Module):
    def __init__(self, eps: float = 1e-5, classes: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=eps)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(8, eps=eps)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(8, eps=eps)
        self.head = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        r = self.conv2(F.relu(self.bn2(self.conv(F.relu(self.bn1(h))))))
        h = h + r
        return self.head(F.relu(self.bn3(h)).mean((2, 3)))


def make_net(eps: float = 1e-5, seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    net = TinyNet(eps).double()
    with torch.no_grad():
        for conv in (net.stem, net.conv, net.conv2):  # torchvision ResNet init
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        # non-trivial affine values so the BN parameters really take part
        for bn in (net.bn1, net.bn2, net.bn3):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return net


def batches(n: int, batch: int = 16, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 4, (batch,), generator=g))
            for _ in range(n)]


def train(net: nn.Module, opt: torch.optim.Optimizer, sched, data) -> list[torch.Tensor]:
    """One optimizer step + one scheduler step per batch; returns the train-mode outputs seen at each step."""
    outputs = []
    for x, y in data:
        out = net(x)
        outputs.append(out.detach().clone())
        opt.zero_grad()
        F.cross_entropy(out, y).backward()
        opt.step()
        if sched is not None:
            sched.step()
    return outputs


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(((x - y).abs().max() / x.abs().max()).item() for x, y in zip(a, b))


def twins(eps: float = 1e-5) -> tuple[TinyNet, TinyNet]:
    net = make_net(eps)
    return net, copy.deepcopy(net)
