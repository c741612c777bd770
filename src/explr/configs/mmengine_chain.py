"""mmengine `param_scheduler` lists beyond one warmup and one decay: replayed step by step (explr.lr_chain).

Span (one scheduler on the iteration axis) and Loop (the train loop) are the values both this replay and
configs/mmengine_schedule.py's closed forms read.

Each scheduler becomes a ChainLink as mmengine builds it. `convert_to_iter_based` runs the class's
build_iter_from_epoch, which multiplies begin, end and the arguments counted in epochs by the epoch length
(milestones, step_size, T_max, periods, total_steps: IN_EPOCHS); configs/mmengine_schedule.py has already
placed begin and end. Arguments a class does not take, or a replay on which mmengine's own step fails (a
zero divisor, OneCycleLR past total_steps), are refused with the scheduler's name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from explr.errors import ConfigError, UnsupportedError
from explr.lr_chain import ChainLink, chained_lrs
from explr.lr_schedule import LRSchedule


@dataclass(frozen=True, slots=True)
class Span:
    """One scheduler in iterations: it acts on steps [begin, end) of its own clock, stepped every `every` iters."""

    kind: str
    args: dict
    begin: int  # in its own steps (epochs when every > 1)
    end: int
    every: int  # 1: per iteration; iters_per_epoch: per epoch
    scale: int  # iterations per unit of milestones / step_size / T_max (epoch length when converted)

    def at(self, step: int) -> int:
        """The iteration where this scheduler's step `step` takes effect."""
        return step * self.every


@dataclass(frozen=True, slots=True)
class Loop:
    """The train loop: `max_epochs` (EpochBasedTrainLoop) or `max_iters` (IterBasedTrainLoop)."""

    by_epoch: bool
    length: int  # epochs or iterations
    iters_per_epoch: int

    @property
    def total_iters(self) -> int:
        return self.length * self.iters_per_epoch if self.by_epoch else self.length


# Constructor arguments of each class besides begin, end, by_epoch, last_step, verbose; the required ones first.
ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ConstantLR": ((), ("factor",)),
    "LinearLR": ((), ("start_factor", "end_factor")),
    "QuadraticWarmupLR": ((), ()),
    "MultiStepLR": (("milestones",), ("gamma",)),
    "StepLR": (("step_size",), ("gamma",)),
    "ExponentialLR": (("gamma",), ()),
    "CosineAnnealingLR": ((), ("T_max", "eta_min", "eta_min_ratio")),
    "PolyLR": ((), ("eta_min", "power")),
    "OneCycleLR": ((), ("eta_max", "total_steps", "pct_start", "anneal_strategy", "div_factor", "final_div_factor",
                        "three_phase")),
    "CosineRestartLR": (("periods",), ("restart_weights", "eta_min", "eta_min_ratio")),
}
IN_EPOCHS = {"MultiStepLR": "milestones", "StepLR": "step_size", "CosineAnnealingLR": "T_max",
             "CosineRestartLR": "periods", "OneCycleLR": "total_steps"}


def _frozen(value: Any) -> Any:
    """A config value as a hashable one (lists as tuples), numbers kept as mmengine gets them."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def checked_args(span: Span, where: str) -> dict:
    required, optional = ARGS[span.kind]
    args = {k: v for k, v in span.args.items() if k != "verbose"}
    unknown = sorted(set(args) - set(required) - set(optional))
    missing = [k for k in required if args.get(k) is None]
    if unknown or missing:
        problem = f"takes no {', '.join(unknown)}" if unknown else f"needs {', '.join(missing)}"
        raise ConfigError(f"{where}: param_scheduler {span.kind} {problem} (mmengine would not build it)")
    if span.kind == "OneCycleLR" and isinstance(args.get("eta_max"), (list, tuple)):
        raise UnsupportedError(f"{where}: OneCycleLR with one eta_max per param group is not modelled; give one "
                               "eta_max")
    return args


def link_of(span: Span, where: str) -> ChainLink:
    """The scheduler as mmengine builds it: epoch-counted arguments in iterations when it was converted."""
    args = checked_args(span, where)
    key = IN_EPOCHS.get(span.kind)
    if span.scale != 1 and key and args.get(key) is not None:
        value = args[key]
        args[key] = [v * span.scale for v in value] if isinstance(value, (list, tuple)) else value * span.scale
    return ChainLink(span.kind, span.begin, span.end, span.every, tuple(sorted((k, _frozen(v)) for k, v in args.items())))


def replayed_links(spans: list[Span], loop: Loop, base_lr: float, where: str) -> tuple[ChainLink, ...]:
    """The links of `spans`, replayed once through training: refused where mmengine's own stepping would fail
    (every list is replayed, also one that LRSchedule's closed forms then read)."""
    links = tuple(link_of(span, where) for span in spans)
    try:
        chained_lrs(links, base_lr, loop.total_iters)
    except (ArithmeticError, ValueError, TypeError) as exc:
        names = ", ".join(link.kind for link in links)
        raise UnsupportedError(f"{where}: mmengine cannot step param_scheduler [{names}] through training "
                               f"({type(exc).__name__}: {exc}); fix its arguments") from None
    return links


def chained_schedule(links: tuple[ChainLink, ...], loop: Loop, base_lr: float) -> LRSchedule:
    """The LRSchedule that replays `links` (replayed_links checked them)."""
    total = loop.total_iters
    every = 1 if any(link.every == 1 for link in links) or not links else loop.iters_per_epoch
    return LRSchedule(base_lr=base_lr, total_iters=total, decay="chain", chain=links, step_every=every)
