"""torch.optim optimizer and LR-scheduler specs, shared by the formats that name torch classes
(Lightning CLI `class_path`/`init_args`, Hydra `_target_`).

Semantics follow torch exactly (checked against the real schedulers in tests):
- schedulers count *scheduler steps*; Lightning (and the usual Hydra/Lightning module) step them once
  per epoch, so one scheduler step = `step_every` iterations;
- SequentialLR / ChainedScheduler cannot be built from a config: their inner schedulers need the optimizer,
  which neither LightningCLI (jsonargparse) nor hydra.utils.instantiate gives them (both fail on such a
  config), so explr refuses them as the frameworks do;
- CosineAnnealingLR is periodic: past T_max the LR rises again (refused: no phase model for it).
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, TypeGuard

import torch

from explr.configs.interpolation import unresolved_in
from explr.configs.source import ConfigSource, KeyPath
from explr.errors import ConfigError
from explr.findings import Location

OPTIMIZER_FAMILIES = {"SGD": "sgd", "Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop"}


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """A torch class named in a config, with its constructor arguments and where they are."""

    target: str  # as written: "torch.optim.SGD", "SGD", "torch.optim.lr_scheduler.MultiStepLR"
    args: dict  # constructor arguments (non-argument keys such as _partial_ already removed)
    args_path: KeyPath  # key path of the mapping holding the arguments
    target_path: KeyPath  # key path of the class_path / _target_ key

    @property
    def class_name(self) -> str:
        return self.target.rsplit(".", 1)[-1]


@dataclass(slots=True)
class Facts:
    """Values read from specs, with locations, for building a TrainingPlan."""

    values: dict[str, Any] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)

    def put(self, name: str, value: Any, where: Location | None) -> None:
        self.values[name] = value
        if where is not None:
            self.locations[name] = where


# kind -> (module the class must come from, base classes it must derive from)
_KINDS = {
    "optimizer": (torch.optim, (torch.optim.Optimizer,)),
    "LR scheduler": (torch.optim.lr_scheduler, (torch.optim.lr_scheduler.LRScheduler,
                                                torch.optim.lr_scheduler.ReduceLROnPlateau)),
}


_ABSTRACT = {torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler,
             getattr(torch.optim.lr_scheduler, "_LRScheduler", torch.optim.lr_scheduler.LRScheduler)}


def _concrete(c: object, bases: tuple[type, ...]) -> TypeGuard[type[object]]:
    """A class of `bases` that can be built (not one of their abstract roots)."""
    return isinstance(c, type) and issubclass(c, bases) and c not in _ABSTRACT


def _init_parameters(cls: type[object]) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(cls.__init__).parameters


def resolve(source: ConfigSource, spec: ClassSpec, kind: str, supported: str) -> type[object]:
    """The torch class a spec names; ConfigError naming file:line when it is not a torch class of that kind."""
    module, bases = _KINDS[kind]
    unresolved = unresolved_in(spec.args)
    if unresolved:  # the framework resolves every argument when it builds the object: so must explr
        raise source.unresolved_error(spec.args_path + unresolved[0], unresolved[1])
    prefix = spec.target.rsplit(".", 1)[0] if "." in spec.target else module.__name__
    cls = getattr(module, spec.class_name, None)
    if not prefix.startswith("torch.optim") or not _concrete(cls, bases):
        raise ConfigError(f"{source.where(spec.target_path)}: unknown {kind} class {spec.target!r}; "
                          f"explr converts {supported}")
    _check_args(source, spec, cls)
    return cls


def _torch_classes(kind: str) -> list[type[object]]:
    module, bases = _KINDS[kind]
    found = {getattr(module, name) for name in dir(module) if not name.startswith("_")}
    return sorted((c for c in found if _concrete(c, bases)), key=lambda c: c.__name__)


def _fits(cls: type[object], keys: set) -> bool:
    """Does `cls(...)` take exactly these keyword arguments (every key accepted, every required one given)?"""
    params = {k: p for k, p in _init_parameters(cls).items()
              if k not in ("self", "params", "optimizer") and p.kind is not p.VAR_KEYWORD}
    required = {k for k, p in params.items() if p.default is p.empty and p.kind is not p.VAR_POSITIONAL}
    return keys <= set(params) and required <= keys


_PARSER_CALL = {"optimizer": "parser.add_optimizer_args(...)", "LR scheduler": "parser.add_lr_scheduler_args(...)"}


def infer_class(source: ConfigSource, args: dict, path: KeyPath, kind: str, flag: str) -> tuple[str, str]:
    """(dotted class, why) of the one torch `kind` class whose constructor takes exactly the keys in `args`;
    a ConfigError naming `flag` when none or several fit (the script fixes the class, the config cannot say)."""
    module = _KINDS[kind][0].__name__
    fits = [c for c in _torch_classes(kind) if _fits(c, set(map(str, args)))]
    keys = ", ".join(map(str, args)) or "no arguments"
    if len(fits) != 1:
        names = ", ".join(c.__name__ for c in fits[:8]) + (" ..." if len(fits) > 8 else "")
        why = f"{len(fits)} torch {kind} classes take them ({names})" if fits else f"no torch {kind} class takes them"
        raise ConfigError(f"{source.where(path)}: {'.'.join(map(str, path))} has no class_path and its arguments "
                          f"({keys}) do not name one class: {why}; pass {flag} with the class your script gives "
                          f"LightningCLI ({_PARSER_CALL[kind]})")
    target = f"{module}.{fits[0].__name__}"
    return target, (f"{'.'.join(map(str, path))} has no class_path: read as {target}, the only torch {kind} "
                    f"taking {keys}; pass {flag} if your script fixes another class")


def _check_args(source: ConfigSource, spec: ClassSpec, cls: type[object]) -> None:
    accepted = set(_init_parameters(cls)) - {"self", "params", "optimizer"}
    for key in spec.args:
        if key not in accepted:
            raise ConfigError(f"{source.where(spec.args_path + (key,))}: {key!r} is not an argument of "
                              f"{cls.__name__} (accepted: {', '.join(sorted(accepted))}); fix or remove it")


def _arg(source: ConfigSource, spec: ClassSpec, facts: Facts, fact: str, key: str, default: Any) -> Any:
    if key in spec.args:
        facts.put(fact, spec.args[key], source.location(spec.args_path + (key,)))
        return spec.args[key]
    facts.put(fact, default, None)
    return default


def read_optimizer(source: ConfigSource, spec: ClassSpec, facts: Facts) -> None:
    """optimizer, lr, momentum, dampening, nesterov, weight_decay into `facts` (torch defaults when absent)."""
    cls = resolve(source, spec, "optimizer", "torch.optim.SGD (Adam/AdamW/RMSprop with --approximate)")
    if cls.__name__ not in OPTIMIZER_FAMILIES:
        raise ConfigError(f"{source.where(spec.target_path)}: optimizer {cls.__name__} has no TEXP conversion; "
                          f"explr converts {', '.join(OPTIMIZER_FAMILIES)}")
    facts.put("optimizer", OPTIMIZER_FAMILIES[cls.__name__], source.location(spec.target_path))
    defaults = {k: p.default for k, p in _init_parameters(cls).items()}
    for fact in ("lr", "momentum", "dampening", "nesterov", "weight_decay"):
        default = defaults.get(fact, False if fact == "nesterov" else 0.0)
        _arg(source, spec, facts, fact, fact, default)
    for fact in ("lr", "momentum", "dampening", "weight_decay"):
        value = facts.values[fact]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source.where(spec.args_path + (fact,))}: {fact}={value!r} must be a number")


# ---- schedulers: each reader gives LRSchedule keyword arguments counted in scheduler steps -------------

@dataclass(frozen=True, slots=True)
class StepContext:
    base_lr: float
    total_steps: int  # scheduler steps in the whole run (epochs when stepped per epoch)


def _number(source: ConfigSource, spec: ClassSpec, facts: Facts, key: str, default: Any, *, positive_int=False,
            fact: str | None = None):
    value = _arg(source, spec, facts, fact or key, key, default)
    bad = (not isinstance(value, int) or value <= 0) if positive_int else not isinstance(value, (int, float))
    if value is None or isinstance(value, bool) or bad:
        need = "a positive integer" if positive_int else "a number"
        raise ConfigError(f"{source.where(spec.args_path + (key,))}: {spec.class_name} needs {key}, {need}")
    return value


def _multistep(source, spec, facts, ctx):
    milestones = _arg(source, spec, facts, "milestones", "milestones", None)
    if not isinstance(milestones, (list, tuple)) or not milestones or not all(isinstance(m, int) for m in milestones):
        raise ConfigError(f"{source.where(spec.args_path + ('milestones',))}: MultiStepLR needs a list of integer "
                          "milestones")
    gamma = _number(source, spec, facts, "gamma", 0.1)
    return {"decay": "step", "milestones": list(milestones), "gamma": float(gamma)}


def _step(source, spec, facts, ctx):
    size = _number(source, spec, facts, "step_size", None, positive_int=True)
    gamma = _number(source, spec, facts, "gamma", 0.1)
    milestones = list(range(size, ctx.total_steps, size))
    return {"decay": "step", "milestones": milestones, "gamma": float(gamma)}


def _cosine(source, spec, facts, ctx):
    t_max = _number(source, spec, facts, "T_max", None, positive_int=True)
    eta_min = _number(source, spec, facts, "eta_min", 0.0)
    if t_max < ctx.total_steps:
        raise ConfigError(f"{source.where(spec.args_path + ('T_max',))}: T_max={t_max} ends before training "
                          f"({ctx.total_steps} scheduler steps): torch's cosine then rises again; "
                          f"set T_max to {ctx.total_steps}")
    return {"decay": "cosine", "decay_iters": t_max, "eta_min": float(eta_min)}


def _linear(source, spec, facts, ctx):
    start_factor = float(_number(source, spec, facts, "start_factor", 1.0 / 3, fact="linear_start_factor"))
    end_factor = float(_number(source, spec, facts, "end_factor", 1.0, fact="linear_end_factor"))
    total = _number(source, spec, facts, "total_iters", 5, positive_int=True, fact="linear_total_iters")
    if end_factor == 1.0:  # warmup: start_factor -> 1, then constant
        return {"decay": "constant", "warmup_iters": total, "warmup_factor": start_factor}
    if start_factor == 1.0:  # linear decay to end_factor, then constant
        return {"decay": "linear", "decay_iters": total, "eta_min": ctx.base_lr * end_factor}
    raise ConfigError(f"{source.where(spec.args_path)}: LinearLR from {start_factor} to {end_factor}: explr converts "
                      "LinearLR as a warmup (end_factor 1, first) or a decay (start_factor 1)")


def _polynomial(source, spec, facts, ctx):
    """PolynomialLR: base * (1 - min(t, total_iters) / total_iters) ** power, 0 from total_iters on."""
    total = _number(source, spec, facts, "total_iters", 5, positive_int=True, fact="poly_total_iters")
    power = float(_number(source, spec, facts, "power", 1.0, fact="poly_power"))
    return {"decay": "linear", "decay_iters": total, "eta_min": 0.0, "power": power}


def _warm_restarts(source, spec, facts, ctx):
    """CosineAnnealingWarmRestarts: cosine cycles of T_0 * T_mult**i scheduler steps, each from base to eta_min
    (a cycled cosine, as timm's, with no cycle limit inside the run)."""
    t_0 = _number(source, spec, facts, "T_0", None, positive_int=True)
    t_mult = _number(source, spec, facts, "T_mult", 1, positive_int=True)
    eta_min = float(_number(source, spec, facts, "eta_min", 0.0))
    cycles, covered = 0, 0
    while covered <= ctx.total_steps:  # enough cycles that the LR never settles at eta_min during the run
        covered, cycles = covered + t_0 * t_mult ** cycles, cycles + 1
    return {"decay": "cosine", "decay_iters": t_0, "eta_min": eta_min, "cycle_mul": float(t_mult),
            "cycle_limit": cycles}


SCHEDULERS: dict[str, Callable] = {
    "MultiStepLR": _multistep, "StepLR": _step, "CosineAnnealingLR": _cosine, "LinearLR": _linear,
    "PolynomialLR": _polynomial, "CosineAnnealingWarmRestarts": _warm_restarts,
}
SUPPORTED_SCHEDULERS = "MultiStepLR, StepLR, CosineAnnealingLR, LinearLR, PolynomialLR, CosineAnnealingWarmRestarts"
NESTED = ("SequentialLR", "ChainedScheduler")  # schedulers of schedulers: no framework builds them from a config


def read_scheduler(source: ConfigSource, spec: ClassSpec, facts: Facts, ctx: StepContext) -> dict:
    """LRSchedule keyword arguments in scheduler steps."""
    cls = resolve(source, spec, "LR scheduler", SUPPORTED_SCHEDULERS)
    facts.put("scheduler", cls.__name__, source.location(spec.target_path))
    if cls.__name__ in NESTED:
        raise ConfigError(f"{source.where(spec.target_path)}: {cls.__name__} cannot be built from a config: its inner "
                          "schedulers need the optimizer, which LightningCLI and hydra.utils.instantiate do not give "
                          "them (the framework fails on this config too); use one scheduler, or build this one in code")
    if cls.__name__ == "ReduceLROnPlateau":
        raise ConfigError(f"{source.where(spec.target_path)}: scheduler ReduceLROnPlateau decays when a monitored "
                          "metric stops improving, so the schedule is not known before training; explr converts "
                          f"{SUPPORTED_SCHEDULERS}")
    if cls.__name__ not in SCHEDULERS:
        raise ConfigError(f"{source.where(spec.target_path)}: scheduler {cls.__name__} has no exact TEXP conversion "
                          f"yet; explr converts {SUPPORTED_SCHEDULERS}")
    return SCHEDULERS[cls.__name__](source, spec, facts, ctx)


_STEP_KEYS = ("milestones", "warmup_iters", "decay_start", "decay_iters")


def in_iterations(kwargs: dict, step_every: int) -> dict:
    """Scheduler-step counts to iterations (a scheduler stepped per epoch holds its LR for `step_every` iters)."""
    out = {k: v for k, v in kwargs.items() if not k.startswith("_")}
    for key in _STEP_KEYS:
        if key in out and out[key] is not None:
            out[key] = [m * step_every for m in out[key]] if key == "milestones" else out[key] * step_every
    out["milestones"] = tuple(out.get("milestones", ()))
    return {**out, "step_every": step_every}
