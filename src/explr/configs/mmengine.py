"""OpenMMLab / mmengine Python configs -> TrainingPlan, and the converted config that inherits them.

mmengine's own `Config.fromfile` executes the file (`_base_` inheritance, lazy imports, custom
imports), so explr reads exactly what `tools/train.py` would run. Then (read from mmengine 0.10):
- `optim_wrapper`: OptimWrapper (or AmpOptimWrapper) around `optimizer` (torch's SGD/Adam/... by name);
  `paramwise_cfg` is applied by DefaultOptimWrapperConstructor: norm-layer parameters get
  weight_decay·norm_decay_mult, other biases weight_decay·bias_decay_mult (custom_keys first);
  `clip_grad` clips the gradients (not exact: EXP203);
- `param_scheduler`: configs/mmengine_schedule.py;
- `train_cfg`: EpochBasedTrainLoop (`max_epochs`) or IterBasedTrainLoop (`max_iters`);
- `auto_scale_lr` (enable): Runner.scale_lr multiplies the LR by world_size·batch_size / base_batch_size.

The converted config (`writes="inherit"` in configs/formats.py) is a few lines:
`_base_ = ['./orig.py']`, `custom_imports` naming explr.integrations.mmengine, and overrides of
`optim_wrapper` (explr's constructor: the original param groups, split into SI and the rest) and
`param_scheduler` (explr's TEXP scheduler): `python tools/train.py orig_explr.py` runs it unchanged.
"""
from __future__ import annotations

import ast
import os
import pathlib
from typing import Any

from explr.configs.adapter import DATASET_SIZES, ReadOptions, iters_per_epoch, validated_schedule
from explr.configs.mmengine_schedule import Loop, lr_schedulers, schedule_from
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError
from explr.findings import Location
from explr.plan import DecayPolicy, TrainingPlan

CONSTRUCTOR = "ExplrOptimWrapperConstructor"
SCHEDULER = "ExplrTEXPScheduler"
INTEGRATION = "explr.integrations.mmengine"
WRAPPERS = {"OptimWrapper": "32", "AmpOptimWrapper": "16-mixed"}
LOOPS = {"EpochBasedTrainLoop": True, "IterBasedTrainLoop": False}


def load_config(path: pathlib.Path) -> Any:
    """mmengine's Config of `path`; any error while mmengine executes it becomes one line naming the file."""
    try:
        from mmengine.config import Config
    except ImportError:
        raise ConfigError(f"{path}: reading mmengine configs needs mmengine: pip install mmengine (or explr's [mmengine] extra)") from None
    try:
        return Config.fromfile(str(path))
    except Exception as exc:  # noqa: BLE001 - the config is user code: whatever it raises is the user's error to fix
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(f"{path}: mmengine could not load this config: {type(exc).__name__}: {first}") from None


def named(spec: Any) -> Any:
    """`spec` with its `type` as a name: pure-Python configs (lazy imports) give the class itself."""
    if isinstance(spec, dict) and isinstance(spec.get("type"), type):
        return {**spec, "type": spec["type"].__name__}
    return spec


def loop_type(train: dict) -> str:
    """The train loop mmengine's Runner builds from train_cfg: its type, or by_epoch's choice."""
    return train.get("type") or ("EpochBasedTrainLoop" if train.get("by_epoch", False) else "IterBasedTrainLoop")


def definitions(path: pathlib.Path) -> dict[str, Location]:
    """file:line of each top-level name, as inheritance resolves it: the file itself over its `_base_` files."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    found: dict[str, Location] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                found.setdefault(target.id, Location(str(path), node.lineno))
    bases = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            bases = [value] if isinstance(value, str) else list(value)
    for base in bases:
        for name, where in definitions(pathlib.Path(os.path.normpath(path.parent / base))).items():
            found.setdefault(name, where)
    return found


class MMEngineAdapter:
    name = "mmengine"

    def detect(self, source: ConfigSource) -> str | None:
        return "a Python config (.py): mmengine's Config.fromfile reads it" if source.path.suffix == ".py" else None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        cfg = load_config(source.path)
        facts = _Facts(source.path, cfg)
        wrapper, optimizer = facts.optim_wrapper()
        loop = facts.loop(options)
        lr = facts.scaled_lr(float(optimizer["lr"]), options)
        where = facts.where("param_scheduler")
        schedulers = lr_schedulers(facts.schedulers(), str(optimizer["type"]).lower(), where)
        schedule = schedule_from(schedulers, loop, lr, where)
        schedule = validated_schedule(schedule, f"{facts.where('param_scheduler')}: the mmengine schedule is invalid: ",
                                      "; fix param_scheduler or train_cfg")
        name = str(optimizer["type"]).lower()
        clip = wrapper.get("clip_grad") or {}
        ipe = loop.iters_per_epoch
        return TrainingPlan(
            format=self.name, path=str(source.path), optimizer=name,
            momentum=float(optimizer.get("momentum", 0.0)), dampening=float(optimizer.get("dampening", 0.0)),
            nesterov=bool(optimizer.get("nesterov", False)), decay=facts.decay(float(optimizer.get("weight_decay", 0))),
            lr=schedule, iters_per_epoch=ipe, epochs=schedule.total_iters / ipe if ipe else None,
            precision=facts.precision(wrapper),
            grad_clip_norm=float(clip.get("max_norm", clip.get("clip_value", 0.0))) if clip else None,
            ema=facts.has_ema(),
            scheduler_interval="step" if schedule.step_every == 1 else "epoch", locations=facts.locations())


class _Facts:
    """Typed reads of a loaded mmengine Config; errors name the file:line that defines the key."""

    def __init__(self, path: pathlib.Path, cfg: Any):
        self.path, self.cfg = path, cfg
        self.defined = definitions(path)

    def where(self, name: str) -> str:
        return str(self.defined.get(name, Location(str(self.path))))

    def error(self, name: str, problem: str, kind: type = ConfigError) -> ConfigError:
        return kind(f"{self.where(name)}: {problem}")

    def locations(self) -> dict[str, Location]:
        keys = {"optim_wrapper": ("optimizer", "lr", "momentum", "weight_decay", "nesterov", "grad_clip_norm",
                                  "precision"),
                "param_scheduler": ("schedule", "milestones", "gamma", "warmup_iters"),
                "train_cfg": ("total_iters", "epochs"), "train_dataloader": ("batch_size",), "custom_hooks": ("ema",)}
        return {fact: self.defined[name] for name, facts in keys.items() if name in self.defined for fact in facts}

    def optim_wrapper(self) -> tuple[dict, dict]:
        wrapper = named(self.cfg.get("optim_wrapper"))
        if not isinstance(wrapper, dict) or not isinstance(wrapper.get("optimizer"), dict):
            raise self.error("optim_wrapper", "optim_wrapper.optimizer is missing; mmengine needs "
                                              "optim_wrapper = dict(optimizer=dict(type='SGD', lr=...))")
        constructor = named({"type": wrapper.get("constructor", "DefaultOptimWrapperConstructor")})["type"]
        if constructor == CONSTRUCTOR:
            raise self.error("optim_wrapper", "this config is already converted by explr; convert the original")
        if constructor != "DefaultOptimWrapperConstructor":
            raise self.error("optim_wrapper", f"optim_wrapper.constructor={constructor!r}: explr wraps "
                                              "DefaultOptimWrapperConstructor only", UnsupportedError)
        if wrapper.get("type", "OptimWrapper") not in WRAPPERS:
            raise self.error("optim_wrapper", f"optim_wrapper.type={wrapper['type']!r} is not modelled; explr "
                                              f"reads {', '.join(WRAPPERS)}", UnsupportedError)
        if int(wrapper.get("accumulative_counts", 1)) != 1:
            raise self.error("optim_wrapper", "optim_wrapper.accumulative_counts > 1 steps the optimizer less "
                                              "often than the schedulers; explr does not model it", UnsupportedError)
        optimizer = named(wrapper["optimizer"])
        if not isinstance(optimizer.get("type"), str) or "lr" not in optimizer:
            raise self.error("optim_wrapper", "optim_wrapper.optimizer needs type='SGD' (a name) and lr")
        return wrapper, optimizer

    def has_ema(self) -> bool:
        """mmengine averages weights with EMAHook (its ExponentialMovingAverage/momentum variants) in custom_hooks."""
        hooks = self.cfg.get("custom_hooks") or []
        return any("EMA" in str(named(hook).get("type", "")) for hook in hooks if isinstance(hook, dict))

    def precision(self, wrapper: dict) -> str:
        precision = WRAPPERS[wrapper.get("type", "OptimWrapper")]
        return "bf16-mixed" if precision != "32" and "bfloat16" in str(wrapper.get("dtype")) else precision

    def decay(self, weight_decay: float) -> DecayPolicy:
        paramwise = self.cfg.optim_wrapper.get("paramwise_cfg") or {}
        norm, bias = (paramwise.get(f"{key}_decay_mult") for key in ("norm", "bias"))
        return DecayPolicy(weight_decay, None if norm is None else weight_decay * float(norm),
                           None if bias is None else weight_decay * float(bias))

    def schedulers(self) -> list[dict]:
        schedulers = self.cfg.get("param_scheduler")
        if schedulers is None:
            return []
        schedulers = [named(s) for s in ([schedulers] if isinstance(schedulers, dict) else list(schedulers))]
        if not all(isinstance(s, dict) and isinstance(s.get("type"), str) for s in schedulers):
            raise self.error("param_scheduler", "param_scheduler must be dict(type='...', ...) or a list of them")
        return schedulers

    def loop(self, options: ReadOptions) -> Loop:
        train = named(self.cfg.get("train_cfg"))
        if not isinstance(train, dict):
            raise self.error("train_cfg", "train_cfg is missing; set dict(type='EpochBasedTrainLoop', max_epochs=N)")
        kind = loop_type(train)
        if kind not in LOOPS:
            raise self.error("train_cfg", f"train_cfg type {kind!r} is not modelled; explr reads "
                                          f"{', '.join(LOOPS)}", UnsupportedError)
        key = "max_epochs" if LOOPS[kind] else "max_iters"
        if not isinstance(train.get(key), int) or train[key] <= 0:
            raise self.error("train_cfg", f"train_cfg.{key} must be an integer > 0")
        return Loop(LOOPS[kind], train[key], self.iters_per_epoch(options))  # the summary speaks in epochs

    def _batch(self) -> int | None:
        loader = self.cfg.get("train_dataloader") or {}
        return loader.get("batch_size") if isinstance(loader, dict) else None

    def iters_per_epoch(self, options: ReadOptions) -> int:
        loader = self.cfg.get("train_dataloader") or {}
        dataset = (loader.get("dataset") or {}).get("type") if isinstance(loader, dict) else None
        known = options.iters_per_epoch or options.dataset_size or options.dataset or DATASET_SIZES.get(
            str(dataset).lower())
        if not known:
            raise self.error("train_dataloader", f"cannot tell iterations per epoch: the size of dataset {dataset!r} "
                                                 "is unknown; pass --iters-per-epoch N (or --dataset-size N and "
                                                 "--num-devices N)")
        if options.iters_per_epoch is None and options.num_devices is None:
            raise self.error("train_dataloader", "iterations per epoch depend on the number of GPUs (mmengine "
                                                 "splits each epoch across them); pass --num-devices N or "
                                                 "--iters-per-epoch N")
        source = ConfigSource(self.path, "", {})
        return iters_per_epoch(source, options, batch_size=self._batch(), dataset=str(dataset),
                               drop_last=bool(loader.get("drop_last", False)))

    def scaled_lr(self, lr: float, options: ReadOptions) -> float:
        """The LR mmengine trains with: Runner.scale_lr applies auto_scale_lr when it is enabled."""
        auto = self.cfg.get("auto_scale_lr") or {}
        if not auto.get("enable", False):
            return lr
        batch = self._batch()
        if options.num_devices is None or not batch:
            raise self.error("auto_scale_lr", "auto_scale_lr is enabled: the LR depends on the world size; pass "
                                              "--num-devices N (and the config needs train_dataloader.batch_size)")
        return lr * float(options.num_devices * batch) / float(auto["base_batch_size"])


def auto_scale_note(cfg: Any, lr: float) -> str | None:
    """What `tools/train.py --auto-scale-lr` would do to the LR, when the config has auto_scale_lr."""
    auto = cfg.get("auto_scale_lr") or {}
    loader = cfg.get("train_dataloader") or {}
    batch = loader.get("batch_size") if isinstance(loader, dict) else None
    if not auto or not batch or "base_batch_size" not in auto:
        return None
    state = "enabled (the converted LR includes it)" if auto.get("enable") else "off"
    per_gpu = lr * int(batch) / float(auto["base_batch_size"]) if not auto.get("enable") else None
    implied = f"; --auto-scale-lr would train with lr = {per_gpu:g} × number of GPUs" if per_gpu else ""
    return (f"auto_scale_lr is {state}: base_batch_size {auto['base_batch_size']}, batch_size {batch} per GPU"
            f"{implied}; explr's scheduler follows the optimizer's LR as built, so it stays exact "
            "(only an absolute eta_min does not scale)")


ADAPTER = MMEngineAdapter()
