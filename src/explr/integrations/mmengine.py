"""mmengine: the classes a converted OpenMMLab config names (configs/mmengine_write.py).

- `ExplrOptimWrapperConstructor` (OPTIM_WRAPPER_CONSTRUCTORS): mmengine's DefaultOptimWrapperConstructor
  builds the original param groups (paramwise_cfg, custom_keys, lr/decay multipliers, exactly as
  mmengine does); explr then splits each group into its scale-invariant part (weight decay 0, tagged
  for TEXP, original decay kept for the phantom) and the rest. Which parameters are SI comes from
  `explr=dict(lock=PATH)` or `explr=dict(si=[names])` in `optim_wrapper`.
- `ExplrTEXPScheduler` (PARAM_SCHEDULERS): explr.TEXP as an mmengine parameter scheduler, stepped
  per iteration by ParamSchedulerHook. Each group follows the converted schedule from its own
  initial LR (lr_mult, bias_lr_mult, auto_scale_lr), eta_min kept absolute as mmengine keeps it.

Importing this module registers both (the converted config's `custom_imports` does it).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mmengine.optim import BaseOptimWrapper, DefaultOptimWrapperConstructor
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from explr.errors import ConfigError
from explr.integrations.scheduler import bind_si_groups, schedule_from_args, unwrapped
from explr.lr_schedule import LRSchedule
from explr.schedule.groups import SI_TAG
from explr.schedule.runtime import TEXP

SETTINGS = ("si", "lock", "approximate")


@OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
class ExplrOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """DefaultOptimWrapperConstructor, then the SI parameters of every group split off for TEXP."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.explr = dict(optim_wrapper_cfg.pop("explr", None) or {})
        unknown = sorted(set(self.explr) - set(SETTINGS))
        if unknown or not ("si" in self.explr) ^ ("lock" in self.explr):
            raise ConfigError(f"{type(self).__name__}: optim_wrapper.explr needs exactly one of si=[names] or "
                              f"lock=PATH (got {sorted(self.explr)}); run `explr convert` again")
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: nn.Module) -> BaseOptimWrapper:
        wrapper = super().__call__(model)
        bind_si_groups(wrapper.optimizer, unwrapped(model), si=self.explr.get("si"), lock=self.explr.get("lock"))
        return wrapper


def _factor(schedule: LRSchedule) -> Callable[[int], float]:
    """LambdaLR's multiplier of the group's initial LR: the group's own schedule over its base."""
    return lambda i: schedule.lr_at(i) / schedule.base_lr


def _torch_optimizer(optimizer: Any):
    return optimizer.optimizer if isinstance(optimizer, BaseOptimWrapper) else optimizer


@PARAM_SCHEDULERS.register_module(force=True)
class ExplrTEXPScheduler(_ParamScheduler):
    """explr.TEXP, stepped after every iteration: SI groups on η_t/(s_{t-1}s_t), the others on η_t."""

    def __init__(self, optimizer: Any, schedule: dict, approximate: bool = False, scale_eta_min: bool = False,
                 iters_per_epoch: int | None = None, by_epoch: bool = False,
                 begin: int = 0, end: int = INF, last_step: int = -1, epoch_length: int | None = None,
                 verbose: bool = False):
        if by_epoch:
            raise ConfigError(f"{type(self).__name__}: by_epoch must be False (TEXP steps every iteration)")
        if not any(g.get(SI_TAG) for g in optimizer.param_groups):
            raise ConfigError(f"{type(self).__name__}: no param group is split for TEXP; set "
                              f"optim_wrapper.constructor='{ExplrOptimWrapperConstructor.__name__}'")
        if iters_per_epoch is not None and epoch_length is not None and iters_per_epoch != epoch_length:
            raise ConfigError(f"{type(self).__name__}: the config was converted for {iters_per_epoch} iterations per "
                              f"epoch, but the train dataloader has {epoch_length} (other GPU count or batch size?); "
                              f"run `explr convert --iters-per-epoch {epoch_length}` again")
        self.schedule = schedule_from_args(schedule)
        self.approximate, self.scale_eta_min = approximate, scale_eta_min
        self.texp: TEXP | None = None
        super().__init__(optimizer, "lr", begin=0, end=INF, last_step=last_step, by_epoch=False, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, epoch_length: int | None = None, by_epoch: bool = True, begin: int = 0,
                              end: int = INF, **kwargs: Any) -> "ExplrTEXPScheduler":
        """mmengine's convert_to_iter_based path, the one that passes the dataloader length: TEXP is per iteration
        anyway, so this only checks that length against the one the config was converted for."""
        return cls(epoch_length=epoch_length, by_epoch=False, **kwargs)

    def _group_schedule(self, opt: Any) -> LambdaLR:
        """Each group's original LR, as mmengine's chained schedulers give it: the schedule from the group's
        own initial LR (lr_mult, auto_scale_lr) with eta_min absolute (CosineAnnealingLR, PolyLR) unless the
        config gave a ratio (eta_min_ratio; ExponentialLR's floor is a ratio too)."""
        if not isinstance(opt, Optimizer):  # explr.TEXP tells a factory from an LR function this way
            raise TypeError(f"{opt!r} is not an optimizer")
        base = self.schedule
        proportional = self.scale_eta_min or base.decay == "exp"
        lambdas: list[Callable[[int], float]] = []
        for group in opt.param_groups:
            initial = float(group["lr"])
            if base.decay == "chain":  # the replay itself keeps each scheduler's eta_min absolute or relative
                lambdas.append(_factor(dataclasses.replace(base, base_lr=initial)))
                continue
            eta_min = base.eta_min * initial / base.base_lr if proportional else base.eta_min
            lambdas.append(_factor(dataclasses.replace(base, base_lr=initial, eta_min=eta_min)))
        return LambdaLR(opt, lambdas)

    def step(self) -> None:
        """The first call (from __init__) starts TEXP at iteration 0; each later one moves one iteration."""
        if self.texp is None:
            self.texp = TEXP(_torch_optimizer(self.optimizer), self._group_schedule, approximate=self.approximate)
        else:
            self.texp.step()
        self._global_step += 1
        self.last_step += 1
        self._last_value = [group["lr"] for group in self.optimizer.param_groups]

    def _started(self) -> TEXP:
        if self.texp is None:  # __init__ starts it: only a half-built scheduler gets here
            raise ConfigError(f"{type(self).__name__}: not started")
        return self.texp

    def state_dict(self) -> dict:
        return {"texp": self._started().state_dict(), "last_step": self.last_step, "_global_step": self._global_step}

    def load_state_dict(self, state_dict: dict) -> None:
        self._started().load_state_dict(state_dict["texp"])
        self.last_step, self._global_step = state_dict["last_step"], state_dict["_global_step"]
        self._last_value = [group["lr"] for group in self.optimizer.param_groups]
