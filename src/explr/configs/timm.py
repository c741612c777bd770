"""timm training arguments (train.py `--config FILE`, or the args.yaml train.py writes) -> TrainingPlan.

Semantics read from huggingface/pytorch-image-models (timm 1.0.x); benchmarks/frameworks/timm_oracle.py checks
every timm fixture against timm's own create_scheduler_v2, LR per update:
- train.py: the YAML sets argparse defaults (so "1e-4" strings are type-converted); when `lr` is unset (null or 0)
  it is lr_base * batch_ratio, batch_ratio = batch_size x world size x grad_accum_steps / lr_base_size, square-rooted
  for 'ada*'/'lamb' optimizers unless lr_base_scale says otherwise. updates_per_epoch = ceil(len(loader) /
  grad_accum_steps); the train loader drops the last partial batch. train_one_epoch calls
  step_update(num_updates) after every update and main() step(epoch + 1) after every epoch, so the LR of epoch
  (or update) t > 0 is _get_lr(t) and t = 0 keeps the LR the scheduler was built with.
- scheduler_factory.py create_scheduler_v2: lengths are in epochs, times updates_per_epoch with sched_on_updates;
  trained epochs = num_epochs (+ warmup_epochs with warmup_prefix) for step/multistep/constant, and
  get_cycle_length() + cooldown_epochs for cosine, poly and tanh.
- step_lr.py / multistep_lr.py / cosine_lr.py: warmup is a linear ramp from warmup_lr to lr that replaces the decay;
  with warmup_prefix the decay's clock starts after warmup. step: lr * decay_rate ** (t // decay_t); multistep:
  lr * decay_rate ** bisect_right(milestones, t + 1), i.e. milestone m applies at t = m - 1 (timm keeps this on
  purpose); cosine, poly (power = decay_rate) and tanh (its warmup ramps to the tanh value at the end of
  warmup): restarts (lr_cycle_limit/mul/decay), k-decay (not tanh), lr_min after the last cycle.
- wsd_lr.py (sched wsd / rsqrt, timm >= 1.0.31): warmup always a prefix; stable phase lr (rsqrt: lr * (1 + t_s /
  timescale) ** -0.5, timescale lr_stable_timescale or warmup_epochs) floored at min_lr, then its last decay_t steps
  anneal to min_lr by lr_decay_fn (default 1-sqrt / linear); held at min_lr for cooldown_epochs.
- Refused: lr_noise (random noise per step), sched plateau (metric-driven),
  layer_decay (LR per layer), aug_repeats/epoch_repeats (samples per epoch).
- timm/optim/optim_factory.py: 'sgd' and 'nesterov' build SGD(nesterov=True), 'momentum' nesterov=False;
  param_groups_weight_decay gives no decay to biases and to every parameter with ndim <= 1.
  Known gap: DecayPolicy has no kind for 1-D parameters that are neither norm nor bias (layer scales):
  timm exempts them, the plan applies `other` to them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from explr.configs.adapter import (ConfigFacts, ReadOptions, finite_number, iters_per_epoch, late_milestones,
                                   validated_schedule)
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError
from explr.lr_schedule import ANNEAL_SHAPES, LRSchedule
from explr.plan import DecayPolicy, TrainingPlan

# Defaults that are the same in every timm train.py (argparse defaults, train.py).
STABLE_DEFAULTS = {
    "opt": "sgd", "momentum": 0.9, "clip_grad": None, "clip_mode": "norm", "sched_on_updates": False,
    "warmup_prefix": False, "model_ema": False, "lr_cycle_limit": 1, "lr_cycle_mul": 1.0, "lr_cycle_decay": 0.5,
    "lr_k_decay": 1.0, "amp": False, "amp_dtype": "float16", "grad_accum_steps": 1,
    "decay_rate": 0.1, "lr_base": 0.1, "lr_base_size": 256, "lr_base_scale": "", "dataset": "",
    "lr_decay_fn": None, "lr_stable_timescale": None,  # train.py defaults since they exist (sched wsd / rsqrt)
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
SCHEDULES = ("step", "multistep", "cosine", "poly", "tanh", "constant", "wsd", "rsqrt")
CYCLED = ("cosine", "poly", "tanh")  # timm's cycle schedulers (get_cycle_length)
WSD_DECAY_FNS = {"wsd": "1-sqrt", "rsqrt": "linear"}  # WSDLRScheduler's scheds, their default lr_decay_fn
WSD_DECAY_FRACTION = 0.2  # create_scheduler_v2: decay_epochs None decays over the last 20% (wsd / rsqrt)
REFUSED_SCHEDULES = {
    "plateau": "decays when the eval metric stops improving, so the schedule is not known before training",
    "none": "leaves the LR to the optimizer (no scheduler)",
}
# Cosine restarts and k-decay (train.py defaults; stable across versions).
CYCLE_KEYS = {"lr_cycle_limit": int, "lr_cycle_mul": float, "lr_cycle_decay": float, "lr_k_decay": float}
MAX_DECAYS = 100_000
# Options that change the LR or the epoch length in ways explr does not model: key -> (value meaning "off", why).
UNMODELLED = {
    "lr_noise": (None, "adds random noise to the LR at every scheduler step (Scheduler._add_noise)"),
    "layer_decay": (None, "scales the LR per layer group"),
    "aug_repeats": (0, "changes the samples per epoch (RepeatAugSampler)"),
    "epoch_repeats": (0, "changes the samples per epoch"),
}
TIMM_SCHED_KEYS = ("sched", "sched_on_updates")  # timm train.py's own sched* arguments
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
        schedule, late = _schedule(facts, _lr(facts, options), updates, per_update)
        wd = _required(facts, "weight_decay", "weight_decay", float)
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer=family,
            momentum=_get(facts, "momentum", "momentum", float), dampening=0.0, nesterov=nesterov,
            decay=DecayPolicy(other=wd, norm=0.0, bias=0.0),  # param_groups_weight_decay: bias, ndim<=1 exempt
            lr=schedule, iters_per_epoch=updates, epochs=schedule.total_iters / updates,
            precision=_precision(facts), grad_clip_norm=_clip_norm(facts),
            ema=_get(facts, "ema", "model_ema", bool), scheduler_interval="step" if per_update else "epoch",
            ignored_milestones=late, locations=facts.locations)


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
    for key in facts.source.data:  # a fork's train.py may reschedule with a key timm's train.py ignores
        if isinstance(key, str) and key.startswith("sched") and key not in TIMM_SCHED_KEYS:
            raise UnsupportedError(f"{facts.where((key,))}: `{key}` is not an argument of timm's train.py, which "
                                   "ignores it, but the modified train.py this config was written for may change the "
                                   "schedule with it; remove the key if your train.py is timm's")
    for key, (off, why) in UNMODELLED.items():
        value = facts.source.get((key,), off)
        if value is not None and value != off and value != []:
            raise UnsupportedError(f"{facts.where((key,))}: {key}={value!r} {why}, which explr does not model; "
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
    lr = _get(facts, "lr", "lr_base", float) * (math.sqrt(ratio) if scale == "sqrt" else ratio)
    if not lr > 0:
        raise facts.error(("lr_base",), f"gives lr={lr!r} for the global batch; it must be > 0")
    return lr


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
    if batches <= 0:
        raise ConfigError(f"{facts.source.path}: the train loader has no full batch per process (it drops the last "
                          "partial one); check batch_size and the dataset size, or pass --iters-per-epoch N")
    if options.iters_per_epoch:
        return batches
    accum = _get(facts, None, "grad_accum_steps", int)
    if accum <= 0:
        raise facts.error(("grad_accum_steps",), f"is {accum}; it must be >= 1")
    return -(-batches // accum)


@dataclass(frozen=True, slots=True)
class _Clock:
    """timm's scheduler time t: epochs, or updates with sched_on_updates (create_scheduler_v2 scales lengths)."""

    updates: int  # optimizer updates per epoch (iterations)
    per_update: bool

    @property
    def t_per_epoch(self) -> int:
        return self.updates if self.per_update else 1

    @property
    def step_every(self) -> int:  # iterations per scheduler step
        return 1 if self.per_update else self.updates

    def trained_iters(self, trained_t: int) -> int:
        """create_scheduler_v2's num_epochs for a cycle length + cooldown of trained_t (floored to whole epochs with
        sched_on_updates), in iterations."""
        return (trained_t // self.updates if self.per_update else trained_t) * self.updates


def _schedule(facts: ConfigFacts, lr: float, updates: int, per_update: bool) -> tuple[LRSchedule, tuple[int, ...]]:
    """The timm scheduler as an LRSchedule in iterations (create_scheduler_v2 + train.py's stepping), and the
    milestones that would take effect at or after the end (training stops first: EXP209)."""
    sched = str(_required(facts, "schedule", "sched", str)).lower()
    if sched not in SCHEDULES:
        why = REFUSED_SCHEDULES.get(sched, "is unknown")
        raise UnsupportedError(f"{facts.where(('sched',))}: sched={sched!r} {why}"
                               f"; explr converts timm's {', '.join(SCHEDULES)} schedulers")
    clock = _Clock(updates, per_update)
    epochs = _required(facts, "epochs", "epochs", int)
    if epochs <= 0:
        raise facts.error(("epochs",), f"is {epochs}; it must be > 0")
    warmup = _required(facts, "warmup_iters", "warmup_epochs", int)
    if warmup < 0:
        raise facts.error(("warmup_epochs",), f"is {warmup}; it must be >= 0")
    prefix = _get(facts, "warmup_prefix", "warmup_prefix", bool)
    warmup_lr = _required(facts, "warmup_factor", "warmup_lr", float) if warmup > 0 else 0.0
    shift = warmup * clock.t_per_epoch if prefix else 0  # timm subtracts warmup_t from t after warmup
    kwargs = dict(base_lr=lr, step_every=clock.step_every, warmup_blend="ramp_to_base",
                  warmup_iters=warmup * updates, warmup_factor=warmup_lr / lr)
    if sched in CYCLED:
        kwargs.update(_cycled(facts, clock, epochs, shift, sched))
        if sched == "tanh" and not prefix:  # TanhLRScheduler ramps to _get_lr(warmup_t), not to lr
            kwargs.update(warmup_blend="ramp_to_decay")
    elif sched in WSD_DECAY_FNS:
        t_sched = (epochs - (0 if prefix else warmup)) * clock.t_per_epoch
        kwargs.update(_wsd(facts, clock, sched, warmup * clock.t_per_epoch, t_sched, lr))
    else:  # step, multistep and constant: num_epochs (+ warmup_epochs with warmup_prefix), no cooldown
        total_t = (epochs + (warmup if prefix else 0)) * clock.t_per_epoch
        ticks = [] if sched == "constant" else _step_ticks(facts, clock, shift) if sched == "step" else \
            _multistep_ticks(facts, clock, shift)
        first = max(warmup * clock.t_per_epoch, 1)  # t=0 keeps the LR the scheduler was built with
        kwargs.update(decay="constant" if sched == "constant" else "step", total_iters=total_t * clock.step_every,
                      milestones=tuple(max(t, first) * clock.step_every for t in ticks))
        if sched != "constant":
            kwargs.update(gamma=_get(facts, "gamma", "decay_rate", float))
    schedule = LRSchedule(**kwargs)
    return _validated(facts, schedule), late_milestones(schedule)


def _cycled(facts: ConfigFacts, clock: _Clock, epochs: int, shift: int, sched: str) -> dict:
    """Cosine/Poly/TanhLRScheduler: t_initial = epochs, restarts, k-decay; trained t = get_cycle_length() + cooldown.

    poly's power is decay_rate (create_scheduler_v2 passes power=decay_rate)."""
    cooldown = _required(facts, "cooldown_epochs", "cooldown_epochs", int)
    t_initial = epochs * clock.t_per_epoch
    cycles = {key: _get(facts, None, key, kind) for key, kind in CYCLE_KEYS.items()}
    if cycles["lr_cycle_mul"] <= 0 or cycles["lr_k_decay"] <= 0 or cycles["lr_cycle_decay"] <= 0:
        raise facts.error(("lr_cycle_mul",), f"/ lr_cycle_decay / lr_k_decay are {list(cycles.values())[1:]}; "
                          "they must be > 0")
    limit, mul = max(1, cycles["lr_cycle_limit"]), cycles["lr_cycle_mul"]
    try:  # get_cycle_length()
        length = t_initial * limit if mul == 1.0 else int(math.floor(-t_initial * (mul ** limit - 1) / (1 - mul)))
    except (OverflowError, ValueError):
        raise facts.error(("lr_cycle_limit",), f"is {limit} with lr_cycle_mul={mul}: the cycles never end; "
                          "lower them") from None
    trained_t = length + shift + cooldown * clock.t_per_epoch
    cycled = dict(cycle_limit=cycles["lr_cycle_limit"], cycle_mul=mul, cycle_decay=cycles["lr_cycle_decay"]) \
        if cycles["lr_cycle_limit"] > 1 else {}
    if sched == "poly":
        cycled["power"] = _get(facts, "gamma", "decay_rate", float)
    if sched != "tanh":  # TanhLRScheduler takes no k_decay
        cycled["k_decay"] = cycles["lr_k_decay"]
    return dict(decay=sched, eta_min=_required(facts, "eta_min", "min_lr", float),
                decay_start=shift * clock.step_every, decay_iters=t_initial * clock.step_every,
                total_iters=clock.trained_iters(trained_t), **cycled)


def _wsd(facts: ConfigFacts, clock: _Clock, sched: str, warmup_t: int, t_sched: int, lr: float) -> dict:
    """WSDLRScheduler as create_scheduler_v2 builds it: the warmup is always a prefix (without warmup_prefix the
    stable + decay phases fill the t_sched = epochs - warmup_epochs left); trained t = warmup + t_sched + cooldown."""
    min_lr = _required(facts, "eta_min", "min_lr", float)
    if not 0 <= min_lr <= lr:  # above lr, the LR before the first step (lr) would differ from _get_lr(0) (min_lr)
        raise facts.error(("min_lr",), f"is {min_lr!r}; sched {sched} needs 0 <= min_lr <= lr ({lr!r})")
    shape = _get(facts, "anneal_shape", "lr_decay_fn", str) or WSD_DECAY_FNS[sched]
    if shape not in ANNEAL_SHAPES:
        raise facts.error(("lr_decay_fn",), f"is {shape!r}; timm's WSD scheduler takes {', '.join(ANNEAL_SHAPES)}")
    cooldown_t = _required(facts, "cooldown_epochs", "cooldown_epochs", int) * clock.t_per_epoch
    return dict(decay="wsd", eta_min=min_lr, decay_start=warmup_t * clock.step_every,
                decay_iters=t_sched * clock.step_every, anneal_shape=shape,
                anneal_iters=_wsd_decay_t(facts, clock, t_sched) * clock.step_every,
                stable_timescale=_rsqrt_timescale(facts, clock, warmup_t) if sched == "rsqrt" else None,
                total_iters=clock.trained_iters(warmup_t + t_sched + cooldown_t),
                **({"power": 0.5} if shape == "power" else {}))  # WSDLRScheduler's decay_power (never passed)


def _wsd_decay_t(facts: ConfigFacts, clock: _Clock, t_sched: int) -> int:
    """create_scheduler_v2: decay_epochs in (0, 1) is a fraction of t_sched (null: 0.2), else epochs; rounded."""
    if not facts.has(("decay_epochs",)):
        _required(facts, None, "decay_epochs", float)  # refuses: its train.py default changed between versions
    value = facts.get("anneal_iters", ("decay_epochs",), float)
    value = WSD_DECAY_FRACTION if value is None else value
    decay_t = value * t_sched if 0 < value < 1 else value * clock.t_per_epoch
    if not (math.isfinite(decay_t) and 0 < round(decay_t) <= t_sched):
        raise facts.error(("decay_epochs",), f"is {value!r}: a decay phase of {decay_t:g} scheduler steps, outside "
                          f"(0, {t_sched}] (the stable + decay steps after warmup); lower it or the warmup")
    return int(round(decay_t))


def _rsqrt_timescale(facts: ConfigFacts, clock: _Clock, warmup_t: int) -> float:
    """The rsqrt timescale in iterations: lr_stable_timescale epochs (scaled like the other lengths), or warmup."""
    timescale = _get(facts, "stable_timescale", "lr_stable_timescale", float)
    timescale_t = warmup_t if timescale is None else timescale * clock.t_per_epoch
    if not timescale_t > 0:
        raise facts.error(("lr_stable_timescale",), f"is {'unset' if timescale is None else timescale} and "
                          f"warmup_epochs gives {warmup_t} steps; "
                          "sched rsqrt needs a timescale > 0: set lr_stable_timescale (epochs)")
    return timescale_t * clock.step_every


def _step_ticks(facts: ConfigFacts, clock: _Clock, shift: int) -> list[int]:
    """Scheduler times t where (t - shift) // decay_t grows (StepLRScheduler; decay_epochs may be fractional)."""
    decay_t = _required(facts, "milestones", "decay_epochs", float) * clock.t_per_epoch
    if not decay_t > 0:
        raise facts.error(("decay_epochs",), f"gives a decay interval of {decay_t} scheduler steps; it must be > 0")
    total_t = _required(facts, None, "epochs", int) * clock.t_per_epoch + shift
    if total_t / decay_t > MAX_DECAYS:
        raise facts.error(("decay_epochs",), f"decays the LR more than {MAX_DECAYS} times; raise it")
    ticks, k = [], 1
    while (tick := _first_t_reaching(k, decay_t) + shift) < total_t:
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


def _multistep_ticks(facts: ConfigFacts, clock: _Clock, shift: int) -> list[int]:
    """MultiStepLRScheduler: bisect_right(decay_t, t + 1), so milestone m applies at t = m - 1 (timm's convention)."""
    milestones = _required(facts, "milestones", "decay_milestones", tuple)
    whole = all(finite_number(m) and m == int(m) for m in milestones)
    if not whole or list(milestones) != sorted(milestones) or any(m < 1 for m in milestones):
        raise facts.error(("decay_milestones",), f"is {list(milestones)}; write increasing whole epochs >= 1")
    return [int(m) * clock.t_per_epoch - 1 + shift for m in milestones]


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
