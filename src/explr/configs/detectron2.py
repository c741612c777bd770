"""detectron2 YAML (yacs CfgNode, `_BASE_` inheritance) -> TrainingPlan.

Semantics read from facebookresearch/detectron2 (main):
- config/config.py CfgNode.load_yaml_with_base: `_BASE_` is resolved relative to the file that names it,
  loaded recursively, and the child's keys are merged over it (nested mappings merged key by key);
  yacs decodes string values with literal_eval, so `STEPS: (60000, 80000)` is a tuple.
- config/defaults.py: the SOLVER defaults in DEFAULTS below.
- solver/build.py build_optimizer: SGD(lr=BASE_LR, momentum, nesterov=NESTEROV, weight_decay=WEIGHT_DECAY);
  get_default_optimizer_params: parameters of normalization modules get WEIGHT_DECAY_NORM, then every
  parameter named "bias" gets WEIGHT_DECAY_BIAS when it is not None (None: same as WEIGHT_DECAY) —
  so a set WEIGHT_DECAY_BIAS also applies to the biases of norm layers.
- solver/build.py build_lr_scheduler + solver/lr_scheduler.py: LRMultiplier steps once per iteration;
  the LR of iteration i is BASE_LR * WarmupParamScheduler(i / MAX_ITER): during WARMUP_ITERS a linear ramp
  from WARMUP_FACTOR to the scheduler's value at the end of warmup ("ramp_to_decay"), then
  MultiStepParamScheduler (GAMMA ** number of STEPS <= i) or CosineParamScheduler(1 -> BASE_LR_END/BASE_LR).

Iterations per epoch: detectron2 counts iterations (MAX_ITER, STEPS, WARMUP_ITERS), so the LR schedule
needs none. It is reported when known (--iters-per-epoch, or the size of DATASETS.TRAIN[0] /
IMS_PER_BATCH, IMS_PER_BATCH being the global batch) and left None otherwise.
"""
from __future__ import annotations

import json
import math
import os
import pathlib

from explr.configs.adapter import DATASET_SIZES, ConfigFacts, ReadOptions, iters_per_epoch, validated_schedule
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError
from explr.lr_schedule import WARMUPS, LRSchedule
from explr.plan import DecayPolicy, TrainingPlan

BASE_KEY = "_BASE_"
S = "SOLVER"
# detectron2/config/defaults.py (main), SOLVER section.
DEFAULTS = {
    "LR_SCHEDULER_NAME": "WarmupMultiStepLR", "MAX_ITER": 40000, "BASE_LR": 0.001, "BASE_LR_END": 0.0,
    "MOMENTUM": 0.9, "NESTEROV": False, "WEIGHT_DECAY": 0.0001, "WEIGHT_DECAY_NORM": 0.0, "GAMMA": 0.1,
    "STEPS": (30000,), "WARMUP_FACTOR": 1.0 / 1000, "WARMUP_ITERS": 1000, "WARMUP_METHOD": "linear",
    "RESCALE_INTERVAL": False, "IMS_PER_BATCH": 16, "REFERENCE_WORLD_SIZE": 0, "BIAS_LR_FACTOR": 1.0,
    "WEIGHT_DECAY_BIAS": None, "CLIP_GRADIENTS": {"ENABLED": False, "CLIP_TYPE": "value", "CLIP_VALUE": 1.0},
    "AMP": {"ENABLED": False},
}
NULLABLE = ("WEIGHT_DECAY_NORM", "WEIGHT_DECAY_BIAS")  # None: follow WEIGHT_DECAY (solver/build.py)
SCHEDULERS = {"WarmupMultiStepLR": "step", "WarmupCosineLR": "cosine"}
# Settings that change the optimizer in ways the plan cannot hold: key -> the value that means "off".
UNMODELLED = {"BIAS_LR_FACTOR": 1.0, "RESCALE_INTERVAL": False, "REFERENCE_WORLD_SIZE": 0}


class Detectron2Adapter:
    name = "detectron2"

    def detect(self, source: ConfigSource) -> str | None:
        solver = source.data.get(S)
        if isinstance(solver, dict):
            keys = [key for key in ("BASE_LR", "STEPS", "MAX_ITER", "IMS_PER_BATCH") if key in solver]
            if keys:
                return f"has {', '.join(f'{S}.{key}' for key in keys[:2])} (detectron2 solver)"
        if BASE_KEY in source.data:
            return f"has {BASE_KEY} (detectron2 config inheritance)"
        return None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        facts = ConfigFacts(load_with_bases(source))
        _refuse_unmodelled(facts)
        _check_optimizer(facts)
        schedule = _schedule(facts)
        ipe = _iters_per_epoch(facts, options)
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer="sgd",
            momentum=_solver(facts, "momentum", "MOMENTUM", float), dampening=0.0,
            nesterov=_solver(facts, "nesterov", "NESTEROV", bool), decay=_decay(facts), lr=schedule,
            iters_per_epoch=ipe, epochs=schedule.total_iters / ipe if ipe else None,
            precision="16-mixed" if _solver(facts, "precision", ("AMP", "ENABLED"), bool) else "32",
            grad_clip_norm=_clip_norm(facts), ema=False, scheduler_interval="step", locations=facts.locations)


def load_with_bases(source: ConfigSource) -> list[ConfigSource]:
    """The config followed by its `_BASE_` chain (most specific first); missing or cyclic bases are errors."""
    chain, seen = [source], [pathlib.Path(source.path).resolve()]
    while BASE_KEY in chain[-1].data:
        child = chain[-1]
        base = child.data[BASE_KEY]
        where = child.where((BASE_KEY,))
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(f"{where}: {BASE_KEY} must be the path of a YAML file, not {base!r}")
        if base.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: {BASE_KEY} {base!r} is a URL; download it and point {BASE_KEY} at the file")
        path = pathlib.Path(os.path.expanduser(base))
        path = pathlib.Path(os.path.normpath(path if path.is_absolute() else pathlib.Path(child.path).parent / path))
        if path.resolve() in seen:
            cycle = " -> ".join(str(p) for p in [*seen, path.resolve()])
            raise ConfigError(f"{where}: {BASE_KEY} {base!r} makes an inheritance cycle ({cycle}); "
                              f"remove one {BASE_KEY}")
        if not path.is_file():
            raise ConfigError(f"{where}: {BASE_KEY} file {path} does not exist (resolved relative to "
                              f"{pathlib.Path(child.path).parent}); fix the path")
        chain.append(ConfigSource.load(path))
        seen.append(path.resolve())
    return chain


def _default(key: str | tuple) -> object:
    value = DEFAULTS
    for part in (key,) if isinstance(key, str) else key:
        value = value[part]
    return value


def _solver(facts: ConfigFacts, fact: str | None, key: str | tuple, kind: type):
    keypath = (S, key) if isinstance(key, str) else (S, *key)
    value = facts.get(fact, keypath, kind, _default(key))
    if value is None and key not in NULLABLE:
        raise facts.error(keypath, "is null; write a value or remove the key to use detectron2's default")
    return value


def _refuse_unmodelled(facts: ConfigFacts) -> None:
    for key, off in UNMODELLED.items():
        value = _solver(facts, None, key, type(off))
        if value != off:
            raise UnsupportedError(f"{facts.where((S, key))}: {S}.{key}={value!r} changes the LR or batch per "
                                   "parameter group or world size, which explr does not model; "
                                   f"set it to {json.dumps(off)}")


def _check_optimizer(facts: ConfigFacts) -> None:
    """build_optimizer always builds SGD; some forks add SOLVER.OPTIMIZER, which this reader does not know."""
    name = facts.get("optimizer", (S, "OPTIMIZER"), str, "SGD")
    if str(name).lower() != "sgd":
        raise UnsupportedError(f"{facts.where((S, 'OPTIMIZER'))}: SOLVER.OPTIMIZER={name!r} is not detectron2's "
                               "build_optimizer (SGD); explr reads SGD configs only: remove the key or convert by hand")


def _schedule(facts: ConfigFacts) -> LRSchedule:
    name = _solver(facts, "schedule", "LR_SCHEDULER_NAME", str)
    if name not in SCHEDULERS:
        raise facts.error((S, "LR_SCHEDULER_NAME"), f"is {name!r}; explr converts {', '.join(SCHEDULERS)}")
    max_iter = _solver(facts, "total_iters", "MAX_ITER", int)
    base_lr = _solver(facts, "lr", "BASE_LR", float)
    if max_iter <= 0 or base_lr <= 0:
        raise facts.error((S, "MAX_ITER" if max_iter <= 0 else "BASE_LR"), "must be > 0; fix it")
    kwargs = dict(base_lr=base_lr, total_iters=max_iter, decay=SCHEDULERS[name], warmup_blend="ramp_to_decay",
                  warmup_iters=_warmup_iters(facts, max_iter),
                  warmup_factor=_solver(facts, "warmup_factor", "WARMUP_FACTOR", float),
                  warmup_method=_solver(facts, "warmup_method", "WARMUP_METHOD", str))
    if kwargs["warmup_method"] not in WARMUPS:
        raise facts.error((S, "WARMUP_METHOD"), f"is {kwargs['warmup_method']!r}; use one of {', '.join(WARMUPS)}")
    if kwargs["decay"] == "step":
        kwargs.update(milestones=_steps(facts, max_iter), gamma=_solver(facts, "gamma", "GAMMA", float))
    else:
        kwargs.update(eta_min=_solver(facts, "eta_min", "BASE_LR_END", float))
    return validated_schedule(LRSchedule(**kwargs), f"{facts.source.path}: the detectron2 schedule is invalid: ",
                              f"; fix the {S} keys")


def _warmup_iters(facts: ConfigFacts, max_iter: int) -> int:
    warmup = _solver(facts, "warmup_iters", "WARMUP_ITERS", int)
    if not 0 <= warmup < max_iter:
        raise facts.error((S, "WARMUP_ITERS"), f"is {warmup}; it must be in [0, MAX_ITER={max_iter})")
    return warmup


def _steps(facts: ConfigFacts, max_iter: int) -> tuple[int, ...]:
    steps = _solver(facts, "milestones", "STEPS", tuple)
    if any(not float(step).is_integer() or step <= 0 for step in steps) or list(steps) != sorted(set(steps)):
        raise facts.error((S, "STEPS"), f"is {steps}; write strictly increasing iteration numbers > 0")
    late = [int(step) for step in steps if step >= max_iter]
    if late:  # detectron2 drops them with a warning; a typo here silently changes the schedule
        raise facts.error((S, "STEPS"), f"has {late} at or past MAX_ITER={max_iter} (detectron2 ignores them); "
                          "remove them or raise MAX_ITER")
    return tuple(int(step) for step in steps)


def _decay(facts: ConfigFacts) -> DecayPolicy:
    wd = _solver(facts, "weight_decay", "WEIGHT_DECAY", float)
    norm = _solver(facts, "weight_decay_norm", "WEIGHT_DECAY_NORM", float)
    bias = _solver(facts, "weight_decay_bias", "WEIGHT_DECAY_BIAS", float)
    norm = wd if norm is None else norm  # get_default_optimizer_params: None leaves norm layers on WEIGHT_DECAY
    if bias is not None and bias != norm:
        raise UnsupportedError(f"{facts.where((S, 'WEIGHT_DECAY_BIAS'))}: WEIGHT_DECAY_BIAS={bias} also applies to "
                               f"norm-layer biases, whose weights get WEIGHT_DECAY_NORM={norm}; explr's plan cannot "
                               "split a norm layer; set WEIGHT_DECAY_BIAS to null or to WEIGHT_DECAY_NORM")
    return DecayPolicy(other=wd, norm=norm, bias=bias)


def _clip_norm(facts: ConfigFacts) -> float | None:
    if not _solver(facts, "grad_clip_norm", ("CLIP_GRADIENTS", "ENABLED"), bool):
        return None
    clip_type = _solver(facts, None, ("CLIP_GRADIENTS", "CLIP_TYPE"), str)
    if clip_type != "norm":  # "value" is detectron2's default CLIP_TYPE: point at the key that enables clipping
        key = "CLIP_TYPE" if facts.has((S, "CLIP_GRADIENTS", "CLIP_TYPE")) else "ENABLED"
        raise UnsupportedError(f"{facts.where((S, 'CLIP_GRADIENTS', key))}: CLIP_TYPE={clip_type!r} clips "
                               "gradient values, which explr does not model; use CLIP_TYPE: norm or disable clipping")
    # Note: detectron2 clips each parameter's gradient norm separately; the plan records the threshold.
    return _solver(facts, "grad_clip_norm", ("CLIP_GRADIENTS", "CLIP_VALUE"), float)


def _iters_per_epoch(facts: ConfigFacts, options: ReadOptions) -> int | None:
    """Nominal iterations per epoch, or None: detectron2's schedule is in iterations and does not need it."""
    if options.iters_per_epoch is not None:
        return iters_per_epoch(facts.source, options, batch_size=None)  # validates the flag
    batch = _solver(facts, "batch_size", "IMS_PER_BATCH", int)
    if options.batch_size:
        batch = options.batch_size * (options.num_devices or 1)  # --batch-size is per device
    names = [options.dataset] if options.dataset else facts.get("dataset", ("DATASETS", "TRAIN"), list, [])
    sizes = [DATASET_SIZES.get(str(name).lower()) for name in names]  # DATASETS.TRAIN are concatenated
    size = options.dataset_size or (sum(sizes) if sizes and None not in sizes else None)
    return math.ceil(size / batch) if size and batch > 0 else None


ADAPTER = Detectron2Adapter()
