"""Config rules (EXP2xx): small pure functions of a TrainingPlan, located at the config's file:line.

`explr convert` / `explr check` call `config_findings(plan)`. The numeric horizons (fp16 gradient
underflow, float32 overflow) come from the schedule engine (explr.schedule.horizons) with its
stated assumptions: the original weights and gradients keep their scale during the run.
"""
from __future__ import annotations

import functools
from typing import Iterator

from explr.findings import Finding, Location
from explr.lr_schedule import LRSchedule
from explr.plan import TrainingPlan
from explr.rules.registry import Checks, finding
from explr.schedule.horizons import Assumptions, Horizon, horizons
from explr.schedule.phantom import SGDHyper, trace

CONFIG_CHECKS: Checks[TrainingPlan] = Checks("config")


def config_findings(plan: TrainingPlan) -> list[Finding]:
    """All config-rule findings for `plan`, in code order."""
    return CONFIG_CHECKS.run(plan)


def where(plan: TrainingPlan, *keys: str) -> Location:
    """file:line of the first fact among `keys` that the reader located; else the config file."""
    for key in keys:
        location = plan.where(key)
        if location is not None:
            return location
    return Location(plan.path)


@CONFIG_CHECKS.register("EXP201")
def nesterov(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.nesterov and plan.optimizer == "sgd":  # other optimizers: EXP202 already
        yield finding("EXP201", "Nesterov momentum (nesterov=true) has no exact exponential-LR equivalent: its "
                                "look-ahead gradient term would need a second LR, so the converted run deviates; use "
                                "plain momentum for an exact conversion", location=where(plan, "nesterov"))


@CONFIG_CHECKS.register("EXP202")
def non_sgd_optimizer(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.optimizer != "sgd":
        yield finding("EXP202", f"optimizer {plan.optimizer!r} has no exact exponential-LR equivalent (only SGD "
                                "has): its moment estimates mix gradients of different scales, so the converted run "
                                "(LR η/s_t, s_t = Π(1-ηλ)) only approximates the weight-decay run; use SGD for an exact "
                                "conversion", location=where(plan, "optimizer"))


@CONFIG_CHECKS.register("EXP203")
def gradient_clipping(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.grad_clip_norm is not None and plan.grad_clip_norm > 0:
        yield finding("EXP203", f"gradient-norm clipping at {plan.grad_clip_norm:g}: converted SI gradients shrink "
                                "like s_t, so the clip acts differently than in the original run; remove it (or clip "
                                "only the non-SI parameters)", location=where(plan, "grad_clip_norm"))
    elif plan.grad_clip_key:
        yield finding("EXP203", f"gradient clipping is switched on by `{plan.grad_clip_key}` (its threshold is set in "
                                "the training code): converted SI gradients shrink like s_t, so the clip acts "
                                "differently than in the original run; remove it (or clip only the non-SI parameters)",
                      location=where(plan, "grad_clip_key"))


@CONFIG_CHECKS.register("EXP204")
def weight_averaging(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.ema:
        yield finding("EXP204", "weight EMA/SWA averages converted iterates of different scale (theta/s_t); the "
                                "average differs from the original run's: recompute BatchNorm statistics and "
                                "average only non-SI parameters",
                      location=where(plan, "ema"))


@CONFIG_CHECKS.register("EXP205")
def fp16_gradient_underflow(plan: TrainingPlan) -> Iterator[Finding]:
    if not plan.precision.startswith("16"):
        return
    found = _horizons(plan)
    plain, scaled = found.get("grads_underflow_float16"), found.get("grads_underflow_float16_loss_scaled")
    if plain is None or not plain.within_run:
        return
    with_scale = (f"with the default loss scale at {_when(scaled, plan)}" if scaled and scaled.within_run
                  else "loss scaling delays it past the end of the run")
    yield finding("EXP205", f"precision {plan.precision}: converted SI gradients shrink like s_t and underflow "
                            f"float16 at {_when(plain, plan)} ({with_scale}); train in bf16 or float32, or enable "
                            "renormalization", location=where(plan, "precision"))


@CONFIG_CHECKS.register("EXP206")
def fp32_weight_overflow(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.precision == "64":
        return
    overflow = _horizons(plan).get("weights_overflow_float32")
    if overflow is not None and overflow.within_run:
        yield finding("EXP206", f"converted SI weights grow like 1/s_t and overflow float32 at {_when(overflow, plan)}"
                                f" of {plan.total_iters} steps; enable the runtime's renormalization",
                      location=where(plan, "epochs", "weight_decay"))


@CONFIG_CHECKS.register("EXP207")
def per_epoch_scheduler(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.scheduler_interval == "epoch":
        yield finding("EXP207", "the original LR scheduler steps once per epoch; the converted LR changes every "
                                "iteration, so its scheduler must be stepped per iteration (interval: step)",
                      location=where(plan, "scheduler_interval", "scheduler"))


@CONFIG_CHECKS.register("EXP208")
def no_weight_decay_on_si(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.decay.other == 0:
        yield finding("EXP208", "weight decay is 0 for weights (the scale-invariant parameters): the phantom scale "
                                "stays 1 and the conversion changes nothing", location=where(plan, "weight_decay"))


@CONFIG_CHECKS.register("EXP209")
def milestones_after_end(plan: TrainingPlan) -> Iterator[Finding]:
    if plan.ignored_milestones:
        late = ", ".join(str(m) for m in plan.ignored_milestones)
        yield finding("EXP209", f"milestone(s) at iteration {late} lie at or past the end of training "
                                f"({plan.total_iters} iterations): torch never reaches them, so they are ignored",
                      location=where(plan, "milestones", "scheduler"))


@CONFIG_CHECKS.register("EXP210")
def class_inferred(plan: TrainingPlan) -> Iterator[Finding]:
    for fact, why in plan.class_notes:
        yield finding("EXP210", why, location=where(plan, fact))


def _horizons(plan: TrainingPlan) -> dict[str, Horizon]:
    if plan.optimizer != "sgd":  # the phantom scale models SGD; other optimizers get EXP202 instead
        return {}
    hyper = SGDHyper(momentum=plan.momentum, dampening=plan.dampening, weight_decay=plan.decay.other)
    return _horizons_of(plan.lr, hyper)


@functools.lru_cache(maxsize=8)
def _horizons_of(schedule: LRSchedule, hyper: SGDHyper) -> dict[str, Horizon]:
    """Horizons of the converted run (cached: EXP205 and EXP206 share one trace of the schedule)."""
    try:
        run = trace(schedule.lr_at, hyper, schedule.total_iters)
    except ValueError:  # lr*wd so large that no conversion exists: convert itself reports that
        return {}
    return horizons(run, hyper, Assumptions())


def _when(horizon: Horizon, plan: TrainingPlan) -> str:
    if horizon.step is None:
        return "no step (the LR ends at 0)"
    if plan.iters_per_epoch:
        return f"step {horizon.step} (epoch {horizon.step / plan.iters_per_epoch:.1f})"
    return f"step {horizon.step}"
