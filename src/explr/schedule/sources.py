"""Where TEXP reads the *original* LR of iteration i, per optimizer param group.

Three kinds of `schedule` are accepted:
- an LRSchedule (explr's own description) or any function i -> lr: the same LR for every group;
- a factory `lambda opt: torch.optim.lr_scheduler.X(opt, ...)`: the torch scheduler is built on a
  throwaway optimizer with the user's groups' initial LRs and stepped in lockstep, so each group
  gets exactly the LR torch would have given it.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from explr.errors import ConfigError, UnsupportedError
from explr.lr_schedule import LRSchedule

_KINDS = "an LRSchedule, a function i -> lr, or a factory opt -> torch LR scheduler"


class UniformLR:
    """One LR function for all groups."""

    def __init__(self, fn: Callable[[int], float], n_groups: int):
        self.fn, self.n_groups = fn, n_groups

    def lrs_at(self, i: int) -> list[float]:
        return [self.fn(i)] * self.n_groups


class RecordedTorchLR:
    """Replays a torch LR scheduler on a throwaway optimizer; moves forward step by step, rebuilds to go back."""

    def __init__(self, factory: Callable[[torch.optim.Optimizer], LRScheduler], initial_lrs: list[float],
                 momenta: list[float]):
        self.factory, self.initial_lrs, self.momenta = factory, initial_lrs, momenta
        self._rebuild()

    def _rebuild(self) -> None:
        groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr, "momentum": m}
                  for lr, m in zip(self.initial_lrs, self.momenta)]
        self._opt = torch.optim.SGD(groups, lr=self.initial_lrs[0])
        self._opt._opt_called = True  # type: ignore[attr-defined]  # no optimizer steps on the throwaway: silence torch's ordering warning
        self._sched = self.factory(self._opt)
        if not isinstance(self._sched, LRScheduler) or isinstance(self._sched, ReduceLROnPlateau):
            raise ConfigError(f"TEXP: the schedule factory returned {type(self._sched).__name__}; it must build a "
                              "torch LR scheduler that depends only on the step (not ReduceLROnPlateau)")
        self._pos = 0  # iteration whose LR the throwaway optimizer currently holds

    def lrs_at(self, i: int) -> list[float]:
        if i < self._pos:
            self._rebuild()
        while self._pos < i:
            self._sched.step()
            self._pos += 1
        groups = self._opt.param_groups
        if any(g["momentum"] != m for g, m in zip(groups, self.momenta)):
            raise UnsupportedError("TEXP: the torch scheduler also changes momentum (e.g. cycle_momentum=True); "
                                   "the phantom needs the real momentum: pass cycle_momentum=False")
        return [float(g["lr"]) for g in groups]


def _is_lr_value(value: Any) -> bool:
    return isinstance(value, Real) and math.isfinite(value) and float(value) >= 0


def lr_source(schedule: Any, optimizer: torch.optim.Optimizer) -> UniformLR | RecordedTorchLR:
    """Classify and validate `schedule`; raise ConfigError naming what was given and what is accepted."""
    groups = optimizer.param_groups
    if isinstance(schedule, LRSchedule):
        try:
            schedule.validate()
        except ValueError as exc:
            raise ConfigError(f"TEXP: invalid LRSchedule: {exc}") from None
        return UniformLR(schedule.lr_at, len(groups))
    if not callable(schedule):
        raise ConfigError(f"TEXP: schedule of type {type(schedule).__name__} is not {_KINDS}")
    try:  # an LR function accepts the iteration; a factory called with 0 raises TypeError (0 is no optimizer)
        probe = schedule(0)
    except TypeError:
        initial = [float(g.get("initial_lr", g["lr"])) for g in groups]
        return RecordedTorchLR(schedule, initial, [float(g.get("momentum", 0.0)) for g in groups])
    if not _is_lr_value(probe):
        raise ConfigError(f"TEXP: schedule(0) returned {probe!r}; the schedule must be {_KINDS} (LR >= 0)")
    return UniformLR(schedule, len(groups))
