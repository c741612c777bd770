"""explr's own YAML format: a TrainingPlan written out, small and explicit (docs/formats.md).

    explr: 1
    optimizer: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 5.0e-4}
    schedule: {unit: epoch, decay: step, milestones: [100, 150], gamma: 0.1}
    training: {epochs: 200, dataset: cifar10, batch_size: 128}

Every key is in the table below (type, default); an unknown key is an error, never ignored.
`explr convert` appends a `texp:` section (which parameters are SI, exactness) and nothing else.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from explr.configs.adapter import (LENGTH_FLAGS, ReadOptions, finite_number, flag_length, iters_per_epoch,
                                   late_milestones, validated_schedule)
from explr.configs.source import ConfigSource
from explr.errors import ConfigError
from explr.lr_schedule import LRSchedule
from explr.plan import DecayPolicy, TrainingPlan

VERSION = 1
REQUIRED = object()
# section -> key -> (type, default). Types: float, int, bool, str, list (of ints), "num|null".
KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "optimizer": {"name": (str, "sgd"), "lr": (float, REQUIRED), "momentum": (float, 0.0),
                  "dampening": (float, 0.0), "nesterov": (bool, False), "weight_decay": (float, 0.0),
                  "weight_decay_norm": (float, None), "weight_decay_bias": (float, None)},
    "schedule": {"unit": (str, REQUIRED), "decay": (str, "constant"), "milestones": (list, []),
                 "gamma": (float, 0.1), "eta_min": (float, 0.0), "warmup": (int, 0), "warmup_factor": (float, 0.0),
                 "warmup_method": (str, "linear"), "warmup_blend": (str, "multiply"), "decay_start": (int, 0),
                 "decay_length": (int, None), "stepped_every": (str, "iter"), "cycle_limit": (int, 1),
                 "cycle_mul": (float, 1.0), "cycle_decay": (float, 1.0), "k_decay": (float, 1.0),
                 "power": (float, 1.0), "stable_timescale": (float, None), "anneal": (int, 0),
                 "anneal_shape": (str, "1-sqrt")},
    "training": {"epochs": (float, None), "iters": (int, None), "iters_per_epoch": (int, None),
                 "dataset": (str, None), "dataset_size": (int, None), "batch_size": (int, None),
                 "num_devices": (int, None), "drop_last": (bool, None), "precision": (str, "32"),
                 "grad_clip_norm": (float, None), "ema": (bool, False)},
    "texp": {"si": (str, None), "lock": (str, None), "params": (list, None), "exact": (bool, None),
             "deviations": (list, None)},
}
UNITS = ("epoch", "iter")
SHAPE_KEYS = ("cycle_limit", "cycle_mul", "cycle_decay", "k_decay", "power")  # named as LRSchedule's fields


class ExplrFormat:
    name = "explr"

    def detect(self, source: ConfigSource) -> str | None:
        return f"has the top-level key `explr: {VERSION}`" if source.data.get("explr") == VERSION else None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        values = read_sections(source)
        opt, sched, train = values["optimizer"], values["schedule"], values["training"]
        ipe = None if _per_iteration_only(sched, train, options) else _iters_per_epoch(source, options, train)
        given = flag_length(options, ipe or 0)  # no ipe: no --epochs either (_per_iteration_only)
        if given is not None:  # --epochs / --total-iters replace the config's length
            train = {**train, "iters": given, "epochs": None}
        schedule, late = _schedule(source, opt, sched, train, ipe)
        locations = {f"{section}.{key}": source.location((section, key))
                     for section in KEYS for key in source.data.get(section) or {}}
        locations.update({short: locations[long] for short, long in _FACT_KEYS.items() if long in locations})
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer=opt["name"].lower(), momentum=opt["momentum"],
            dampening=opt["dampening"], nesterov=opt["nesterov"],
            decay=DecayPolicy(opt["weight_decay"], opt["weight_decay_norm"], opt["weight_decay_bias"]),
            lr=schedule, iters_per_epoch=ipe, epochs=schedule.total_iters / ipe if ipe else None,
            precision=str(train["precision"]),
            grad_clip_norm=train["grad_clip_norm"], ema=train["ema"],
            scheduler_interval="epoch" if schedule.step_every > 1 else "step", ignored_milestones=late,
            locations=locations)

    def rewrite(self, converted) -> tuple[str, list[str]]:
        """Append the `texp:` section; the rest of the file stays byte for byte."""
        from explr.configs.rewrite import Rewriter
        from explr.configs.texp_args import texp_section

        source = converted.source
        if "texp" in source.data:
            raise ConfigError(f"{source.where(('texp',))}: this plan is already converted; convert the original")
        rewriter = Rewriter(source)
        rewriter.add_key((), "texp", texp_section(converted))
        use = "optimizer, scheduler = explr.integrations.build(model, PLAN, example_inputs=batch)"
        return rewriter.text(), [f"run it with: {use}"]


_FACT_KEYS = {"lr": "optimizer.lr", "momentum": "optimizer.momentum", "weight_decay": "optimizer.weight_decay",
              "nesterov": "optimizer.nesterov", "milestones": "schedule.milestones", "gamma": "schedule.gamma",
              "warmup": "schedule.warmup", "epochs": "training.epochs", "total_iters": "training.iters",
              "iters_per_epoch": "training.iters_per_epoch", "optimizer": "optimizer.name",
              "grad_clip_norm": "training.grad_clip_norm", "ema": "training.ema"}


def read_sections(source: ConfigSource) -> dict[str, dict[str, Any]]:
    """Every section's values with defaults filled in; ConfigError at file:line for unknown or mistyped keys."""
    for key in source.data:
        if key != "explr" and key not in KEYS:
            raise ConfigError(f"{source.where((key,))}: unknown section {key!r}; explr format has "
                              f"{', '.join(KEYS)} (docs/formats.md)")
    return {section: _read_section(source, section) for section in KEYS}


def _read_section(source: ConfigSource, section: str) -> dict[str, Any]:
    given = source.data.get(section) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{source.where((section,))}: {section} must be a mapping of keys")
    out = {}
    for key, value in given.items():
        if key not in KEYS[section]:
            raise ConfigError(f"{source.where((section, key))}: unknown key {section}.{key}; allowed: "
                              f"{', '.join(KEYS[section])}")
        out[key] = _typed(source, (section, key), value, *KEYS[section][key])
    for key, (_, default) in KEYS[section].items():
        if key not in out:
            if default is REQUIRED:
                raise ConfigError(f"{source.where((section,)) if section in source.data else source.path}: "
                                  f"{section}.{key} is missing; set it (docs/formats.md)")
            out[key] = list(default) if isinstance(default, list) else default
    return out


def _typed(source: ConfigSource, keypath: tuple, value: Any, kind: Any, default: Any) -> Any:
    name = getattr(kind, "__name__", kind)
    if value is None:
        if default is None:  # null means "not stated" only where that is the default
            return None
        raise ConfigError(f"{source.where(keypath)}: {'.'.join(keypath)} is null; set a {name} or remove the key")
    ok = {float: finite_number(value), int: isinstance(value, int) and not isinstance(value, bool),
          bool: isinstance(value, bool), str: isinstance(value, (str, int)), list: isinstance(value, list)}[kind]
    if ok and keypath == ("schedule", "milestones"):
        ok, name = all(finite_number(m) for m in value), "a list of finite numbers"
    if not ok:
        raise ConfigError(f"{source.where(keypath)}: {'.'.join(keypath)}={value!r} must be {name}")
    return float(value) if kind is float else str(value) if kind is str else value


def _per_iteration_only(sched: dict, train: dict, options: ReadOptions) -> bool:
    """A plan all in iterations that gives no epoch length (detectron2 on a dataset of unknown size) needs none."""
    stated = (train["iters_per_epoch"], train["epochs"], train["dataset"], train["dataset_size"], options.dataset,
              options.dataset_size, options.iters_per_epoch, options.epochs)
    return sched["unit"] == "iter" and sched["stepped_every"] == "iter" and bool(train["iters"]) and \
        not any(value is not None for value in stated)


def _iters_per_epoch(source: ConfigSource, options: ReadOptions, train: dict) -> int:
    size_options = options if options.dataset_size or not train["dataset_size"] else \
        dataclasses.replace(options, dataset_size=train["dataset_size"])
    given = train["iters_per_epoch"]
    if given and options.iters_per_epoch is None:
        if train["batch_size"] and (train["dataset"] or train["dataset_size"]):  # stated twice: must agree
            derived = iters_per_epoch(source, size_options, batch_size=train["batch_size"], dataset=train["dataset"],
                                      num_devices=train["num_devices"], drop_last=train["drop_last"])
            if derived != given:
                raise ConfigError(f"{source.where(('training', 'iters_per_epoch'))}: training.iters_per_epoch="
                                  f"{given} contradicts dataset / batch size ({derived}); keep one")
        return given
    return iters_per_epoch(source, size_options, batch_size=train["batch_size"], dataset=train["dataset"],
                           num_devices=train["num_devices"], drop_last=train["drop_last"])


def _total_iters(source: ConfigSource, train: dict, ipe: int | None) -> int:
    from_epochs = round(train["epochs"] * ipe) if train["epochs"] and ipe else None
    if train["iters"] and from_epochs and train["iters"] != from_epochs:
        raise ConfigError(f"{source.where(('training', 'iters'))}: training.iters={train['iters']} contradicts "
                          f"training.epochs={train['epochs']:g} ({from_epochs} iterations at {ipe}/epoch); keep one")
    total = train["iters"] or from_epochs
    if not total:
        raise ConfigError(f"{source.where(('training',)) if 'training' in source.data else source.path}: "
                          f"set training.epochs or training.iters (the length of training), or {LENGTH_FLAGS}")
    return total


def _schedule(source: ConfigSource, opt: dict, sched: dict, train: dict, ipe: int | None) -> tuple[LRSchedule, tuple]:
    """`ipe` None only for plans all in iterations (_per_iteration_only), where no length is scaled by it."""
    unit = sched["unit"]
    if unit not in UNITS:
        raise ConfigError(f"{source.where(('schedule', 'unit'))}: unit={unit!r} must be one of {', '.join(UNITS)}")
    scale = ipe if unit == "epoch" and ipe else 1
    total = _total_iters(source, train, ipe)
    step_every = {"iter": 1, "epoch": ipe}.get(sched["stepped_every"])
    if step_every is None and not str(sched["stepped_every"]).isdigit():
        raise ConfigError(f"{source.where(('schedule', 'stepped_every'))}: must be iter, epoch or a number of "
                          "iterations")
    schedule = LRSchedule(
        base_lr=opt["lr"], total_iters=total, decay=sched["decay"],
        milestones=tuple(round(m * scale) for m in sched["milestones"]), gamma=sched["gamma"],
        eta_min=sched["eta_min"], warmup_iters=sched["warmup"] * scale, warmup_factor=sched["warmup_factor"],
        warmup_method=sched["warmup_method"], warmup_blend=sched["warmup_blend"],
        step_every=step_every or int(sched["stepped_every"]),
        decay_start=sched["decay_start"] * scale,
        decay_iters=sched["decay_length"] * scale if sched["decay_length"] else None,
        stable_timescale=sched["stable_timescale"] * scale if sched["stable_timescale"] is not None else None,
        anneal_iters=sched["anneal"] * scale, anneal_shape=sched["anneal_shape"],
        **{key: sched[key] for key in SHAPE_KEYS})
    where = f"{source.where(('schedule',)) if 'schedule' in source.data else source.path}: "
    return validated_schedule(schedule, where), late_milestones(schedule)  # late ones ignored, as torch does


def plan_document(plan: TrainingPlan) -> dict:
    """A TrainingPlan as an explr-format document (all lengths in iterations)."""
    lr, ipe = plan.lr, plan.iters_per_epoch
    schedule = {"unit": "iter", "decay": lr.decay, "milestones": list(lr.milestones), "gamma": lr.gamma,
                "eta_min": lr.eta_min, "warmup": lr.warmup_iters, "warmup_factor": lr.warmup_factor,
                "warmup_method": lr.warmup_method, "warmup_blend": lr.warmup_blend, "decay_start": lr.decay_start,
                "decay_length": lr.decay_iters, "stable_timescale": lr.stable_timescale, "anneal": lr.anneal_iters,
                "anneal_shape": lr.anneal_shape,
                "stepped_every": {1: "iter", ipe: "epoch"}.get(lr.step_every, str(lr.step_every)),
                **{key: getattr(lr, key) for key in SHAPE_KEYS}}
    optimizer = {"name": plan.optimizer, "lr": lr.base_lr, "momentum": plan.momentum, "dampening": plan.dampening,
                 "nesterov": plan.nesterov, "weight_decay": plan.decay.other,
                 "weight_decay_norm": plan.decay.norm, "weight_decay_bias": plan.decay.bias}
    training = {"iters": lr.total_iters, "iters_per_epoch": ipe, "precision": plan.precision,
                "grad_clip_norm": plan.grad_clip_norm, "ema": plan.ema}
    return {"explr": VERSION, "optimizer": optimizer, "schedule": _without_defaults("schedule", schedule),
            "training": _without_defaults("training", training)}


def _without_defaults(section: str, values: dict) -> dict:
    return {k: v for k, v in values.items() if KEYS[section][k][1] is REQUIRED or v != KEYS[section][k][1]}


ADAPTER = ExplrFormat()
