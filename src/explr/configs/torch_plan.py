"""Assemble a TrainingPlan from torch optimizer/scheduler specs plus training-length facts.

Shared by the Lightning CLI and Hydra adapters, which differ only in how they name classes
(`class_path` + `init_args` vs `_target_`) and where the trainer facts live.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from explr.configs.adapter import LENGTH_FLAGS, ReadOptions, flag_length, late_milestones, validated_schedule
from explr.configs.source import ConfigSource, KeyPath
from explr.configs.torch_spec import ClassSpec, Facts, StepContext, in_iterations, read_optimizer, read_scheduler
from explr.errors import ConfigError
from explr.lr_schedule import LRSchedule
from explr.plan import DecayPolicy, TrainingPlan


@dataclass(slots=True)
class Training:
    """How long and how the run trains, each value with the key path it came from (None: not in the config)."""

    iters_per_epoch: int
    epochs: int | None = None
    max_steps: int | None = None
    interval: str = "epoch"  # how the torch scheduler is stepped
    precision: str = "32"
    grad_clip_norm: float | None = None
    grad_clip_key: str | None = None
    ema: bool = False
    paths: dict[str, KeyPath] = field(default_factory=dict)


def total_iterations(source: ConfigSource, training: Training, options: ReadOptions) -> int:
    """--total-iters / --epochs when given, else the first of max_steps and max_epochs to end training."""
    given = flag_length(options, training.iters_per_epoch)
    if given is not None:
        return given
    epochs = training.epochs if training.epochs and training.epochs > 0 else None  # -1: "until max_steps"
    candidates = [n for n in (training.max_steps, epochs * training.iters_per_epoch if epochs else None) if n]
    if not candidates:
        raise ConfigError(f"{source.path}: the length of training is unknown; set trainer.max_epochs (or max_steps), "
                          f"or {LENGTH_FLAGS}")
    return min(candidates)


def build_torch_plan(source: ConfigSource, fmt: str, optimizer: ClassSpec, scheduler: ClassSpec | None,
                     training: Training, options: ReadOptions) -> TrainingPlan:
    facts = Facts()
    read_optimizer(source, optimizer, facts)
    total = total_iterations(source, training, options)
    step_every = training.iters_per_epoch if training.interval == "epoch" else 1
    lr = float(facts.values["lr"])
    kwargs: dict = {"decay": "constant"}
    if scheduler is not None:
        ctx = StepContext(lr, math.ceil(total / step_every))
        kwargs = read_scheduler(source, scheduler, facts, ctx)
    read = LRSchedule(base_lr=lr, total_iters=total, **in_iterations(kwargs, step_every))
    schedule = validated_schedule(read, f"{source.where((scheduler or optimizer).args_path)}: ")
    locations = dict(facts.locations)
    locations.update({k: source.location(p) for k, p in training.paths.items()})
    return TrainingPlan(
        format=fmt, path=str(source.path), optimizer=facts.values["optimizer"],
        momentum=float(facts.values["momentum"]), dampening=float(facts.values["dampening"]),
        nesterov=bool(facts.values["nesterov"]), decay=DecayPolicy(float(facts.values["weight_decay"])),
        lr=schedule, iters_per_epoch=training.iters_per_epoch,
        epochs=total / training.iters_per_epoch, precision=training.precision,
        grad_clip_norm=training.grad_clip_norm, grad_clip_key=training.grad_clip_key, ema=training.ema,
        scheduler_interval="step" if step_every == 1 else "epoch", ignored_milestones=late_milestones(read),
        locations=locations)

