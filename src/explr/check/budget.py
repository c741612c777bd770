"""`--budget SECONDS`: choose the check's steps (and, for synthetic data, its batch size) from a timed step.

The whole check should end within the budget: what was spent before training (load, audit, setup) is
subtracted, the rest is shared by `runs` training runs stepping in lockstep plus the fixed end cost (the
last probe forward and the eval-mode comparison, about END_STEPS steps' worth). One training step is timed
on a throwaway copy at a small batch; bigger batches are extrapolated linearly (small batches use a CPU
less well, so this over-, not under-estimates). The batch is halved, down to MIN_BATCH, until MIN_STEPS fit;
then, for synthetic images, the side is halved (down to MIN_SIDE, if the model takes it): scale invariance
and the conversion hold for any input, so a smaller synthetic image checks the same thing for less.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

DEFAULT_BUDGET = 90.0  # seconds: a CI job step, and a user waiting at a terminal
MIN_STEPS = 24  # below this a compressed schedule barely shows its phases (MIN_GAP steps each)
MIN_BATCH = 2  # BatchNorm in train mode needs more than one value per channel
MIN_SIDE = 32  # smallest synthetic image side (a CIFAR image; 5 stride-2 stages still leave 1x1)
END_STEPS = 2.0  # last probe + eval-mode recalibration (2 batches) and comparison, in training steps of one run
SAFETY = 0.9  # share of the remaining time planned for, so noise on a shared machine stays inside
Size = TypeVar("Size")


@dataclass(frozen=True, slots=True)
class DataSize:
    batch: int
    shrink: int = 1  # synthetic image sides divided by this

    def cost(self, timed: "DataSize") -> float:
        """Cost relative to the timed size: linear in the batch and in the number of pixels."""
        return self.batch / timed.batch * (timed.shrink / self.shrink) ** 2


@dataclass(frozen=True, slots=True)
class StepPlan:
    steps: int
    batch_size: int
    step_seconds: float  # one training step of one run at batch_size (extrapolated)
    runs: int
    spent_seconds: float  # before training: load, audit, setup, the timing itself
    budget: float | None
    shrink: int = 1

    @property
    def estimate_seconds(self) -> float:
        return self.spent_seconds + self.step_seconds * self.runs * (self.steps + END_STEPS)

    @property
    def fits(self) -> bool:
        return self.budget is None or self.estimate_seconds <= self.budget

    def describe(self) -> str:
        images = f", synthetic images 1/{self.shrink} the side" if self.shrink > 1 else ""
        head = (f"plan: {self.steps} steps x {self.runs} runs at batch {self.batch_size}{images}, "
                f"~{self.step_seconds:.2g} s per run-step; estimate {self.estimate_seconds:.0f} s")
        if self.budget is None:
            return head
        verdict = "within" if self.fits else "OVER (the fewest steps that still exercise the schedule)"
        return f"{head} ({verdict} the budget of {self.budget:.0f} s)"


def time_step(step: Callable[[Size], object], size: Size) -> float:
    """Seconds of one training step at `size`: the second of two (the first warms allocators and caches)."""
    step(size)
    start = time.perf_counter()
    step(size)
    return time.perf_counter() - start


def plan_steps(budget: float, spent: float, runs: int, max_steps: int, sizes: list[DataSize], timed: DataSize,
               timed_seconds: float) -> StepPlan:
    """The most steps (<= max_steps) that fit at the first of `sizes` (in order of preference) where at least
    MIN_STEPS fit; the last size when none does."""
    available = max(budget - spent, 0.0) * SAFETY
    for size in sizes:
        per_step = timed_seconds * size.cost(timed)
        fit = math.floor(available / (per_step * runs) - END_STEPS)
        if fit >= min(MIN_STEPS, max_steps) or size == sizes[-1]:
            steps = max(min(fit, max_steps), min(MIN_STEPS, max_steps))
            return StepPlan(steps, size.batch, per_step, runs, spent, budget, size.shrink)
    raise ValueError("plan_steps needs at least one data size")


def data_sizes(batch: int, batch_fixed: bool, side: int | None) -> list[DataSize]:
    """Sizes in order of preference: the batch halved down to MIN_BATCH, then image sides halved (synthetic)."""
    if batch_fixed:
        return [DataSize(batch)]
    sizes = [DataSize(batch)]
    while sizes[-1].batch // 2 >= MIN_BATCH:
        sizes.append(DataSize(sizes[-1].batch // 2))
    shrink = 2
    while side is not None and side // shrink >= MIN_SIDE:
        sizes.append(DataSize(sizes[-1].batch, shrink))
        shrink *= 2
    return sizes
