"""`explr.integrations.build`: optimizer + TEXP from an explr-native plan (docs/formats.md).

For training code of one's own, an explr plan (explr's YAML format, converted) is run with a few lines;
build_from_plan is the same from a TrainingPlan (the detectron2 integration uses it):

    optimizer, scheduler = explr.integrations.build(model, "train.explr.yaml", example_inputs=batch)
    ...  loss.backward(); optimizer.step()   # the LR follows every optimizer step (a step hook)
    scheduler.step()   # where the original loop stepped its scheduler: under AMP it carries skipped steps
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explr.configs.adapter import ReadOptions
from explr.configs.explr_format import ADAPTER, read_sections
from explr.configs.source import ConfigSource
from explr.errors import ConfigError
from explr.integrations.scheduler import AUDIT, TEXPScheduler
from explr.lr_schedule import schedule_args

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _decay_groups(model: nn.Module, plan) -> list[dict]:
    """The original weight-decay policy per parameter kind (norm / bias / other)."""
    from explr.schedule.groups import param_kinds

    kinds = param_kinds(model, plan.decay.norm_layers)
    buckets: dict[float, list] = {}
    for name, param in model.named_parameters():
        buckets.setdefault(plan.decay.for_kind(kinds[name]), []).append(param)
    return [{"params": params, "weight_decay": wd} for wd, params in buckets.items()]


def build(model: nn.Module, plan_path: str, example_inputs: Any = None,
          options: ReadOptions = ReadOptions()) -> tuple[torch.optim.Optimizer, TEXPScheduler]:
    """The converted run of an explr plan: (optimizer, scheduler), SI parameters bound and on TEXP."""
    source = ConfigSource.load(plan_path)
    plan = ADAPTER.read(source, options)
    texp = read_sections(source)["texp"]
    si = texp["params"] if texp["si"] in ("model", "names") else AUDIT
    return build_from_plan(model, plan, si=si, lock=texp["lock"], approximate=texp["exact"] is False,
                           example_inputs=example_inputs, where=source.where(("optimizer", "name")))


def original_optimizer(model: nn.Module, plan, where: str = "") -> torch.optim.Optimizer:
    """The optimizer the plan describes, with its weight-decay policy per parameter kind (before any split)."""
    if plan.optimizer not in OPTIMIZERS:
        raise ConfigError(f"{where or plan.path}: explr builds {', '.join(OPTIMIZERS)} optimizers, not "
                          f"{plan.optimizer!r}")
    hyper = {"lr": plan.lr.base_lr}
    if plan.optimizer == "sgd":
        hyper.update(momentum=plan.momentum, dampening=plan.dampening, nesterov=plan.nesterov)
    return OPTIMIZERS[plan.optimizer](_decay_groups(model, plan), **hyper)


def build_from_plan(model: nn.Module, plan, si: Any = AUDIT, lock: str | None = None, approximate: bool = False,
                    example_inputs: Any = None, where: str = "") -> tuple[torch.optim.Optimizer, TEXPScheduler]:
    """(optimizer, scheduler) of a TrainingPlan's converted run: SI parameters split off and on TEXP, the LR
    moving with every optimizer.step() (a step hook); the scheduler's own step(), called where the original loop
    called it, moves the LR index over optimizer steps an AMP GradScaler skipped."""
    optimizer = original_optimizer(model, plan, where)
    scheduler = TEXPScheduler(optimizer, schedule_args(plan.lr), si=si, lock=lock, approximate=approximate)
    scheduler.bind(model, example_inputs)
    return optimizer, scheduler
