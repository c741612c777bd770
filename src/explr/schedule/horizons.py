"""Numeric horizons of a converted run (docs/theory.md §4), from the schedule alone.

Model assumptions (stated in every result):
- the original run's weights keep their scale: its largest SI weight element is about
  `weight_magnitude`, so the converted weights are θ̃_t = θ_t/s_t ≈ weight_magnitude/s_t;
- the original run's gradients keep their scale: a small-but-relevant gradient element is about
  `grad_magnitude`, so the converted gradients are ∇θ̃_t = s_t·∇θ_t ≈ s_t·grad_magnitude;
- a value overflows above the dtype's largest finite number and a gradient underflows below the
  dtype's smallest subnormal (it becomes exactly zero); a loss scale L multiplies the gradients
  before the cast, so it delays the underflow by ln L in ln(1/s);
- after the end of the run the last LR is held constant (used to extrapolate horizons not reached).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass

import torch

from explr.schedule.closed_form import alpha
from explr.schedule.phantom import SGDHyper, Trace


@dataclass(frozen=True, slots=True)
class Assumptions:
    weight_magnitude: float = 1.0
    grad_magnitude: float = 1e-4
    loss_scale: float = 2.0 ** 16  # torch.amp.GradScaler's initial scale

    def validate(self) -> None:
        for name in ("weight_magnitude", "grad_magnitude", "loss_scale"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value!r} must be a finite number > 0")


@dataclass(frozen=True, slots=True)
class Horizon:
    what: str
    threshold_log_inv_scale: float  # the event happens once ln(1/s_t) reaches this
    step: int | None  # first step t (1-based) where it happens; None: never (the LR ends at 0)
    within_run: bool  # False: extrapolated past the end with the last LR held

    def to_json(self) -> dict:
        return asdict(self)


def _thresholds(a: Assumptions) -> dict[str, float]:
    """ln(1/s) at which each event happens, from the dtype limits and the assumptions."""
    f32_max, bf16_max = torch.finfo(torch.float32).max, torch.finfo(torch.bfloat16).max
    f16_tiny = torch.finfo(torch.float16).smallest_normal * 2.0 ** -10  # smallest subnormal, 2^-24
    return {
        "weights_overflow_float32": math.log(f32_max / a.weight_magnitude),
        "weights_overflow_bfloat16": math.log(bf16_max / a.weight_magnitude),
        "grads_underflow_float16": math.log(a.grad_magnitude / f16_tiny),
        "grads_underflow_float16_loss_scaled": math.log(a.grad_magnitude * a.loss_scale / f16_tiny),
    }


def _first_crossing(log_inv: list[float], threshold: float, run: Trace, hyper: SGDHyper) -> tuple[int | None, bool]:
    # ln(1/s_t) is non-decreasing (weight decay only shrinks the phantom), so bisect finds the first step
    k = bisect.bisect_left(log_inv, threshold)
    if k < len(log_inv):
        return k + 1, True
    last_lr = run.lrs[-1]
    if last_lr <= 0 or hyper.weight_decay == 0:
        return None, False
    per_step = -math.log(alpha(last_lr, hyper))
    return len(log_inv) + max(1, math.ceil((threshold - log_inv[-1]) / per_step)), False


def horizons(run: Trace, hyper: SGDHyper, assumptions: Assumptions = Assumptions()) -> dict[str, Horizon]:
    """Steps where converted SI weights overflow float32/bfloat16 and their gradients underflow float16."""
    assumptions.validate()
    log_inv = [-math.log(s) for s in run.scales]
    found = {}
    for what, threshold in _thresholds(assumptions).items():
        step, within = _first_crossing(log_inv, threshold, run, hyper)
        found[what] = Horizon(what, threshold, step, within)
    return found


# Above this the squared norm of the SI weights (weight norms, renormalization checks) overflows float32.
GROWTH_LIMIT = math.sqrt(torch.finfo(torch.float32).max)


def growth_warning(run: Trace) -> str | None:
    """A warning with the fix when the converted run's numbers leave float32's range (docs/theory.md §4):
    the SI weight norms grow past sqrt(float32 max), or the converted LR itself exceeds float32 max."""
    growth, top_lr = 1.0 / run.s_final, max(run.converted, default=0.0)
    f32_max = torch.finfo(torch.float32).max
    if growth <= GROWTH_LIMIT and top_lr <= f32_max:
        return None
    return (f"SI weight norms grow by {growth:.2g} and the converted LR reaches {top_lr:.2g}: beyond float32's "
            f"range (squared norms overflow above {GROWTH_LIMIT:.2g}, an LR above {f32_max:.2g} is inf); enable "
            "renormalization, explr.TEXP(..., renormalize=(low, high)), which rescales the SI weights, their "
            "momentum buffers and later LRs exactly (docs/theory.md §4)")
