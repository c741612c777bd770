"""Where TEXP reads the *original* LR of iteration i, per optimizer param group.

Three kinds of `schedule` are accepted (told apart by annotations, else by one call with a throwaway
optimizer: only a factory returns an LRScheduler):
- an LRSchedule (explr's own description) or any function i -> lr: the same LR for every group;
- a factory `lambda opt: torch.optim.lr_scheduler.X(opt, ...)`: the torch scheduler is built on a
  throwaway optimizer with the user's groups' initial LRs and stepped in lockstep, so each group
  gets exactly the LR torch would have given it.
"""
from __future__ import annotations

import inspect
import math
import typing
from numbers import Real
from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from explr.errors import ConfigError, UnsupportedError, quote_error
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
                 momenta: list[float], first: tuple[torch.optim.Optimizer, Any] | None = None):
        self.factory, self.initial_lrs, self.momenta = factory, initial_lrs, momenta
        self._adopt(*(first or self._build()))
        self.lrs_at(0)  # a scheduler that moves momentum at construction is refused before TEXP writes anything

    def _build(self) -> tuple[torch.optim.Optimizer, Any]:
        opt = throwaway_optimizer(self.initial_lrs, self.momenta)
        return opt, self.factory(opt)

    def _adopt(self, opt: torch.optim.Optimizer, sched: Any) -> None:
        if not isinstance(sched, LRScheduler) or isinstance(sched, ReduceLROnPlateau):
            raise ConfigError(f"TEXP: the schedule, called with an optimizer, returned {type(sched).__name__}: a "
                              "factory must build a torch LR scheduler that depends only on the step (not "
                              "ReduceLROnPlateau), an LR function i -> lr must return a number")
        if _cycles_momentum(sched):
            raise UnsupportedError(f"TEXP: the torch scheduler {type(sched).__name__} also changes momentum "
                                   "(cycle_momentum=True); the phantom needs the real momentum: pass cycle_momentum=False")
        self._opt, self._sched = opt, sched
        self._pos = 0  # iteration whose LR the throwaway optimizer currently holds

    def lrs_at(self, i: int) -> list[float]:
        if i < self._pos:
            self._adopt(*self._build())
        while self._pos < i:
            self._sched.step()
            self._pos += 1
        groups = self._opt.param_groups
        if any(g["momentum"] != m for g, m in zip(groups, self.momenta)):
            raise UnsupportedError("TEXP: the torch scheduler also changes momentum (e.g. cycle_momentum=True); "
                                   "the phantom needs the real momentum: pass cycle_momentum=False")
        return [float(g["lr"]) for g in groups]


def throwaway_optimizer(initial_lrs: list[float], momenta: list[float]) -> torch.optim.Optimizer:
    """An SGD with the user's groups' initial LRs and momenta, holding one dummy parameter per group."""
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr, "momentum": m}
              for lr, m in zip(initial_lrs, momenta)]
    opt = torch.optim.SGD(groups, lr=initial_lrs[0])
    opt._opt_called = True  # type: ignore[attr-defined]  # no steps on the throwaway: silence torch's ordering warning
    return opt


def _cycles_momentum(sched: Any) -> bool:
    """CyclicLR/OneCycleLR with cycle_momentum=True, also inside SequentialLR/ChainedScheduler."""
    inner = getattr(sched, "_schedulers", ())
    return bool(getattr(sched, "cycle_momentum", False)) or any(_cycles_momentum(s) for s in inner)


def _is_lr_value(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and float(value) >= 0


def _declared_kind(schedule: Callable) -> str | None:
    """"factory" / "function" when the signature says so (annotations), else None."""
    try:
        params = [p for p in inspect.signature(schedule).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        hints = typing.get_type_hints(schedule) if params else {}
    except (TypeError, ValueError, NameError):  # builtins without signature, unresolvable annotations
        return None
    first = hints.get(params[0].name) if params else None
    returns = hints.get("return")
    if _subclass(first, torch.optim.Optimizer) or _subclass(returns, LRScheduler):
        return "factory"
    if _subclass(first, Real) or first is int or _subclass(returns, Real) or returns is float:
        return "function"
    return None


def _subclass(hint: Any, base: type) -> bool:
    return isinstance(hint, type) and issubclass(hint, base)


def _factory_probe(schedule: Callable, initial: list[float], momenta: list[float]):
    """Call `schedule` as a factory, with the very optimizer a factory is meant to get: (opt, result) or the
    exception. Only a factory can return an LRScheduler; an LR function given an optimizer fails on its first
    arithmetic (TypeError) or returns a number."""
    opt = throwaway_optimizer(initial, momenta)
    try:
        return opt, schedule(opt)
    except Exception as exc:  # noqa: BLE001 - only means "not a working factory"; reported if 0 fails too
        return exc


def lr_source(schedule: Any, optimizer: torch.optim.Optimizer) -> UniformLR | RecordedTorchLR:
    """Classify and validate `schedule`; raise ConfigError naming what was given and what is accepted.

    The kind comes from annotations when present, else from one call with a throwaway optimizer (what a
    factory expects): a factory is never called with an iteration number it cannot take."""
    groups = optimizer.param_groups
    if isinstance(schedule, LRSchedule):
        try:
            schedule.validate()
        except ValueError as exc:
            raise ConfigError(f"TEXP: invalid LRSchedule: {exc}") from None
        return UniformLR(schedule.lr_at, len(groups))
    if not callable(schedule):
        raise ConfigError(f"TEXP: schedule of type {type(schedule).__name__} is not {_KINDS}")
    initial = [float(g.get("initial_lr", g["lr"])) for g in groups]
    momenta = [float(g.get("momentum", 0.0)) for g in groups]
    kind = _declared_kind(schedule)
    if kind == "factory":
        return RecordedTorchLR(schedule, initial, momenta)
    probe = _factory_probe(schedule, initial, momenta) if kind is None else None
    if isinstance(probe, tuple) and not isinstance(probe[1], Real):
        return RecordedTorchLR(schedule, initial, momenta, first=probe)  # a non-scheduler gets a clear error there
    return UniformLR(_checked_function(schedule, probe if isinstance(probe, Exception) else None), len(groups))


def _checked_function(schedule: Callable, factory_error: Exception | None) -> Callable[[int], float]:
    try:
        value = schedule(0)
    except Exception as exc:  # noqa: BLE001 - user code: one line naming what it raised
        tried = (f"neither a factory (given an optimizer it raised {quote_error(factory_error)}) nor "
                 if factory_error is not None else "not ")
        raise ConfigError(f"TEXP: the schedule is {tried}an LR function (given 0 it raised {quote_error(exc)}); "
                          f"it must be {_KINDS}") from None
    if not _is_lr_value(value):
        raise ConfigError(f"TEXP: schedule(0) returned {value!r}; the schedule must be {_KINDS} (LR >= 0)")
    return schedule
