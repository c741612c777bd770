"""timm: a converted args.yaml trains with timm's own train.py, one line changed.

    lr_scheduler, num_epochs = explr.integrations.timm.create_scheduler(optimizer, model, args, updates_per_epoch)

replaces `create_scheduler_v2(...)`. timm's optimizer (create_optimizer_v2: its own weight-decay groups)
is kept; the scale-invariant parameters named by the config's `explr:` key (train.py's
`parser.set_defaults(**cfg)` puts it on `args`) are split off onto explr.TEXP, which moves the LR
with every optimizer step. timm's loop still calls `lr_scheduler.step(epoch)` (a no-op here) and
`step_update(num_updates)` after every update, counting updates the AMP GradScaler skipped (NativeScaler
does not call optimizer.step() on an overflow): there TEXP's LR index catches up with num_updates. `create_optimizer_and_scheduler` does both lines
for scripts that build the two together (it imports timm).
"""
from __future__ import annotations

from typing import Any

import torch
import yaml
from torch import nn

from explr.configs.adapter import ReadOptions
from explr.configs.source import ConfigSource
from explr.configs.timm import ADAPTER
from explr.errors import ConfigError
from explr.integrations.scheduler import bind_si_groups, unwrapped
from explr.schedule.runtime import TEXP


class TimmTEXP:
    """timm's scheduler interface over explr.TEXP (stepped by an optimizer step hook, per update)."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Any, approximate: bool = False):
        self.texp = TEXP(optimizer, schedule, approximate=approximate)
        optimizer.register_step_post_hook(lambda *_: self.texp.step())

    def step(self, epoch: int | None = None, metric: Any = None) -> None:
        """timm calls this at each epoch end; the LR already moved with every update."""

    def step_update(self, num_updates: int, metric: Any = None) -> None:
        """timm calls this after each update; the step hook already moved the LR, unless AMP skipped the update."""
        self.texp.catch_up(num_updates, most=1)

    def state_dict(self) -> dict:
        return self.texp.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.texp.load_state_dict(state_dict)


def plan_of(args: Any, updates_per_epoch: int):
    """The TrainingPlan of timm's parsed arguments, read by explr's timm reader (as `explr convert` did)."""
    values = {k: v for k, v in vars(args).items() if k != "explr"}
    text = yaml.safe_dump(values, default_flow_style=False)  # as train.py saves args.yaml
    return ADAPTER.read(ConfigSource.parse(text, "<timm args>"), ReadOptions(iters_per_epoch=updates_per_epoch))


def _settings(args: Any) -> dict:
    settings = getattr(args, "explr", None)
    if not isinstance(settings, dict) or ("si" in settings) == ("lock" in settings):
        raise ConfigError("timm args: `explr:` needs exactly one of si: [names] or lock: PATH; train with the "
                          "args.yaml `explr convert` wrote (train.py -c FILE)")
    return settings


def create_scheduler(optimizer: torch.optim.Optimizer, model: nn.Module, args: Any,
                     updates_per_epoch: int) -> tuple[TimmTEXP, int]:
    """(scheduler, num_epochs) for timm's train.py; splits the SI parameters out of timm's optimizer groups."""
    settings = _settings(args)
    plan = plan_of(args, updates_per_epoch)
    if any(g.get("lr_scale", 1.0) != 1.0 for g in optimizer.param_groups):
        raise ConfigError("timm args: layer_decay / lr_scale groups are not modelled by explr; drop layer_decay")
    bind_si_groups(optimizer, unwrapped(model), si=settings.get("si"), lock=settings.get("lock"))
    scheduler = TimmTEXP(optimizer, plan.lr, approximate=bool(settings.get("approximate", False)))
    return scheduler, round(plan.total_iters / updates_per_epoch)


def create_optimizer_and_scheduler(model: nn.Module, args: Any,
                                   updates_per_epoch: int) -> tuple[torch.optim.Optimizer, TimmTEXP, int]:
    """timm's optimizer (create_optimizer_v2 from the args) and explr's scheduler, in one call."""
    from timm.optim import create_optimizer_v2, optimizer_kwargs

    optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args))
    scheduler, num_epochs = create_scheduler(optimizer, model, args, updates_per_epoch)
    return optimizer, scheduler, num_epochs
