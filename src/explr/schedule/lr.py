"""The original LR as a pure function of the iteration (timm style: the scheduler only writes it).

`LRSchedule.lr_at(i)` is the LR of optimizer step i+1 (i = 0-based iteration index). Everything
is expressed in iterations; a scheduler that the original setup steps once per epoch is
modelled with `step_every = iters_per_epoch` (the LR is held constant inside each epoch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DECAYS = ("step", "cosine", "linear", "constant")
WARMUPS = ("linear", "constant")


@dataclass(frozen=True, slots=True)
class LRSchedule:
    base_lr: float
    total_iters: int
    decay: str = "step"  # one of DECAYS
    milestones: tuple[int, ...] = ()  # iterations where the LR is multiplied by gamma ("step")
    gamma: float = 0.1
    eta_min: float = 0.0  # floor of "cosine"/"linear" decay
    warmup_iters: int = 0
    warmup_factor: float = 0.0  # LR multiplier at the first warmup iteration
    warmup_method: str = "linear"  # one of WARMUPS
    step_every: int = 1  # 1: stepped per iteration; iters_per_epoch: stepped per epoch

    def validate(self) -> None:
        if not (self.base_lr > 0 and math.isfinite(self.base_lr)):
            raise ValueError(f"lr={self.base_lr!r} must be a finite number > 0")
        if self.total_iters <= 0:
            raise ValueError(f"total iterations={self.total_iters!r} must be > 0")
        if self.decay not in DECAYS:
            raise ValueError(f"decay={self.decay!r} is not one of {', '.join(DECAYS)}")
        if self.warmup_method not in WARMUPS:
            raise ValueError(f"warmup_method={self.warmup_method!r} is not one of {', '.join(WARMUPS)}")
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones={list(self.milestones)} must be strictly increasing")
        if self.milestones and (self.milestones[0] <= 0 or self.milestones[-1] >= self.total_iters):
            raise ValueError(f"milestones={list(self.milestones)} must lie inside (0, {self.total_iters}) iterations")
        if not (0 < self.gamma <= 1):
            raise ValueError(f"gamma={self.gamma!r} must be in (0, 1]")
        if not (0 <= self.warmup_iters < self.total_iters):
            raise ValueError(f"warmup iterations={self.warmup_iters!r} must be in [0, {self.total_iters})")
        if self.step_every <= 0:
            raise ValueError(f"step_every={self.step_every!r} must be > 0")

    def _position(self, i: int) -> int:
        return (i // self.step_every) * self.step_every

    def warmup_multiplier(self, u: int) -> float:
        if u >= self.warmup_iters:
            return 1.0
        if self.warmup_method == "constant":
            return self.warmup_factor
        alpha = u / self.warmup_iters
        return self.warmup_factor * (1.0 - alpha) + alpha

    def decay_lr(self, u: int) -> float:
        if self.decay == "step":
            return self.base_lr * self.gamma ** sum(1 for m in self.milestones if u >= m)
        if self.decay == "constant":
            return self.base_lr
        frac = min(u / self.total_iters, 1.0)
        shape = 0.5 * (1.0 + math.cos(math.pi * frac)) if self.decay == "cosine" else 1.0 - frac
        return self.eta_min + (self.base_lr - self.eta_min) * shape

    def lr_at(self, i: int) -> float:
        u = self._position(i)
        return self.decay_lr(u) * self.warmup_multiplier(u)

    def __call__(self, i: int) -> float:
        return self.lr_at(i)
