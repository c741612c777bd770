"""pycls: a converted config trains with two lines changed.

    explr.integrations.pycls.add_explr_config(cfg)          # before config.load_cfg / merge_from_file
    optimizer = explr.integrations.pycls.construct_optimizer(model)   # instead of optim.construct_optimizer

The optimizer is pycls's (pycls/core/optimizer.py construct_optimizer: SGD, parameters whose name
contains "bn" on BN.CUSTOM_WEIGHT_DECAY when BN.USE_CUSTOM_WEIGHT_DECAY), with the scale-invariant
parameters named by cfg.EXPLR split onto explr.TEXP. pycls's trainer still writes the epoch's LR
into every group (optim.set_lr) at each epoch start: a step pre-hook puts TEXP's LRs back before
every step, and a post-hook moves them each iteration, so that line needs no change. Under AMP
(TRAIN.MIXED_PRECISION) the GradScaler skips an overflowed optimizer step, hooks and all, while the
original's LR, set per epoch, follows the iteration count; pycls calls optimizer.zero_grad() once at
the start of every iteration, so that call moves TEXP's LR index over any skipped step first.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explr.configs.adapter import ReadOptions
from explr.configs.pycls import ADAPTER
from explr.configs.source import ConfigSource
from explr.errors import ConfigError
from explr.integrations.scheduler import bind_si_groups, unwrapped
from explr.integrations.yacs import add_explr_config, si_source
from explr.schedule.runtime import TEXP

__all__ = ["add_explr_config", "construct_optimizer", "pycls_optimizer"]


def _global_cfg() -> Any:
    try:
        from pycls.core.config import cfg
    except ImportError:
        raise ConfigError("construct_optimizer(model) reads pycls's global cfg; pass cfg= when pycls is not "
                          "importable") from None
    return cfg


def pycls_optimizer(model: nn.Module, cfg: Any) -> torch.optim.SGD:
    """pycls/core/optimizer.py construct_optimizer, for the SGD configs explr converts."""
    optim = cfg.OPTIM
    if str(optim.OPTIMIZER).lower() != "sgd":
        raise ConfigError(f"cfg.OPTIM.OPTIMIZER={optim.OPTIMIZER!r}: explr's pycls integration builds SGD")
    named = list(model.named_parameters())
    if cfg.BN.USE_CUSTOM_WEIGHT_DECAY:
        groups = [{"params": [p for n, p in named if "bn" in n], "weight_decay": cfg.BN.CUSTOM_WEIGHT_DECAY},
                  {"params": [p for n, p in named if "bn" not in n], "weight_decay": optim.WEIGHT_DECAY}]
    else:
        groups = [{"params": [p for _, p in named], "weight_decay": optim.WEIGHT_DECAY}]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=optim.BASE_LR, momentum=optim.MOMENTUM,
                           weight_decay=optim.WEIGHT_DECAY, dampening=optim.DAMPENING, nesterov=optim.NESTEROV)


def construct_optimizer(model: nn.Module, cfg: Any = None, iters_per_epoch: int | None = None) -> torch.optim.SGD:
    """pycls's optimizer with the SI parameters on TEXP (cfg: pycls's global cfg unless given)."""
    cfg = _global_cfg() if cfg is None else cfg
    plan = ADAPTER.read(ConfigSource.parse(cfg.dump(), "<pycls cfg>"), ReadOptions(iters_per_epoch=iters_per_epoch))
    node = cfg.get("EXPLR")
    optimizer = pycls_optimizer(model, cfg)
    bind_si_groups(optimizer, unwrapped(model), **si_source(node))
    texp = TEXP(optimizer, plan.lr, approximate=bool(node.APPROXIMATE))
    optimizer.register_step_pre_hook(lambda *_: _restore(optimizer, texp))  # undo optim.set_lr
    optimizer.register_step_post_hook(lambda *_: texp.step())
    _count_iterations(optimizer, texp)
    return optimizer


def _count_iterations(optimizer: torch.optim.Optimizer, texp: TEXP) -> None:
    """Iteration i of pycls's train_epoch starts with zero_grad(): by then TEXP's LR index must be i."""
    zero_grad, started = optimizer.zero_grad, [-1]

    def zero_grad_at_iteration_start(*args: Any, **kwargs: Any) -> None:
        started[0] += 1
        texp.catch_up(started[0], most=1)
        zero_grad(*args, **kwargs)

    optimizer.zero_grad = zero_grad_at_iteration_start  # type: ignore[method-assign]


def _restore(optimizer: torch.optim.Optimizer, texp: TEXP) -> None:
    for group, lr in zip(optimizer.param_groups, texp.get_last_lr(), strict=True):
        group["lr"] = lr
