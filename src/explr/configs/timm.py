"""timm training arguments (train.py `--config FILE`, or the args.yaml train.py writes) -> TrainingPlan.

Semantics read from huggingface/pytorch-image-models:
- train.py: the YAML sets argparse defaults (so "1e-4" strings are type-converted); the LR scheduler
  is created by create_scheduler_v2 with updates_per_epoch = ceil(len(loader) / grad_accum_steps),
  the train loader drops the last partial batch (timm/data/loader.py: drop_last=is_training); when
  `lr` is unset it is lr_base * global_batch / lr_base_size (sqrt scaling for 'ada*'/'lamb' opts).
- timm/scheduler/scheduler_factory.py: lengths are in epochs; with sched_on_updates they are all
  multiplied by updates_per_epoch and the scheduler is stepped per update, else once per epoch (the
  LR of epoch e is _get_lr(e): train.py calls step(epoch + 1) at the end of each epoch).
- step_lr.py / multistep_lr.py / cosine_lr.py: warmup is a linear ramp from warmup_lr to lr that
  replaces the decay (warmup_blend "ramp_to_base"); step: lr * decay_rate ** (t // decay_t);
  multistep: lr * decay_rate ** bisect_right(milestones, t); cosine: lr_min + (lr - lr_min)/2 *
  (1 + cos(pi t / epochs)), then lr_min for cooldown_epochs (trained epochs = epochs + cooldown).
- timm/optim/optim_factory.py: 'sgd' and 'nesterov' build SGD(nesterov=True), 'momentum' nesterov=False;
  param_groups_weight_decay gives no decay to biases and to every parameter with ndim <= 1.
  Known gap: DecayPolicy has no kind for 1-D parameters that are neither norm nor bias (layer scales):
  timm exempts them, the plan applies `other` to them.
"""
from __future__ import annotations

import json
import math

from explr.configs.adapter import ConfigFacts, ReadOptions, iters_per_epoch, validated_schedule
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError
from explr.lr_schedule import LRSchedule
from explr.plan import DecayPolicy, TrainingPlan

# Defaults that are the same in every timm train.py (argparse defaults, train.py).
STABLE_DEFAULTS = {
    "opt": "sgd", "momentum": 0.9, "clip_grad": None, "clip_mode": "norm", "sched_on_updates": False,
    "warmup_prefix": False, "model_ema": False, "amp": False, "amp_dtype": "float16", "grad_accum_steps": 1,
    "decay_rate": 0.1, "lr_base": 0.1, "lr_base_size": 256, "lr_base_scale": "", "dataset": "",
}
# Defaults that changed between timm versions (train.py history): the config must state them.
VERSIONED_DEFAULTS = {
    "sched": "'step', later 'cosine'", "epochs": "200, later 300", "weight_decay": "1e-4, later 2e-5",
    "warmup_epochs": "3, later 5", "warmup_lr": "1e-4, later 1e-5", "min_lr": "1e-5 / 1e-6, later 0",
    "cooldown_epochs": "10, later 0", "decay_epochs": "30 / 100, later 90",
    "decay_milestones": "[30, 60], later [90, 180, 270]",
}
# optim_factory.py: opt name -> (optimizer family, nesterov). Non-SGD families are read, never exact.
OPTIMIZERS = {
    "sgd": ("sgd", True), "nesterov": ("sgd", True), "momentum": ("sgd", False),
    **{name: (name, False) for name in ("adam", "adamw", "nadam", "nadamw", "radam", "adamp", "sgdp", "rmsprop",
                                         "rmsproptf", "lamb", "lars", "adabelief", "adafactor", "lion", "adagrad",
                                         "adadelta", "novograd", "adan", "madgrad")},
}
SCHEDULES = ("step", "multistep", "cosine")
# Options that change the LR or the epoch length in ways explr does not model: key -> value meaning "off".
# (warmup_prefix: how it lengthens training differs between timm versions; aug_repeats/epoch_repeats
# change the samples per epoch.)
UNMODELLED = {"lr_noise": None, "layer_decay": None, "lr_cycle_limit": 1, "lr_cycle_mul": 1.0,
              "lr_k_decay": 1.0, "warmup_prefix": False, "aug_repeats": 0, "epoch_repeats": 0}
DETECT_KEYS = ("decay_epochs", "decay_milestones", "decay_rate", "warmup_lr", "warmup_epochs",
               "cooldown_epochs", "sched_on_updates", "model_ema", "clip_grad")


class TimmAdapter:
    name = "timm"

    def detect(self, source: ConfigSource) -> str | None:
        data = source.data
        if any(key in data for key in ("SOLVER", "OPTIM", "_BASE_")):
            return None
        named = [key for key in ("opt", "sched") if key in data]
        extra = [key for key in DETECT_KEYS if key in data]
        if len(named) == 2 or (named and extra):
            return f"has top-level {', '.join(named + extra[:2])} (timm train.py arguments)"
        return None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        facts = ConfigFacts([source])
        _refuse_unmodelled(facts)
        family, nesterov = _optimizer(facts)
        updates = _updates_per_epoch(facts, options)
        per_update = _get(facts, "scheduler_interval", "sched_on_updates", bool)
        schedule = _schedule(facts, _lr(facts, options), updates, per_update)
        wd = _required(facts, "weight_decay", "weight_decay", float)
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer=family,
            momentum=_get(facts, "momentum", "momentum", float), dampening=0.0, nesterov=nesterov,
            decay=DecayPolicy(other=wd, norm=0.0, bias=0.0),  # param_groups_weight_decay: bias, ndim<=1 exempt
            lr=schedule, iters_per_epoch=updates, epochs=schedule.total_iters / updates,
            precision=_precision(facts), grad_clip_norm=_clip_norm(facts),
            ema=_get(facts, "ema", "model_ema", bool), scheduler_interval="step" if per_update else "epoch",
            locations=facts.locations)


def _get(facts: ConfigFacts, fact: str | None, key: str, kind: type):
    value = facts.get(fact, (key,), kind, STABLE_DEFAULTS[key])
    if value is None and kind is bool:  # a null store_true flag is falsy in train.py
        return False
    if value is None and STABLE_DEFAULTS[key] is not None:
        raise facts.error((key,), f"is null; write a value or remove it to use timm's default {STABLE_DEFAULTS[key]!r}")
    return value


def _required(facts: ConfigFacts, fact: str | None, key: str, kind: type):
    if not facts.has((key,)):
        raise ConfigError(f"{facts.source.path}: `{key}` is missing; timm's default changed between versions "
                          f"({VERSIONED_DEFAULTS[key]}), so write the value you train with")
    value = facts.get(fact, (key,), kind)
    if value is None:
        raise facts.error((key,), "is null; write the value you train with")
    return value


def _refuse_unmodelled(facts: ConfigFacts) -> None:
    for key, off in UNMODELLED.items():
        value = facts.source.get((key,), off)
        if value is not None and value != off:
            raise UnsupportedError(f"{facts.where((key,))}: {key}={value!r} is not modelled by explr; "
                                   f"set it to {json.dumps(off)} (its default) to convert")


def _optimizer(facts: ConfigFacts) -> tuple[str, bool]:
    opt = str(_get(facts, "optimizer", "opt", str)).lower()
    if opt not in OPTIMIZERS:
        raise facts.error(("opt",), f"is {opt!r}, which explr does not know; "
                          f"use one of {', '.join(sorted(OPTIMIZERS))}")
    if facts.has(("opt",)):
        facts.locations["nesterov"] = facts.locations["optimizer"]
    return OPTIMIZERS[opt]


def _lr(facts: ConfigFacts, options: ReadOptions) -> float:
    """`lr`, or train.py's lr_base * global_batch / lr_base_size when lr is unset."""
    lr = facts.get("lr", ("lr",), float, None)
    if lr:
        return lr
    if options.num_devices is None:
        raise ConfigError(f"{facts.where(('lr',))}: lr is unset, so timm derives it from lr_base and the global "
                          "batch (batch_size x processes x grad_accum_steps); pass --num-devices N or set lr")
    batch = options.batch_size or _required_batch(facts)
    ratio = batch * options.num_devices * _get(facts, None, "grad_accum_steps", int) / _get(
        facts, None, "lr_base_size", int)
    opt = str(_get(facts, None, "opt", str)).lower()
    scale = _get(facts, None, "lr_base_scale", str) or ("sqrt" if "ada" in opt or "lamb" in opt else "linear")
    return _get(facts, "lr", "lr_base", float) * (math.sqrt(ratio) if scale == "sqrt" else ratio)


def _required_batch(facts: ConfigFacts) -> int:
    batch = facts.get("batch_size", ("batch_size",), int, None)
    if not batch:
        raise ConfigError(f"{facts.source.path}: batch_size is missing; set it or pass --batch-size N")
    return batch


def _updates_per_epoch(facts: ConfigFacts, options: ReadOptions) -> int:
    """Optimizer updates per epoch (--iters-per-epoch counts updates; otherwise loader batches / accum)."""
    dataset = _get(facts, "dataset", "dataset", str) or None
    name = str(dataset).rsplit("/", 1)[-1] if dataset else None  # "torch/cifar10" -> "cifar10"
    batch = facts.get("batch_size", ("batch_size",), int, None)
    batches = iters_per_epoch(facts.source, options, batch_size=batch, dataset=name, drop_last=True)
    if options.iters_per_epoch:
        return batches
    accum = _get(facts, None, "grad_accum_steps", int)
    if accum <= 0:
        raise facts.error(("grad_accum_steps",), f"is {accum}; it must be >= 1")
    return -(-batches // accum)


def _schedule(facts: ConfigFacts, lr: float, updates: int, per_update: bool) -> LRSchedule:
    """The timm scheduler as an LRSchedule in iterations (t is an epoch, or an update with sched_on_updates)."""
    sched = str(_required(facts, "schedule", "sched", str)).lower()
    if sched not in SCHEDULES:
        raise facts.error(("sched",), f"is {sched!r}; explr converts timm's {', '.join(SCHEDULES)} schedulers")
    epochs = _required(facts, "epochs", "epochs", int)
    if epochs <= 0:
        raise facts.error(("epochs",), f"is {epochs}; it must be > 0")
    t_per_epoch = updates if per_update else 1
    step_every = 1 if per_update else updates
    warmup_epochs = _required(facts, "warmup_iters", "warmup_epochs", int)
    warmup_lr = _required(facts, "warmup_factor", "warmup_lr", float) if warmup_epochs > 0 else 0.0
    kwargs = dict(base_lr=lr, total_iters=epochs * updates, step_every=step_every, warmup_blend="ramp_to_base",
                  warmup_iters=warmup_epochs * updates, warmup_factor=warmup_lr / lr)
    if sched == "cosine":
        cooldown = _required(facts, "cooldown_epochs", "cooldown_epochs", int)
        kwargs.update(decay="cosine", eta_min=_required(facts, "eta_min", "min_lr", float),
                      decay_iters=epochs * updates, total_iters=(epochs + cooldown) * updates)
    else:
        ticks = _step_ticks(facts, epochs * t_per_epoch, t_per_epoch) if sched == "step" else \
            _multistep_ticks(facts, epochs * t_per_epoch, t_per_epoch)
        kwargs.update(decay="step", milestones=tuple(t * step_every for t in ticks),
                      gamma=_get(facts, "gamma", "decay_rate", float))
    return _validated(facts, LRSchedule(**kwargs))


def _step_ticks(facts: ConfigFacts, total_t: int, t_per_epoch: int) -> list[int]:
    """Scheduler times t where t // decay_t grows (StepLRScheduler; decay_epochs may be fractional, e.g. 2.4)."""
    decay_t = _required(facts, "milestones", "decay_epochs", float) * t_per_epoch
    if decay_t < 1:
        raise facts.error(("decay_epochs",), f"gives a decay interval of {decay_t} scheduler steps; it must be >= 1")
    ticks, k = [], 1
    while (tick := _first_t_reaching(k, decay_t)) < total_t:
        ticks.append(tick)
        k += 1
    return ticks


def _first_t_reaching(k: int, decay_t: float) -> int:
    t = math.ceil(k * decay_t)
    while t > 0 and (t - 1) // decay_t >= k:  # the exact float semantics of timm's `t // decay_t`
        t -= 1
    while t // decay_t < k:
        t += 1
    return t


def _multistep_ticks(facts: ConfigFacts, total_t: int, t_per_epoch: int) -> list[int]:
    milestones = _required(facts, "milestones", "decay_milestones", tuple)
    ticks = [m * t_per_epoch for m in milestones]
    if list(ticks) != sorted(set(ticks)) or any(t <= 0 or t != int(t) for t in ticks):
        raise facts.error(("decay_milestones",), f"is {list(milestones)}; write strictly increasing whole epochs > 0")
    if ticks and ticks[-1] >= total_t:
        raise facts.error(("decay_milestones",), f"has milestone {milestones[-1]} at or past the end of training "
                          f"({total_t // t_per_epoch} epochs); remove it or raise epochs")
    return [int(t) for t in ticks]


def _validated(facts: ConfigFacts, schedule: LRSchedule) -> LRSchedule:
    return validated_schedule(schedule, f"{facts.source.path}: the timm schedule is invalid: ",
                              "; fix the scheduler keys")


def _precision(facts: ConfigFacts) -> str:
    if not _get(facts, "precision", "amp", bool):
        return "32"
    dtype = _get(facts, "precision", "amp_dtype", str)
    if dtype not in ("float16", "bfloat16"):
        raise facts.error(("amp_dtype",), f"is {dtype!r}; timm accepts float16 or bfloat16")
    return "16-mixed" if dtype == "float16" else "bf16-mixed"


def _clip_norm(facts: ConfigFacts) -> float | None:
    clip = _get(facts, "grad_clip_norm", "clip_grad", float)
    mode = _get(facts, None, "clip_mode", str)
    if clip is not None and mode != "norm":
        raise UnsupportedError(f"{facts.where(('clip_mode',))}: clip_mode={mode!r} clips per value/parameter, which "
                               "explr does not model; use clip_mode: norm or remove clip_grad")
    return clip


ADAPTER = TimmAdapter()
