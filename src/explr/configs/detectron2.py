"""detectron2 YAML (yacs CfgNode, `_BASE_` inheritance) -> TrainingPlan.

Semantics read from facebookresearch/detectron2 (main):
- config/config.py CfgNode.load_yaml_with_base: `_BASE_` is resolved relative to the file that names it,
  loaded recursively, and the child's keys are merged over it (nested mappings merged key by key);
  yacs decodes string values with literal_eval, so `STEPS: (60000, 80000)` is a tuple.
- config/defaults.py: the SOLVER defaults in DEFAULTS below.
- solver/build.py build_optimizer: SGD(lr=BASE_LR, momentum, nesterov=NESTEROV, weight_decay=WEIGHT_DECAY);
  get_default_optimizer_params: parameters of normalization modules get WEIGHT_DECAY_NORM, then every
  parameter named "bias" gets WEIGHT_DECAY_BIAS when it is not None (None: same as WEIGHT_DECAY) —
  so a set WEIGHT_DECAY_BIAS also applies to the biases of norm layers. "Normalization modules" are its own
  tuple of torch classes (DecayPolicy.norm_layers "detectron2"): not its channels-first LayerNorm nor RMSNorm.
- solver/build.py build_lr_scheduler + solver/lr_scheduler.py: LRMultiplier steps once per iteration; the LR of
  iteration i is BASE_LR * WarmupParamScheduler(main)(i / MAX_ITER), main being MultiStepParamScheduler (STEPS
  <= MAX_ITER kept, later ones dropped with a warning), CosineParamScheduler(1 -> BASE_LR_END/BASE_LR) or
  StepWithFixedGammaParamScheduler (NUM_DECAYS); warmup is a linear (or constant) ramp from WARMUP_FACTOR to the
  main value at the end of warmup, over min(WARMUP_ITERS / MAX_ITER, 1); RESCALE_INTERVAL runs main over the
  iterations after warmup. fvcore adds WHERE_EPSILON = 1e-6 to `where` before flooring it, which the milestone
  iterations here reproduce. tests/configs/test_detectron2_fvcore.py checks this against fvcore's own classes.
- projects/DeepLab (its build_lr_scheduler, used by the DeepLab and Panoptic-DeepLab trainers, the only ones that
  know LR_SCHEDULER_NAME WarmupPolyLR): BASE_LR * warmup factor * (1 - i / MAX_ITER) ** POLY_LR_POWER, the warmup
  factor multiplying the poly value; add_deeplab_config's defaults POLY_LR_POWER 0.9, POLY_LR_CONSTANT_ENDING 0.
- maskrcnn-benchmark configs share the SOLVER names with other defaults and carry keys detectron2 rejects
  (MODEL.BACKBONE.CONV_BODY, ...): refused by name rather than read with detectron2's defaults.
- engine/defaults.py DefaultTrainer.auto_scale_workers: REFERENCE_WORLD_SIZE != 0 rescales IMS_PER_BATCH, BASE_LR,
  MAX_ITER, WARMUP_ITERS and STEPS to the actual number of GPUs (--num-devices).

Iterations per epoch: detectron2 counts iterations (MAX_ITER, STEPS, WARMUP_ITERS), so the LR schedule
needs none. It is reported when known (--iters-per-epoch, or the size of DATASETS.TRAIN[0] /
IMS_PER_BATCH, IMS_PER_BATCH being the global batch) and left None otherwise.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import dataclass

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
    "STEPS": (30000,), "NUM_DECAYS": 3, "WARMUP_FACTOR": 1.0 / 1000, "WARMUP_ITERS": 1000, "WARMUP_METHOD": "linear",
    "RESCALE_INTERVAL": False, "IMS_PER_BATCH": 16, "REFERENCE_WORLD_SIZE": 0, "BIAS_LR_FACTOR": 1.0,
    "WEIGHT_DECAY_BIAS": None, "CLIP_GRADIENTS": {"ENABLED": False, "CLIP_TYPE": "value", "CLIP_VALUE": 1.0},
    "AMP": {"ENABLED": False},
    # projects/DeepLab/deeplab/config.py add_deeplab_config: the keys of WarmupPolyLR, the one trainer that builds it
    "POLY_LR_POWER": 0.9, "POLY_LR_CONSTANT_ENDING": 0.0,
}
NULLABLE = ("WEIGHT_DECAY_NORM", "WEIGHT_DECAY_BIAS")  # None: follow WEIGHT_DECAY (solver/build.py)
SCHEDULERS = {"WarmupMultiStepLR": "step", "WarmupCosineLR": "cosine", "WarmupStepWithFixedGammaLR": "step"}
POLY = "WarmupPolyLR"  # built by projects/DeepLab's build_lr_scheduler (DeepLab, Panoptic-DeepLab trainers)
WHERE_EPSILON = 1e-6  # fvcore ParamScheduler.WHERE_EPSILON: added to `where` before it is compared or floored
# Settings that change the optimizer in ways the plan cannot hold: key -> (the value that means "off", why).
UNMODELLED = {"BIAS_LR_FACTOR": (1.0, "gives biases their own LR (get_default_optimizer_params)")}
# Keys of maskrcnn-benchmark, detectron2's predecessor: same SOLVER names, other defaults (BIAS_LR_FACTOR 2,
# WEIGHT_DECAY_BIAS 0, warmup 1/3 over 500 iterations); detectron2's merge_from_file rejects these keys.
MASKRCNN_BENCHMARK_KEYS = (("MODEL", "BACKBONE", "CONV_BODY"), ("MODEL", "RPN", "USE_FPN"),
                           ("MODEL", "ROI_HEADS", "USE_FPN"), ("MODEL", "RPN", "ANCHOR_STRIDE"),
                           ("MODEL", "RESNETS", "BACKBONE_OUT_CHANNELS"), ("MODEL", "ROI_BOX_HEAD", "NUM_CLASSES"),
                           ("DATALOADER", "SIZE_DIVISIBILITY"))


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
        _refuse_maskrcnn_benchmark(facts)
        _refuse_unmodelled(facts)
        _check_optimizer(facts)
        scaled = _auto_scaled(facts, options)
        schedule, late = _schedule(facts, scaled)
        ipe = _iters_per_epoch(facts, options, scaled.batch_size)
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer="sgd",
            momentum=_solver(facts, "momentum", "MOMENTUM", float), dampening=0.0,
            nesterov=_solver(facts, "nesterov", "NESTEROV", bool), decay=_decay(facts), lr=schedule,
            iters_per_epoch=ipe, epochs=schedule.total_iters / ipe if ipe else None,
            precision="16-mixed" if _solver(facts, "precision", ("AMP", "ENABLED"), bool) else "32",
            grad_clip_norm=_clip_norm(facts), ema=False, scheduler_interval="step", ignored_milestones=late,
            locations=facts.locations)


def load_with_bases(source: ConfigSource, ancestry: tuple[pathlib.Path, ...] = ()) -> list[ConfigSource]:
    """The config followed by its `_BASE_` files, highest priority first; missing or cyclic bases are errors.

    fvcore's load_yaml_with_base: `_BASE_` is one path or a list; bases of a list are merged in order (a later
    one overrides an earlier one, each with its own bases under it) and the child is merged over them all.
    """
    ancestry = (*ancestry, pathlib.Path(source.path).resolve())
    if BASE_KEY not in source.data:
        return [source]
    bases = source.data[BASE_KEY]
    layers = [source]
    for base in reversed(bases) if isinstance(bases, list) else [bases]:
        path = _base_path(source, base, ancestry)
        layers += load_with_bases(ConfigSource.load(path), ancestry)
    return layers


def _base_path(child: ConfigSource, base: object, ancestry: tuple[pathlib.Path, ...]) -> pathlib.Path:
    where = child.where((BASE_KEY,))
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{where}: {BASE_KEY} must be the path of a YAML file or a list of them, not {base!r}")
    if base.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: {BASE_KEY} {base!r} is a URL; download it and point {BASE_KEY} at the file")
    path = pathlib.Path(os.path.expanduser(base))
    path = pathlib.Path(os.path.normpath(path if path.is_absolute() else pathlib.Path(child.path).parent / path))
    if path.resolve() in ancestry:
        cycle = " -> ".join(str(p) for p in [*ancestry, path.resolve()])
        raise ConfigError(f"{where}: {BASE_KEY} {base!r} makes an inheritance cycle ({cycle}); remove one {BASE_KEY}")
    if not path.is_file():
        raise ConfigError(f"{where}: {BASE_KEY} file {path} does not exist (resolved relative to "
                          f"{pathlib.Path(child.path).parent}); fix the path")
    return path


def _default(key: str | tuple) -> object:
    value: object = DEFAULTS
    for part in (key,) if isinstance(key, str) else key:
        assert isinstance(value, dict), f"{key} goes below a leaf of DEFAULTS"
        value = value[part]
    return value


def _solver(facts: ConfigFacts, fact: str | None, key: str | tuple, kind: type):
    keypath = (S, key) if isinstance(key, str) else (S, *key)
    value = facts.get(fact, keypath, kind, _default(key))
    if value is None and key not in NULLABLE:
        raise facts.error(keypath, "is null; write a value or remove the key to use detectron2's default")
    return value


def _refuse_maskrcnn_benchmark(facts: ConfigFacts) -> None:
    """Read with detectron2's defaults, a maskrcnn-benchmark config would get a schedule it never runs."""
    for keypath in MASKRCNN_BENCHMARK_KEYS:
        if facts.has(keypath):
            raise ConfigError(f"{facts.where(keypath)}: {'.'.join(keypath)} is a maskrcnn-benchmark key, not "
                              "detectron2's (whose merge_from_file rejects it); maskrcnn-benchmark's SOLVER defaults "
                              "differ (BIAS_LR_FACTOR 2, WEIGHT_DECAY_BIAS 0, warmup 1/3 over 500 iterations) and "
                              "explr does not read its configs: convert by hand")


def _refuse_unmodelled(facts: ConfigFacts) -> None:
    for key, (off, why) in UNMODELLED.items():
        value = _solver(facts, None, key, type(off))
        if value != off:
            raise UnsupportedError(f"{facts.where((S, key))}: {S}.{key}={value!r} {why}, which explr's plan cannot "
                                   f"hold; set it to {json.dumps(off)}")


def _check_optimizer(facts: ConfigFacts) -> None:
    """build_optimizer always builds SGD; some forks add SOLVER.OPTIMIZER, which this reader does not know."""
    name = facts.get("optimizer", (S, "OPTIMIZER"), str, "SGD")
    if str(name).lower() != "sgd":
        raise UnsupportedError(f"{facts.where((S, 'OPTIMIZER'))}: SOLVER.OPTIMIZER={name!r} is not detectron2's "
                               "build_optimizer (SGD); explr reads SGD configs only: remove the key or convert by hand")


@dataclass(frozen=True, slots=True)
class _Scaled:
    """SOLVER values after DefaultTrainer.auto_scale_workers (engine/defaults.py) for the actual world size."""

    base_lr: float
    max_iter: int
    warmup_iters: int
    steps: tuple
    batch_size: int


def _auto_scaled(facts: ConfigFacts, options: ReadOptions) -> _Scaled:
    base_lr, max_iter = _solver(facts, "lr", "BASE_LR", float), _solver(facts, "total_iters", "MAX_ITER", int)
    warmup = _solver(facts, "warmup_iters", "WARMUP_ITERS", int)
    batch = _solver(facts, "batch_size", "IMS_PER_BATCH", int)
    steps = _solver(facts, "milestones", "STEPS", tuple)
    reference = _solver(facts, None, "REFERENCE_WORLD_SIZE", int)
    if reference == 0 or reference == options.num_devices:
        return _Scaled(base_lr, max_iter, warmup, steps, batch)
    if options.num_devices is None:
        raise ConfigError(f"{facts.where((S, 'REFERENCE_WORLD_SIZE'))}: REFERENCE_WORLD_SIZE={reference} makes "
                          "detectron2 rescale BASE_LR, MAX_ITER, STEPS and IMS_PER_BATCH to the number of GPUs; "
                          "pass --num-devices N")
    if reference < 0 or batch % reference:
        raise facts.error((S, "REFERENCE_WORLD_SIZE"), f"is {reference}; IMS_PER_BATCH={batch} must be a multiple "
                          "of it (detectron2 asserts this)")
    scale = options.num_devices / reference
    return _Scaled(base_lr * scale, int(round(max_iter / scale)), int(round(warmup / scale)),
                   tuple(int(round(step / scale)) for step in steps), int(round(batch * scale)))


def _schedule(facts: ConfigFacts, scaled: _Scaled) -> tuple[LRSchedule, tuple[int, ...]]:
    """build_lr_scheduler: LRMultiplier(WarmupParamScheduler(main)), stepped every iteration; and the STEPS past
    MAX_ITER, which build_lr_scheduler drops with a warning (EXP209)."""
    name = _solver(facts, "schedule", "LR_SCHEDULER_NAME", str)
    if name not in SCHEDULERS and name != POLY:
        raise facts.error((S, "LR_SCHEDULER_NAME"), f"is {name!r}; explr converts {', '.join(SCHEDULERS)}, {POLY}")
    max_iter, base_lr = scaled.max_iter, scaled.base_lr
    if max_iter <= 0 or base_lr <= 0:
        raise facts.error((S, "MAX_ITER" if max_iter <= 0 else "BASE_LR"), "must be > 0; fix it")
    if name == POLY:
        return _poly_schedule(facts, scaled), ()
    rescale = _solver(facts, None, "RESCALE_INTERVAL", bool)
    warmup = _warmup_iters(facts, scaled)
    kwargs = dict(base_lr=base_lr, total_iters=max_iter, decay=SCHEDULERS[name], warmup_blend="ramp_to_decay",
                  warmup_iters=warmup, warmup_factor=_solver(facts, "warmup_factor", "WARMUP_FACTOR", float),
                  warmup_method=_warmup_method(facts))
    late: tuple[int, ...] = ()
    if kwargs["decay"] == "step":
        steps = _steps(facts, scaled) if name == "WarmupMultiStepLR" else _fixed_gamma_steps(facts, max_iter)
        late = tuple(int(step) for step in scaled.steps if step > max_iter) if name == "WarmupMultiStepLR" else ()
        kwargs.update(milestones=_milestone_iters(steps, max_iter, warmup if rescale else 0),
                      gamma=_solver(facts, "gamma", "GAMMA", float))
    else:
        end = _solver(facts, "eta_min", "BASE_LR_END", float)
        if not 0 <= end <= base_lr:  # build_lr_scheduler asserts 0 <= BASE_LR_END / BASE_LR <= 1
            raise facts.error((S, "BASE_LR_END"), f"is {end}; it must lie in [0, BASE_LR={base_lr}]")
        start = warmup if rescale else 0  # RESCALE_INTERVAL: the cosine runs over the iterations after warmup
        kwargs.update(eta_min=end, decay_start=start, decay_iters=max_iter - start)
    return _validated(facts, LRSchedule(**kwargs)), late


def _warmup_method(facts: ConfigFacts) -> str:
    method = _solver(facts, "warmup_method", "WARMUP_METHOD", str)
    if method not in WARMUPS:
        raise facts.error((S, "WARMUP_METHOD"), f"is {method!r}; use one of {', '.join(WARMUPS)}")
    return method


def _validated(facts: ConfigFacts, schedule: LRSchedule) -> LRSchedule:
    return validated_schedule(schedule, f"{facts.source.path}: the detectron2 schedule is invalid: ", f"; fix the {S} keys")


def _poly_schedule(facts: ConfigFacts, scaled: _Scaled) -> LRSchedule:
    """projects/DeepLab/deeplab/lr_scheduler.py WarmupPolyLR, stepped every iteration: LR(i) = BASE_LR *
    warmup_factor(i) * (1 - i / MAX_ITER) ** POLY_LR_POWER, the warmup factor detectron2's _get_warmup_factor_at_iter
    (1 from WARMUP_ITERS on), multiplying the poly decay rather than ramping to it."""
    ending = _solver(facts, None, "POLY_LR_CONSTANT_ENDING", float)
    if ending:
        raise UnsupportedError(f"{facts.where((S, 'POLY_LR_CONSTANT_ENDING'))}: {S}.POLY_LR_CONSTANT_ENDING={ending}: "
                               "a constant ending of WarmupPolyLR is not modelled by explr; set it to 0")
    if scaled.warmup_iters > scaled.max_iter:
        raise facts.error((S, "WARMUP_ITERS"), f"is {scaled.warmup_iters}, past MAX_ITER={scaled.max_iter}: "
                          "WarmupPolyLR would warm up for the whole run; explr does not model that")
    schedule = LRSchedule(base_lr=scaled.base_lr, total_iters=scaled.max_iter, decay="linear", eta_min=0.0,
                          decay_iters=scaled.max_iter, power=_solver(facts, "poly_power", "POLY_LR_POWER", float),
                          warmup_iters=scaled.warmup_iters, warmup_method=_warmup_method(facts), warmup_blend="multiply",
                          warmup_factor=_solver(facts, "warmup_factor", "WARMUP_FACTOR", float))
    return _validated(facts, schedule)


def _first_iter(reached, max_iter: int) -> int:
    """The first iteration i in [0, max_iter] where the monotone predicate `reached(i)` holds (max_iter if none)."""
    lo, hi = 0, max_iter
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reached(mid) else (mid + 1, hi)
    return lo


def _warmup_iters(facts: ConfigFacts, scaled: _Scaled) -> int:
    """Iterations CompositeParamScheduler spends in warmup: while i / MAX_ITER + WHERE_EPSILON <= warmup length."""
    warmup, max_iter = scaled.warmup_iters, scaled.max_iter
    if warmup < 0:
        raise facts.error((S, "WARMUP_ITERS"), f"is {warmup}; it must be >= 0")
    length = min(warmup / max_iter, 1.0)
    warmup = min(warmup, max_iter)  # WARMUP_ITERS >= MAX_ITER: the ramp spans the whole run
    effective = _first_iter(lambda i: i / max_iter + WHERE_EPSILON > length, max_iter)
    if effective != warmup and warmup:  # only when MAX_ITER >= 1e6: fvcore's epsilon shortens the ramp
        raise UnsupportedError(f"{facts.where((S, 'WARMUP_ITERS'))}: with MAX_ITER={max_iter} fvcore's WHERE_EPSILON "
                               f"ends the warmup at iteration {effective}, not {warmup}, mid-ramp; explr does not "
                               "model that cut; use MAX_ITER < 1000000")
    return warmup


def _milestone_iters(steps: tuple[int, ...], max_iter: int, decay_start: int) -> tuple[int, ...]:
    """Iterations where MultiStepParamScheduler's int((where + WHERE_EPSILON) * MAX_ITER) reaches each step."""
    warmup_len = decay_start / max_iter
    span = 1 - warmup_len if warmup_len + (1 - warmup_len) == 1.0 else 1.0 - warmup_len  # CompositeParamScheduler
    start = (warmup_len + span) - span

    def where(i: int) -> float:  # the main scheduler's time: fixed, or rescaled after warmup (RESCALE_INTERVAL)
        return i / max_iter if not decay_start else (i / max_iter - start) / span

    found = [_first_iter(lambda i, m=m: int((where(i) + WHERE_EPSILON) * max_iter) >= m, max_iter) for m in steps]
    return tuple(i for i in found if i < max_iter)


def _steps(facts: ConfigFacts, scaled: _Scaled) -> tuple[int, ...]:
    steps, max_iter = scaled.steps, scaled.max_iter
    if any(not float(step).is_integer() or step <= 0 for step in steps) or list(steps) != sorted(set(steps)):
        raise facts.error((S, "STEPS"), f"is {_solver(facts, None, 'STEPS', tuple)}; write strictly increasing "
                          "iteration numbers > 0")
    if max_iter in steps:  # kept by build_lr_scheduler (x <= MAX_ITER), then rejected by MultiStepParamScheduler
        raise facts.error((S, "STEPS"), f"has {max_iter} = MAX_ITER, which detectron2's MultiStepParamScheduler "
                          "rejects (milestone >= num_updates); remove it")
    # build_lr_scheduler drops steps past MAX_ITER with a warning; they never happen.
    return tuple(int(step) for step in steps if step < max_iter)


def _fixed_gamma_steps(facts: ConfigFacts, max_iter: int) -> tuple[int, ...]:
    """StepWithFixedGammaParamScheduler: NUM_DECAYS decays at multiples of ceil(MAX_ITER / (NUM_DECAYS + 1))."""
    decays = _solver(facts, "milestones", "NUM_DECAYS", int)
    if decays <= 0 or max_iter < decays + 1:
        raise facts.error((S, "NUM_DECAYS"), f"is {decays}; it must be > 0 and below MAX_ITER={max_iter}")
    width = math.ceil(max_iter / float(decays + 1))
    return tuple(width * (k + 1) for k in range(decays))


def _decay(facts: ConfigFacts) -> DecayPolicy:
    wd = _solver(facts, "weight_decay", "WEIGHT_DECAY", float)
    norm = _solver(facts, "weight_decay_norm", "WEIGHT_DECAY_NORM", float)
    bias = _solver(facts, "weight_decay_bias", "WEIGHT_DECAY_BIAS", float)
    norm = wd if norm is None else norm  # get_default_optimizer_params: None leaves norm layers on WEIGHT_DECAY
    if bias is not None and bias != norm:
        raise UnsupportedError(f"{facts.where((S, 'WEIGHT_DECAY_BIAS'))}: WEIGHT_DECAY_BIAS={bias} also applies to "
                               f"norm-layer biases, whose weights get WEIGHT_DECAY_NORM={norm}; explr's plan cannot "
                               "split a norm layer; set WEIGHT_DECAY_BIAS to null or to WEIGHT_DECAY_NORM")
    return DecayPolicy(other=wd, norm=norm, bias=bias, norm_layers="detectron2")


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


def _iters_per_epoch(facts: ConfigFacts, options: ReadOptions, batch: int) -> int | None:
    """Nominal iterations per epoch, or None: detectron2's schedule is in iterations and does not need it."""
    if options.iters_per_epoch is not None:
        return iters_per_epoch(facts.source, options, batch_size=None)  # validates the flag
    if options.batch_size:
        batch = options.batch_size * (options.num_devices or 1)  # --batch-size is per device
    names = [options.dataset] if options.dataset else (facts.get("dataset", ("DATASETS", "TRAIN"), list, []) or [])
    sizes = [DATASET_SIZES.get(str(name).lower()) for name in names]  # DATASETS.TRAIN are concatenated
    known = [s for s in sizes if s is not None]
    size = options.dataset_size or (sum(known) if known and len(known) == len(sizes) else None)
    return math.ceil(size / batch) if size and batch > 0 else None


ADAPTER = Detectron2Adapter()
