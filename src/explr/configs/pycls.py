"""pycls YAML (yacs CfgNode merged over pycls/core/config.py) -> TrainingPlan.

Semantics read from facebookresearch/pycls:
- pycls/core/config.py: the defaults in DEFAULTS below (note OPTIM.NESTEROV is True by default);
  TRAIN.BATCH_SIZE is the total mini-batch over NUM_GPUS; OPTIM.STEPS are epochs and must start at 0;
  OPTIM.MIN_LR is relative to BASE_LR.
- pycls/core/optimizer.py: SGD(lr=BASE_LR, momentum, weight_decay, dampening, nesterov); with
  BN.USE_CUSTOM_WEIGHT_DECAY, parameters whose *name* contains "bn" get BN.CUSTOM_WEIGHT_DECAY (the plan
  maps that to the norm kind); get_epoch_lr(e) = BASE_LR * lr_fun(e), times the warmup factor
  WARMUP_FACTOR * (1 - e / WARMUP_EPOCHS) + e / WARMUP_EPOCHS while e < WARMUP_EPOCHS ("multiply");
  lr_fun_steps = LR_MULT ** (index of the last STEPS entry <= e); lr_fun_cos / lr_fun_lin go from 1 to
  MIN_LR; lr_fun_exp = MIN_LR ** (e / MAX_EPOCH).
- pycls/core/trainer.py train_epoch: the LR is set once at the start of each epoch (step_every = iters
  per epoch); the train loader drops the last partial batch.
Older pycls had exp = GAMMA ** epoch; a config using 'exp' must therefore state OPTIM.MIN_LR.
"""
from __future__ import annotations

from explr.configs.adapter import ConfigFacts, ReadOptions, iters_per_epoch, late_milestones, validated_schedule
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError
from explr.lr_schedule import LRSchedule
from explr.plan import DecayPolicy, TrainingPlan

# pycls/core/config.py defaults.
DEFAULTS = {
    ("OPTIM", "OPTIMIZER"): "sgd", ("OPTIM", "BASE_LR"): 0.1, ("OPTIM", "MIN_LR"): 0.0,
    ("OPTIM", "LR_POLICY"): "cos", ("OPTIM", "STEPS"): (), ("OPTIM", "LR_MULT"): 0.1, ("OPTIM", "MAX_EPOCH"): 200,
    ("OPTIM", "MOMENTUM"): 0.9, ("OPTIM", "DAMPENING"): 0.0, ("OPTIM", "NESTEROV"): True,
    ("OPTIM", "WEIGHT_DECAY"): 5e-4, ("OPTIM", "WARMUP_FACTOR"): 0.1, ("OPTIM", "WARMUP_EPOCHS"): 0,
    ("OPTIM", "EMA_UPDATE_PERIOD"): 0, ("BN", "USE_CUSTOM_WEIGHT_DECAY"): False, ("BN", "CUSTOM_WEIGHT_DECAY"): 0.0,
    ("LN", "USE_CUSTOM_WEIGHT_DECAY"): False, ("LN", "CUSTOM_WEIGHT_DECAY"): 0.0,
    ("OPTIM", "BIAS_USE_CUSTOM_WEIGHT_DECAY"): False, ("OPTIM", "BIAS_CUSTOM_WEIGHT_DECAY"): 0.0,
    ("TRAIN", "BATCH_SIZE"): 128, ("TRAIN", "DATASET"): "", ("TRAIN", "MIXED_PRECISION"): False, ("NUM_GPUS",): 1,
}
# LR_POLICY -> LRSchedule decay ("steps" multiplies by LR_MULT at STEPS; the others end at MIN_LR * BASE_LR).
POLICIES = {"steps": "step", "cos": "cosine", "lin": "linear", "exp": "exp"}
OPTIMIZERS = ("sgd", "adam", "adamw")


class PyclsAdapter:
    name = "pycls"

    def detect(self, source: ConfigSource) -> str | None:
        optim = source.data.get("OPTIM")
        if not isinstance(optim, dict) or "SOLVER" in source.data or "_BASE_" in source.data:
            return None
        keys = [key for key in ("BASE_LR", "LR_POLICY", "MAX_EPOCH") if key in optim]
        return f"has {', '.join(f'OPTIM.{key}' for key in keys[:2])} (pycls optimizer config)" if keys else None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        facts = ConfigFacts([source])
        optimizer = _get(facts, "optimizer", ("OPTIM", "OPTIMIZER"), str).lower()
        if optimizer not in OPTIMIZERS:
            raise facts.error(("OPTIM", "OPTIMIZER"), f"is {optimizer!r}; pycls builds one of {', '.join(OPTIMIZERS)}")
        ipe = _iters_per_epoch(facts, options)
        schedule, late = _schedule(facts, ipe)
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer=optimizer,
            momentum=_get(facts, "momentum", ("OPTIM", "MOMENTUM"), float),
            dampening=_get(facts, "dampening", ("OPTIM", "DAMPENING"), float),
            nesterov=_get(facts, "nesterov", ("OPTIM", "NESTEROV"), bool), decay=_decay(facts), lr=schedule,
            iters_per_epoch=ipe, epochs=schedule.total_iters / ipe,
            precision="16-mixed" if _get(facts, "precision", ("TRAIN", "MIXED_PRECISION"), bool) else "32",
            grad_clip_norm=None, ema=_get(facts, "ema", ("OPTIM", "EMA_UPDATE_PERIOD"), int) > 0,
            scheduler_interval="epoch", ignored_milestones=late, locations=facts.locations)


def _get(facts: ConfigFacts, fact: str | None, keypath: tuple, kind: type):
    value = facts.get(fact, keypath, kind, DEFAULTS[keypath])
    if value is None:
        raise facts.error(keypath, "is null; write a value or remove the key to use pycls's default")
    return value


def _iters_per_epoch(facts: ConfigFacts, options: ReadOptions) -> int:
    total = _get(facts, "batch_size", ("TRAIN", "BATCH_SIZE"), int)
    gpus = _get(facts, "num_devices", ("NUM_GPUS",), int)
    if gpus <= 0 or total % gpus:
        raise facts.error(("TRAIN", "BATCH_SIZE"), f"is {total}; it must be a multiple of NUM_GPUS={gpus}")
    dataset = _get(facts, "dataset", ("TRAIN", "DATASET"), str) or None
    return iters_per_epoch(facts.source, options, batch_size=total // gpus, dataset=dataset, num_devices=gpus,
                           drop_last=True)


def _schedule(facts: ConfigFacts, ipe: int) -> tuple[LRSchedule, tuple[int, ...]]:
    """get_epoch_lr as an LRSchedule, and the STEPS at or past MAX_EPOCH (never reached: EXP209)."""
    policy = _get(facts, "schedule", ("OPTIM", "LR_POLICY"), str)
    if policy not in POLICIES:
        raise facts.error(("OPTIM", "LR_POLICY"), f"is {policy!r}; pycls defines {', '.join(POLICIES)}")
    epochs = _get(facts, "epochs", ("OPTIM", "MAX_EPOCH"), int)
    if epochs <= 0:
        raise facts.error(("OPTIM", "MAX_EPOCH"), f"is {epochs}; it must be > 0")
    base_lr = _get(facts, "lr", ("OPTIM", "BASE_LR"), float)
    kwargs = dict(base_lr=base_lr, total_iters=epochs * ipe, decay=POLICIES[policy], step_every=ipe,
                  warmup_iters=_get(facts, "warmup_iters", ("OPTIM", "WARMUP_EPOCHS"), int) * ipe,
                  warmup_factor=_get(facts, "warmup_factor", ("OPTIM", "WARMUP_FACTOR"), float))
    if policy == "steps":
        kwargs.update(milestones=tuple(e * ipe for e in _step_epochs(facts)),
                      gamma=_get(facts, "gamma", ("OPTIM", "LR_MULT"), float))
    else:
        if policy == "exp" and not facts.has(("OPTIM", "MIN_LR")):
            raise ConfigError(f"{facts.where(('OPTIM', 'LR_POLICY'))}: LR_POLICY 'exp' changed meaning between pycls "
                              "versions (GAMMA ** epoch, later MIN_LR ** (epoch / MAX_EPOCH)); set OPTIM.MIN_LR > 0")
        min_lr = _get(facts, "eta_min", ("OPTIM", "MIN_LR"), float)
        if policy == "exp" and min_lr <= 0:
            raise facts.error(("OPTIM", "MIN_LR"), f"is {min_lr}; the 'exp' policy needs OPTIM.MIN_LR > 0")
        kwargs.update(eta_min=min_lr * base_lr)
    schedule = LRSchedule(**kwargs)
    return validated_schedule(schedule, f"{facts.source.path}: the pycls schedule is invalid: ",
                              "; fix the OPTIM keys"), late_milestones(schedule)


def _step_epochs(facts: ConfigFacts) -> list[int]:
    """OPTIM.STEPS without its leading 0: the epochs where the LR is multiplied by LR_MULT."""
    key = ("OPTIM", "STEPS")
    steps = _get(facts, "milestones", key, tuple)
    if not steps or steps[0] != 0:
        raise facts.error(key, f"is {list(steps)}; the 'steps' policy needs a list starting at 0, e.g. [0, 30, 60]")
    if any(not float(s).is_integer() for s in steps) or list(steps) != sorted(set(steps)):
        raise facts.error(key, f"is {list(steps)}; write strictly increasing whole epochs")
    return [int(s) for s in steps[1:]]


def _decay(facts: ConfigFacts) -> DecayPolicy:
    """construct_optimizer: names with "bn", then "ln", then "bias" get their custom decay when it is enabled."""
    wd = _get(facts, "weight_decay", ("OPTIM", "WEIGHT_DECAY"), float)
    bn, ln = (_custom(facts, "weight_decay_norm", (part, "USE_CUSTOM_WEIGHT_DECAY"), (part, "CUSTOM_WEIGHT_DECAY"))
              for part in ("BN", "LN"))
    norm = wd if bn is None else bn
    # Known gap: with only BN customized, parameters named "ln" keep WEIGHT_DECAY in pycls but get the norm decay here.
    if ln is not None and ln != norm:
        raise UnsupportedError(f"{facts.where(('LN', 'CUSTOM_WEIGHT_DECAY'))}: layer-norm parameters get another "
                               f"weight decay than batch-norm ones ({norm}); explr's plan has one decay for all "
                               "normalization layers: make LN.CUSTOM_WEIGHT_DECAY equal")
    bias = _custom(facts, "weight_decay_bias", ("OPTIM", "BIAS_USE_CUSTOM_WEIGHT_DECAY"),
                   ("OPTIM", "BIAS_CUSTOM_WEIGHT_DECAY"))
    return DecayPolicy(other=wd, norm=None if bn is None and ln is None else norm, bias=bias)


def _custom(facts: ConfigFacts, fact: str, switch: tuple, value: tuple) -> float | None:
    return _get(facts, fact, value, float) if _get(facts, None, switch, bool) else None


ADAPTER = PyclsAdapter()
