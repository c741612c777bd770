"""The exact conversion (docs/theory.md §3): the phantom scalar s_t.

s_t is a scalar parameter that starts at 1.0 and is stepped by the *original* PyTorch SGD
(same LR, momentum, dampening, weight decay) with a loss gradient of exactly zero. Training the
scale-invariant parameters with weight decay 0 and LR  η̃_t = η_t / (s_{t-1} s_t)  then gives the
same network function at every step (θ̃_t = θ_t / s_t on the SI set). O(1) per step, float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True, slots=True)
class SGDHyper:
    """Hyperparameters of the original torch.optim.SGD for one param group."""

    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False  # no exact equivalent (docs/theory.md §5); modelled only for approximate conversions

    def validate(self) -> None:
        if not (0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum={self.momentum!r} is outside the allowed range [0, 1)")
        if not (0.0 <= self.dampening <= 1.0):
            raise ValueError(f"dampening={self.dampening!r} is outside the allowed range [0, 1]")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise ValueError(f"weight_decay={self.weight_decay!r} must be finite and >= 0")


class Phantom:
    """Incremental phantom scalar. `step(lr)` advances one iteration and returns η̃_t."""

    __slots__ = ("hyper", "s", "buf", "t")

    def __init__(self, hyper: SGDHyper):
        hyper.validate()
        self.hyper = hyper
        self.s = 1.0  # s_t, starts at s_0 = 1
        self.buf: float | None = None  # torch SGD momentum buffer of the phantom
        self.t = 0

    def step(self, lr: float, hyper: SGDHyper | None = None) -> float:
        """Apply the original SGD step t+1 with LR `lr` (optionally time-varying hyperparameters)."""
        h = hyper or self.hyper
        s_prev = self.s
        d_p = h.weight_decay * s_prev  # zero loss gradient: only weight decay acts
        if h.momentum != 0.0:
            # torch.optim.SGD: the first step copies d_p (no dampening), later steps dampen
            self.buf = d_p if self.buf is None else h.momentum * self.buf + (1.0 - h.dampening) * d_p
            d_p = d_p + h.momentum * self.buf if h.nesterov else self.buf
        self.s = s_prev - lr * d_p
        self.t += 1
        if self.s <= 0.0:
            raise ValueError(
                f"lr*weight_decay is so large that the phantom scale reached {self.s:.3g} at step {self.t}: "
                "the original SGD run shrinks weights through zero, so no exponential-LR equivalent exists")
        denom = s_prev * self.s
        ratio = lr / denom if denom > 0.0 else math.inf
        if not math.isfinite(ratio):  # ln(1/s) beyond ~355: η/s² has left float64
            raise ValueError(
                f"the phantom scale reached {self.s:.3g} at step {self.t}: the converted LR η/s² no longer fits "
                "float64 and no float type holds the converted weights; shorten the run or renormalize (docs/theory.md §4)")
        return ratio

    def rescale(self, factor: float) -> None:
        """Multiply s and the momentum buffer by `factor`: the recursion is linear, so later ratios
        η/(s_{t-1}s_t) are multiplied by factor^-2 (how renormalization folds c² into the LRs)."""
        self.s *= factor
        if self.buf is not None:
            self.buf *= factor

    def state_dict(self) -> dict:
        return {"s": self.s, "buf": self.buf, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.s, self.buf, self.t = float(state["s"]), state["buf"], int(state["t"])


@dataclass(frozen=True, slots=True)
class Trace:
    """The whole run at once: original LR, converted LR and phantom scale for steps t = 1..T."""

    lrs: list[float]  # η_t (index t-1)
    converted: list[float]  # η̃_t
    scales: list[float]  # s_t

    @property
    def s_final(self) -> float:
        return self.scales[-1]


def trace(lr_at: Callable[[int], float], hyper: SGDHyper, steps: int) -> Trace:
    """Run the engine over `steps` iterations and keep every value (for tables, horizons and plots)."""
    lrs = [lr_at(i) for i in range(steps)]
    pairs = list(converted_lrs(lrs.__getitem__, hyper, steps))
    return Trace(lrs, [c for c, _ in pairs], [s for _, s in pairs])


def converted_lrs(lr_at: Callable[[int], float], hyper: SGDHyper, steps: int) -> Iterator[tuple[float, float]]:
    """Yield (η̃_t, s_t) for t = 1..steps; `lr_at(i)` is the original LR of step i+1 (0-based, like LRSchedule)."""
    phantom = Phantom(hyper)
    for i in range(steps):
        lr_tilde = phantom.step(lr_at(i))
        yield lr_tilde, phantom.s
