"""`--budget SECONDS`: choose the check's steps (and, for synthetic data, its batch size) from a timed step.

The whole check should end within the budget: what was spent before training (load, audit, setup) is
subtracted, the rest is shared by `runs` training runs stepping in lockstep plus the fixed end cost (the
last probe forward and the eval-mode comparison, about END_STEPS steps' worth). One training step is timed
on a throwaway copy at a small batch; bigger batches are extrapolated linearly (small batches use a CPU
less well, so this over-, not under-estimates). The batch is halved, down to MIN_BATCH, until MIN_STEPS fit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

DEFAULT_BUDGET = 90.0  # seconds: a CI job step, and a user waiting at a terminal
MIN_STEPS = 24  # below this a compressed schedule barely shows its phases (MIN_GAP steps each)
MIN_BATCH = 2  # BatchNorm in train mode needs more than one value per channel
END_STEPS = 3.0  # last probe + eval-mode recalibration and comparison, in training steps of one run
SAFETY = 0.9  # share of the remaining time planned for, so noise on a shared machine stays inside


@dataclass(frozen=True, slots=True)
class StepPlan:
    steps: int
    batch_size: int
    step_seconds: float  # one training step of one run at batch_size (extrapolated)
    runs: int
    spent_seconds: float  # before training: load, audit, setup, the timing itself
    budget: float | None

    @property
    def estimate_seconds(self) -> float:
        return self.spent_seconds + self.step_seconds * self.runs * (self.steps + END_STEPS)

    @property
    def fits(self) -> bool:
        return self.budget is None or self.estimate_seconds <= self.budget

    def describe(self) -> str:
        head = (f"plan: {self.steps} steps x {self.runs} runs at batch {self.batch_size}, "
                f"~{self.step_seconds:.2g} s per run-step; estimate {self.estimate_seconds:.0f} s")
        if self.budget is None:
            return head
        verdict = "within" if self.fits else "OVER (the fewest steps that still exercise the schedule)"
        return f"{head} ({verdict} the budget of {self.budget:.0f} s)"


def time_step(step: Callable[[int], None], batch: int) -> float:
    """Seconds of one training step at `batch`: the second of two (the first warms allocators and caches)."""
    step(batch)
    start = time.perf_counter()
    step(batch)
    return time.perf_counter() - start


def plan_steps(budget: float, spent: float, runs: int, max_steps: int, batch: int, timed_batch: int,
               timed_seconds: float, batch_fixed: bool) -> StepPlan:
    """The most steps (<= max_steps) that fit; the batch shrinks first when even MIN_STEPS would not fit."""
    available = max(budget - spent, 0.0) * SAFETY
    candidates = [batch] if batch_fixed else _halvings(batch)
    for size in candidates:
        per_step = timed_seconds * size / timed_batch
        fit = math.floor(available / (per_step * runs) - END_STEPS)
        if fit >= min(MIN_STEPS, max_steps) or size == candidates[-1]:
            steps = max(min(fit, max_steps), min(MIN_STEPS, max_steps))
            return StepPlan(steps, size, per_step, runs, spent, budget)
    raise AssertionError("unreachable: the last candidate always returns")


def _halvings(batch: int) -> list[int]:
    sizes = [batch]
    while sizes[-1] // 2 >= MIN_BATCH:
        sizes.append(sizes[-1] // 2)
    return sizes
