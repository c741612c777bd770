"""Build the two training setups the check compares, from a TrainingPlan and the SI parameter names.

original:  the config's optimizer on the config's weight-decay policy (explr.param_groups with no SI
           set gives exactly those groups), LR written from the schedule every iteration;
converted: explr.param_groups(SI set) + explr.TEXP — the very runtime a converted config runs on.
"""
from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Callable, Protocol, TypeGuard

import torch
from torch import nn

from explr.audit_report import AuditReport
from explr.check.runner import Amp, ExactSchedule, Run
from explr.errors import UnsupportedError
from explr.lr_schedule import LRSchedule
from explr.model_copy import private_copy
from explr.plan import TrainingPlan
from explr.schedule.groups import ORIGINAL_WD, SI_TAG, param_groups
from explr.schedule.phantom import SGDHyper, trace
from explr.schedule.runtime import TEXP


SIChoice = AuditReport | str | list[str]  # the converted run's SI set: an audit, a lock-file path, or names as given


@dataclass(frozen=True, slots=True)
class OptimizerRow:
    cls: type
    hyper: Callable[[TrainingPlan], dict]  # constructor arguments read from the plan


OPTIMIZERS = {
    "sgd": OptimizerRow(torch.optim.SGD, lambda p: {"momentum": p.momentum, "dampening": p.dampening,
                                                    "nesterov": p.nesterov}),
    "adam": OptimizerRow(torch.optim.Adam, lambda p: {}),
    "adamw": OptimizerRow(torch.optim.AdamW, lambda p: {}),
}


def _optimizer_row(plan: TrainingPlan) -> OptimizerRow:
    row = OPTIMIZERS.get(plan.optimizer)
    if row is None:
        raise UnsupportedError(f"{plan.path}: optimizer {plan.optimizer!r} cannot be simulated by the check; "
                               f"it knows {', '.join(OPTIMIZERS)}")
    return row


def _label(group: dict, converted: bool) -> str:
    """The weight decay a group actually trains with (an SI group of the converted run: 0, and what it was)."""
    if group.get(SI_TAG):
        return f"SI: wd 0 (was {group[ORIGINAL_WD]:g})"
    wd = f"wd {group.get('weight_decay', 0.0):g}"
    return f"other: {wd}" if converted else wd


def _optimizer(model: nn.Module, plan: TrainingPlan, si: SIChoice, lr: float) -> torch.optim.Optimizer:
    row = _optimizer_row(plan)
    groups = param_groups(model, si, no_decay_norm_bias=plan.decay, lr=lr, **row.hyper(plan))
    return row.cls(groups)


def original_run(name: str, model: nn.Module, plan: TrainingPlan, schedule: LRSchedule,
                 amp: Amp | None = None) -> Run:
    optimizer = _optimizer(model, plan, [], schedule.base_lr)
    labels = [_label(g, converted=False) for g in optimizer.param_groups]
    return Run(name, model, optimizer, ExactSchedule(optimizer, schedule.lr_at), labels, amp=amp)


def converted_run(model: nn.Module, plan: TrainingPlan, si: SIChoice, schedule: LRSchedule,
                  approximate: bool, amp: Amp | None = None) -> tuple[Run, list[str]]:
    """The converted run and the warnings the runtime gave (approximations it had to make)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer = _optimizer(model, plan, si, schedule.base_lr)
        scheduler = TEXP(optimizer, schedule, approximate=approximate)
    labels = [_label(g, converted=True) for g in optimizer.param_groups]
    return Run("converted", model, optimizer, scheduler, labels, amp=amp), [str(w.message) for w in caught]


NORM_TYPES = tuple(t for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
                               getattr(nn, "RMSNorm", None)) if t is not None)
EXACT_EPS = 1e-30  # representable in float32/bfloat16 too (smallest normal ~1.2e-38)


class FloatEps(Protocol):
    eps: float


def has_float_eps(module: object) -> TypeGuard[FloatEps]:
    """The module's `eps` is a plain float attribute (normalization layers, custom norms), so it can be set."""
    return isinstance(getattr(module, "eps", None), float)


def tighten_norm_eps(model: nn.Module, extra_modules: Collection[str] = frozenset()) -> int:
    """Set the eps of every normalization layer to EXACT_EPS (the same in every run); returns how many.

    eps makes x/sqrt(σ²+eps) scale-invariant only up to O(eps/σ²) (docs/theory.md §1), a model property
    the paper and explr accept; removing it lets the check measure the conversion itself.
    `extra_modules`: module names the audit found normalizing (weight standardization, custom norms).
    """
    count = 0
    for name, module in model.named_modules():
        if (isinstance(module, NORM_TYPES) or name in extra_modules) and has_float_eps(module):
            module.eps = EXACT_EPS
            count += 1
    return count


def perturbed_copy(model: nn.Module, compute_dtype: torch.dtype | None = None) -> nn.Module:
    """The noise-floor twin: every initial weight moved to the next value up (torch.nextafter) that the
    forward computes with. Under autocast that is the next autocast-dtype value above the weight's rounding:
    a float32 ulp is below bfloat16's resolution, so the twin's casts would round to the very values the
    original's do and the twin would see no noise at all, while the converted run's rescaled weights do
    round differently. Without autocast: one ulp of the weight's own dtype."""
    twin = private_copy(model)
    with torch.no_grad():
        for p in twin.parameters():
            seen = p.to(compute_dtype or p.dtype)
            p.copy_(torch.nextafter(seen, torch.full_like(seen, float("inf"))))
    return twin


def norm_set(converted: Run) -> tuple[list[str], float | None]:
    """SI parameters sharing the most common original weight decay (by elements): ||θ~||/||θ|| = 1/s_t there."""
    by_decay: dict[float, list[str]] = {}
    for group in converted.optimizer.param_groups:
        if group.get(SI_TAG):
            by_decay.setdefault(float(group[ORIGINAL_WD]), []).extend(group["param_names"])
    if not by_decay:
        return [], None
    params = dict(converted.model.named_parameters())
    decay = max(by_decay, key=lambda d: sum(params[n].numel() for n in by_decay[d]))
    return by_decay[decay], decay


def attach_norm_set(runs: list[Run], names: list[str]) -> None:
    for run in runs:
        params = dict(run.model.named_parameters())
        run.si_params = [params[n] for n in names]


def predicted_ratios(plan: TrainingPlan, schedule: LRSchedule, decay: float | None, steps: int) -> Callable[[int], float | None]:
    """t -> 1/s_t from the engine (independent of the runtime); None where no exact prediction exists."""
    if decay is None or plan.optimizer != "sgd" or plan.nesterov:
        return lambda t: None
    scales = trace(schedule.lr_at, SGDHyper(plan.momentum, plan.dampening, decay), steps).scales
    return lambda t: 1.0 / scales[t - 1]
