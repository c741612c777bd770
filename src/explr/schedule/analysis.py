"""Everything `explr schedule` shows, computed once: closed forms, phases, s_T and horizons."""
from __future__ import annotations

import math
from dataclasses import dataclass

from explr.lr_schedule import LRSchedule
from explr.schedule.closed_form import (
    Phase,
    alpha,
    growth_per_epoch,
    growth_per_step,
    log_inverse_scale_estimate,
    phase_table,
)
from explr.schedule.horizons import Assumptions, Horizon, horizons
from explr.schedule.phantom import SGDHyper, Trace, trace

SCHEMA = "explr.schedule/1"


@dataclass(frozen=True, slots=True)
class ScheduleAnalysis:
    schedule: LRSchedule
    hyper: SGDHyper
    iters_per_epoch: int | None  # None: unknown (a per-iteration schedule needs none; epoch figures are None)
    assumptions: Assumptions
    run: Trace
    alpha: float  # at the base LR
    growth_per_step: float
    growth_per_epoch: float | None
    phases: list[Phase]
    horizons: dict[str, Horizon]

    @property
    def s_final(self) -> float:
        return self.run.s_final

    @property
    def log_inv_s_final(self) -> float:
        return -math.log(self.run.s_final)

    def epoch_of(self, step: int | None) -> float | None:
        return None if step is None or not self.iters_per_epoch else step / self.iters_per_epoch

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "inputs": {"lr": self.schedule.base_lr, "momentum": self.hyper.momentum,
                       "dampening": self.hyper.dampening, "weight_decay": self.hyper.weight_decay,
                       "iters_per_epoch": self.iters_per_epoch, "total_iters": self.schedule.total_iters,
                       "decay": self.schedule.decay, "milestones_iters": list(self.schedule.milestones),
                       "gamma": self.schedule.gamma, "warmup_iters": self.schedule.warmup_iters},
            "alpha": self.alpha,
            "growth_per_step": self.growth_per_step,
            "growth_per_epoch": self.growth_per_epoch,
            "phases": [p.to_json() for p in self.phases],
            "s_T": self.s_final,
            "ln_inv_s_T": self.log_inv_s_final,
            "ln_inv_s_T_estimate": log_inverse_scale_estimate(self.run.lrs, self.hyper),
            "horizons": {k: {**h.to_json(), "epoch": self.epoch_of(h.step)} for k, h in self.horizons.items()},
            "assumptions": {"weight_magnitude": self.assumptions.weight_magnitude,
                            "grad_magnitude": self.assumptions.grad_magnitude,
                            "loss_scale": self.assumptions.loss_scale,
                            "after_end": "last LR held constant"},
        }


def analyze(schedule: LRSchedule, hyper: SGDHyper, iters_per_epoch: int | None,
            assumptions: Assumptions = Assumptions()) -> ScheduleAnalysis:
    """Validate the inputs (ValueError naming value and allowed range) and compute the full analysis.

    `iters_per_epoch` None (unknown) leaves every per-epoch figure None; the schedule itself is per iteration.
    """
    schedule.validate()
    hyper.validate()
    if iters_per_epoch is not None and (not isinstance(iters_per_epoch, int) or iters_per_epoch <= 0):
        raise ValueError(f"iters_per_epoch={iters_per_epoch!r} must be an integer > 0")
    run = trace(schedule.lr_at, hyper, schedule.total_iters)
    lr = schedule.base_lr
    return ScheduleAnalysis(
        schedule, hyper, iters_per_epoch, assumptions, run,
        alpha(lr, hyper), growth_per_step(lr, hyper),
        growth_per_epoch(lr, hyper, iters_per_epoch) if iters_per_epoch else None,
        phase_table(schedule, hyper, iters_per_epoch, run), horizons(run, hyper, assumptions))
