"""mmengine's chained LR schedulers, stepped the way its Runner steps them: the LR of every iteration.

mmengine (0.10, optim/scheduler/param_scheduler.py) computes each scheduler in its *chainable* form: at
each of its steps it rewrites the group's current LR from the LR the schedulers before it left. Where
several act at once, or where one starts from another's result (a cosine after a warmup, restarts, two
decays in a row), no closed form of explr's LRSchedule reproduces that; this module replays the chain
with the same float operations in the same order, so the LRs are mmengine's own.

The replay (Runner._build_param_scheduler, ParamSchedulerHook): the schedulers are built in list order,
and each one's __init__ takes its step 0 (`_global_step` 0) when begin == 0; after every iteration the
per-iteration schedulers step in list order, and after every epoch's last iteration the per-epoch ones
do. A scheduler acts on its own steps begin <= step < end; its `last_step` counts the steps it acted.
A group's `initial_lr` is its LR when the first scheduler is built (OneCycleLR overwrites it).
"""
from __future__ import annotations

import functools
import math
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

INF = int(1e9)  # mmengine's "no end"


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One mmengine LR scheduler as built (after `convert_to_iter_based`): begin/end in its own steps."""

    kind: str  # mmengine's class name: "LinearLR", "CosineAnnealingLR", ...
    begin: int
    end: int
    every: int  # iterations per own step: 1 (by_epoch=False or converted) or the epoch length
    args: tuple[tuple[str, Any], ...] = ()  # the constructor's other arguments (lists as tuples)

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "begin": self.begin, "end": self.end, "every": self.every,
                "args": {k: list(v) if isinstance(v, tuple) else v for k, v in self.args}}

    @classmethod
    def from_dict(cls, value: Any) -> "ChainLink":
        """From to_dict's form (any mapping: a config may hand an OmegaConf or mmengine ConfigDict)."""
        args = tuple((str(k), tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in dict(value["args"]).items())
        return cls(str(value["kind"]), int(value["begin"]), int(value["end"]), int(value["every"]), args)


@dataclass(slots=True)
class _Group:
    """The parts of an optimizer param group the schedulers read and write."""

    lr: float
    initial_lr: float
    max_lr: float = 0.0
    min_lr: float = 0.0


class _Scheduler:
    """_ParamScheduler.step for one group: count the global step, act inside [begin, end)."""

    def __init__(self, link: ChainLink, group: _Group):
        self.link, self.group = link, group
        self.base = group.initial_lr  # base_values: the group's initial_lr when this scheduler is built
        self.global_step, self.last_step = -1, -1
        self.value = VALUES[link.kind]

    def step(self) -> None:
        self.global_step += 1
        if self.link.begin <= self.global_step < self.link.end:
            self.last_step += 1
            self.group.lr = self.value(self, self.group.lr)


def _constant(s: _Scheduler, lr: float) -> float:
    factor, total = s.link.arg("factor", 1.0 / 3), s.link.end - s.link.begin - 1
    if s.last_step == 0:
        return lr * factor
    if s.last_step > total or s.last_step != total:
        return lr
    return lr * (1.0 / factor)


def _linear(s: _Scheduler, lr: float) -> float:
    start, end = s.link.arg("start_factor", 1.0 / 3), s.link.arg("end_factor", 1.0)
    if s.last_step == 0:
        return lr * start
    total = s.link.end - s.link.begin - 1
    return lr * (1. + (end - start) / (total * start + (s.last_step - 1) * (end - start)))


def _quadratic_warmup(s: _Scheduler, lr: float) -> float:
    """mmdet's QuadraticWarmupLR (mmdet/engine/schedulers/quadratic_warmup.py): total_iters = end - begin."""
    total = s.link.end - s.link.begin
    if s.last_step == 0:
        return s.base * (2 * s.last_step + 1) / total**2
    return lr + s.base * (2 * s.last_step + 1) / total**2


def _multistep(s: _Scheduler, lr: float) -> float:
    milestones = Counter(s.link.arg("milestones", ()))
    if s.last_step not in milestones:
        return lr
    return lr * s.link.arg("gamma", 0.1) ** milestones[s.last_step]


def _step(s: _Scheduler, lr: float) -> float:
    if s.last_step == 0 or s.last_step % s.link.arg("step_size") != 0:
        return lr
    return lr * s.link.arg("gamma", 0.1)


def _exponential(s: _Scheduler, lr: float) -> float:
    return lr if s.last_step == 0 else lr * s.link.arg("gamma")


def _eta_min(s: _Scheduler) -> float:
    ratio, eta_min = s.link.arg("eta_min_ratio"), s.link.arg("eta_min")
    if ratio is None:
        return 0. if eta_min is None else eta_min  # CosineAnnealingLR: neither given means 0
    return s.base * ratio


def _cosine(s: _Scheduler, lr: float) -> float:
    t_max, eta_min = s.link.arg("T_max") or (s.link.end - s.link.begin), _eta_min(s)
    if s.last_step == 0:
        return lr
    if (s.last_step - 1 - t_max) % (2 * t_max) == 0:
        return lr + (s.base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
    return ((1 + math.cos(math.pi * s.last_step / t_max)) / (1 + math.cos(math.pi * (s.last_step - 1) / t_max))
            * (lr - eta_min) + eta_min)


def _poly(s: _Scheduler, lr: float) -> float:
    if s.last_step == 0:
        return lr
    eta_min, total = s.link.arg("eta_min", 0), s.link.end - s.link.begin - 1
    return (lr - eta_min) * (1 - 1 / (total - s.last_step + 1))**s.link.arg("power", 1.0) + eta_min


def _one_cycle_phases(link: ChainLink) -> list[tuple[float, str, str]]:
    """(end_step, start, end) of OneCycleParamScheduler._schedule_phases."""
    total, pct = link.arg("total_steps") or (link.end - link.begin), link.arg("pct_start", 0.3)
    if link.arg("three_phase", False):
        return [(float(pct * total) - 1, "initial_lr", "max_lr"), (float(2 * pct * total) - 2, "max_lr", "initial_lr"),
                (total - 1, "initial_lr", "min_lr")]
    return [(float(pct * total) - 1, "initial_lr", "max_lr"), (total - 1, "max_lr", "min_lr")]


def _one_cycle(s: _Scheduler, lr: float) -> float:
    phases, start_step = _one_cycle_phases(s.link), 0.0
    if s.last_step > phases[-1][0] + 1:
        raise ValueError(f"OneCycleLR is stepped {s.last_step + 1} times, past its total_steps={phases[-1][0] + 1}")
    for i, (end_step, start, end) in enumerate(phases):
        if s.last_step <= end_step or i == len(phases) - 1:
            pct = (s.last_step - start_step) / (end_step - start_step)
            low, high = getattr(s.group, start), getattr(s.group, end)
            if s.link.arg("anneal_strategy", "cos") == "linear":
                return (high - low) * pct + low
            return high + (low - high) / 2.0 * (math.cos(math.pi * pct) + 1)
        start_step = end_step
    raise AssertionError("OneCycleLR has phases")  # the last phase always answers


def _cosine_restart(s: _Scheduler, lr: float) -> float:
    periods = s.link.arg("periods")
    ends = [sum(periods[0:i + 1]) for i in range(len(periods))]
    idx = next((i for i, end in enumerate(ends) if s.last_step < end), None)
    if idx is None:
        return lr
    restart = 0 if idx == 0 else ends[idx - 1]
    step, period, eta_min = s.last_step - restart, periods[idx], _eta_min(s)
    if step == 0:
        return s.base * s.link.arg("restart_weights", (1,))[idx]
    return (1 + math.cos(math.pi * step / period)) / (1 + math.cos(math.pi * (step - 1) / period)) * (lr - eta_min) + eta_min


VALUES: dict[str, Callable[[_Scheduler, float], float]] = {
    "ConstantLR": _constant, "LinearLR": _linear, "QuadraticWarmupLR": _quadratic_warmup,
    "MultiStepLR": _multistep, "StepLR": _step, "ExponentialLR": _exponential, "CosineAnnealingLR": _cosine,
    "PolyLR": _poly, "OneCycleLR": _one_cycle, "CosineRestartLR": _cosine_restart,
}


def _built(links: tuple[ChainLink, ...], lr: float) -> tuple[_Group, list[_Scheduler]]:
    """The group after every scheduler's __init__ (OneCycleLR sets initial/max/min_lr first, then steps)."""
    group = _Group(lr, lr)
    schedulers = []
    for link in links:
        if link.kind == "OneCycleLR":
            group.max_lr = float(link.arg("eta_max", 0))
            group.initial_lr = group.max_lr / link.arg("div_factor", 25.)
            group.min_lr = group.initial_lr / link.arg("final_div_factor", 1e4)
        scheduler = _Scheduler(link, group)
        scheduler.step()
        schedulers.append(scheduler)
    return group, schedulers


@functools.lru_cache(maxsize=128)  # one table per param group's LR: each step asks every group (layer-wise decay)
def chained_lrs(links: tuple[ChainLink, ...], lr: float, total_iters: int) -> array:
    """The LR of iterations 0 .. total_iters of a group that starts at `lr` (float64, mmengine's operations);
    the last one is what the schedulers leave after training, held beyond it.

    Raises ArithmeticError or ValueError where mmengine's own step fails (a zero divisor, OneCycleLR past
    total_steps)."""
    group, schedulers = _built(links, lr)
    per_iter = [s for s in schedulers if s.link.every == 1]
    per_epoch = [s for s in schedulers if s.link.every != 1]
    lrs = array("d")
    for i in range(total_iters):
        lrs.append(group.lr)
        for scheduler in per_iter:
            scheduler.step()
        for scheduler in per_epoch:
            if (i + 1) % scheduler.link.every == 0:
                scheduler.step()
    lrs.append(group.lr)
    return lrs


def chain_events(links: tuple[ChainLink, ...], total_iters: int) -> list[tuple[str, int]]:
    """(label, iteration) where a scheduler of the chain starts or stops acting, inside training."""
    events = [(f"{link.kind} begins", link.begin * link.every) for link in links]
    events += [(f"{link.kind} ends", link.end * link.every) for link in links if link.end < INF]
    events += [(f"{link.kind} {label}", (link.begin + step) * link.every) for link in links
               for label, step in _inner_events(link) if 0 < step < link.end - link.begin]
    return sorted((label, at) for label, at in events if 0 < at < total_iters)


def _inner_events(link: ChainLink) -> list[tuple[str, int]]:
    """The scheduler's own steps where its formula jumps: milestones, restarts."""
    if link.kind == "MultiStepLR":
        return [("milestone", m) for m in sorted(set(link.arg("milestones", ())))]
    if link.kind == "CosineRestartLR":
        periods = link.arg("periods", ())
        return [("restart", sum(periods[:i + 1])) for i in range(len(periods) - 1)]
    return []
