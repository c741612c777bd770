"""detectron2: a converted config trains with two changes to a project's train_net.py.

    from explr.integrations.detectron2 import ExplrTrainerMixin, add_explr_config
    class Trainer(ExplrTrainerMixin, DefaultTrainer): ...      # build_optimizer + build_lr_scheduler
    add_explr_config(cfg)                                       # before cfg.merge_from_file(converted.yaml)

That is detectron2's convention for projects (add_*_config, Trainer classmethods). The schedule is read
from the merged cfg's SOLVER keys by explr's detectron2 reader (the same reading `explr convert` did);
the EXPLR node says which parameters are scale-invariant. The optimizer is SGD with detectron2's
weight-decay policy as that reader gives it (WEIGHT_DECAY, WEIGHT_DECAY_NORM, WEIGHT_DECAY_BIAS); the
LR moves with every optimizer step, so detectron2's LRScheduler hook calling `scheduler.step()` is harmless.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explr.configs.adapter import ReadOptions
from explr.configs.detectron2 import ADAPTER
from explr.configs.source import ConfigSource
from explr.errors import ConfigError
from explr.integrations.native import build_from_plan
from explr.integrations.scheduler import SCHEDULER_ATTR
from explr.integrations.yacs import add_explr_config, si_source

__all__ = ["ExplrTrainerMixin", "add_explr_config", "plan_of"]


def plan_of(cfg: Any):
    """The TrainingPlan of a merged detectron2 cfg (its SOLVER keys), read by explr's detectron2 reader."""
    return ADAPTER.read(ConfigSource.parse(cfg.dump(), "<detectron2 cfg>"), ReadOptions())


class ExplrTrainerMixin:
    """Put first in the bases of a detectron2 trainer: class Trainer(ExplrTrainerMixin, DefaultTrainer)."""

    @classmethod
    def build_optimizer(cls, cfg: Any, model: nn.Module) -> torch.optim.Optimizer:
        node, plan = cfg.get("EXPLR"), plan_of(cfg)
        if plan.grad_clip_norm is not None:  # detectron2 wraps its optimizer to clip; this one would not
            raise ConfigError("ExplrTrainerMixin: SOLVER.CLIP_GRADIENTS is enabled, and the mixin's optimizer does "
                              "not clip; disable it (clipping is not exact after conversion anyway)")
        optimizer, _ = build_from_plan(model, plan, approximate=bool(node and node.APPROXIMATE),
                                       where="cfg.SOLVER", **si_source(node))
        return optimizer

    @classmethod
    def build_lr_scheduler(cls, cfg: Any, optimizer: torch.optim.Optimizer):
        scheduler = getattr(optimizer, SCHEDULER_ATTR, None)
        if scheduler is None:
            raise ConfigError("ExplrTrainerMixin.build_lr_scheduler: the optimizer was not built by "
                              "ExplrTrainerMixin.build_optimizer; put the mixin first in the trainer's bases")
        return scheduler
