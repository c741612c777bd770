"""A failing check explains itself: where the deviation took off, and which known cause fits.

Causes form one table (CAUSES); each row looks at the evidence and returns a one-line explanation
or None. Evidence is what the check measured (per-step records, the plan) plus a numeric
scale-invariance test of the set that was trained as SI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from explr.check.data import Batch
from explr.check.report import Diagnosis, StepRecord
from explr.check.runner import probe_output, rel_deviation
from explr.check.setups import EXACT_EPS, has_float_eps
from explr.check.tolerance import MAX_CONCLUSIVE
from explr.model_copy import private_copy
from explr.plan import TrainingPlan

JUMP_FACTOR = 100.0  # a deviation this many times its running maximum counts as a jump
SCALE = 2.9  # the factor of the numeric scale-invariance test (docs/theory.md §2)
INVARIANCE_TOLERANCE = 1e-6  # float64 with eps 1e-30: an invariant set changes outputs by ~1e-15
UNDERFLOW_MARGIN = 0.01  # zero SI gradients beyond 2x the original's + 1 point: rounding alone does not do that


@dataclass
class Evidence:
    plan: TrainingPlan
    records: list[StepRecord]
    tolerance: float
    si_names: list[str]  # what the converted run treated as SI
    audit_si: set[str] | None  # what the audit proved SI, when the set was given explicitly
    model: nn.Module  # the original run's trained model (for the numeric test)
    probe: Batch
    noise_jump: tuple[int, float] | None = None  # (step, the twin's largest deviation after it) when the twin jumped
    verdict: str = "fail"
    dtype: torch.dtype = torch.float64  # the runs' weights (--dtype)
    autocast: torch.dtype | None = None  # the forward's autocast dtype (--amp), if any

    @property
    def until(self) -> int:
        """Evidence after the deviation exceeded the tolerance is not needed to explain it."""
        bad = next((r.step for r in self.records if r.rel_deviation > self.tolerance), None)
        return bad if bad is not None else len(self.records)


def _nesterov(ev: Evidence) -> str | None:
    if not ev.plan.nesterov:
        return None
    return ("the config uses Nesterov momentum: its look-ahead term g + γ·v mixes the current gradient and the "
            "momentum buffer, which the converted run would need two different LRs to rescale; no exact "
            "conversion exists (drop nesterov, or accept this deviation)")


def _non_sgd(ev: Evidence) -> str | None:
    if ev.plan.optimizer == "sgd":
        return None
    return (f"the optimizer is {ev.plan.optimizer}, not SGD: its moment estimates mix gradients of different "
            "scales, so weight decay has no exact exponential-LR equivalent (TEXP only approximates it)")


def _clipping(ev: Evidence) -> str | None:
    if ev.plan.grad_clip_norm is None:
        return None
    active = [r.step for r in ev.records[:ev.until] if any(r.clipped)]
    if not active:
        return None
    return (f"gradient-norm clipping (max_norm={ev.plan.grad_clip_norm:g}) was active from step {active[0]} "
            "on: it rescales all gradients by one factor computed over parameters whose "
            "scales differ between the runs (SI gradients shrink like s_t), so the runs clip differently")


def _underflow(ev: Evidence) -> str | None:
    rows = [(r.step, r.zero_grad_fraction) for r in ev.records[:ev.until] if r.zero_grad_fraction is not None]
    worse = [(step, original, converted) for step, (original, converted) in rows
             if converted > 2 * original + UNDERFLOW_MARGIN]
    if not worse:
        return None
    step, original, converted = worse[0]
    return (f"low-precision underflow: from step {step} {100 * converted:.1f}% of the converted "
            f"run's SI gradient elements are exactly 0 (original {100 * original:.1f}%): SI gradients "
            "shrink like s_t and fall below the format's range (use float32/bfloat16 weights or a loss scale)")


def scale_change(model: nn.Module, probe: Batch, names: list[str], c: float = SCALE) -> float:
    """Relative change of the train-mode outputs when `names` are multiplied by c (float64, eps tiny)."""
    twin = private_copy(model).double()
    for m in twin.modules():
        if has_float_eps(m):
            m.eps = EXACT_EPS  # remove the eps blur so only real non-invariance shows
    probe64 = Batch(tuple(x.double() if x.is_floating_point() else x for x in probe.inputs), probe.target)
    before = probe_output(twin, probe64, seed=0)
    params = dict(twin.named_parameters())
    with torch.no_grad():
        for n in names:
            params[n].mul_(c)
    return rel_deviation(probe_output(twin, probe64, seed=0), before)


def _suspects(ev: Evidence) -> list[str]:
    if ev.audit_si is not None:
        return [n for n in ev.si_names if n not in ev.audit_si]
    # leave-one-out: the culprit is the parameter without which the rest of the set is invariant
    return [n for n in ev.si_names
            if scale_change(ev.model, ev.probe, [m for m in ev.si_names if m != n]) <= INVARIANCE_TOLERANCE]


def _wrong_si(ev: Evidence) -> str | None:
    if not ev.si_names:
        return None
    change = scale_change(ev.model, ev.probe, ev.si_names)
    if change <= INVARIANCE_TOLERANCE:
        return None
    suspects = _suspects(ev)
    named = f" ({', '.join(suspects[:5])}{' ...' if len(suspects) > 5 else ''})" if suspects else ""
    return (f"a parameter wrongly treated as SI{named}: scaling the set trained as SI by {SCALE} changes the "
            f"train-mode outputs by {change:.1e}, so the loss is not scale-invariant in it and dropping its weight "
            "decay changes training (keep only what `explr audit` proves SI)")


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _more_precision(ev: Evidence) -> str:
    """What takes the check out of this precision's noise: the flags to change."""
    if ev.autocast is not None:
        return f"drop --amp {_name(ev.autocast)} and check in float32 (--dtype float32) or float64 (the default --dtype)"
    if ev.dtype == torch.float64:
        return "use --device cpu (float64 CPU kernels are deterministic: no noise floor is needed there)"
    return "use --dtype float64" + (" or --dtype float32" if ev.dtype != torch.float32 else "")


def _rounding(ev: Evidence) -> str:
    """Why this precision's noise floor is so high: the significant bits it rounds to."""
    lowest = ev.autocast or ev.dtype
    eps = torch.finfo(lowest).eps
    where = "autocast runs matmuls and convolutions in" if ev.autocast is not None else "the runs compute in"
    return (f"{where} {_name(lowest)} ({round(1 - math.log2(eps))} significant bits: a relative rounding step of "
            f"{eps:.0e}), and training amplifies that rounding into the noise floor")


def _too_noisy(ev: Evidence) -> str | None:
    if ev.tolerance <= MAX_CONCLUSIVE:
        return _twin_jumped(ev)
    floor = max((r.noise for r in ev.records if r.noise is not None), default=float("nan"))
    return (f"inconclusive: at this precision moving the initial weights by one ulp already changes the outputs by "
            f"{floor:.1e}, so no deviation can be told from noise: {_rounding(ev)}. To verify the conversion, "
            f"{_more_precision(ev)}: the conversion is the same in every precision, and "
            f"{_name(ev.autocast or ev.dtype)} training adds rounding noise of the same size to both setups")


def _twin_jumped(ev: Evidence) -> str | None:
    if ev.verdict != "inconclusive" or ev.noise_jump is None:
        return None
    step, twin = ev.noise_jump
    worst = max(r.rel_deviation for r in ev.records)
    return (f"inconclusive: the 1-ulp twin jumped at step {step} to {twin:.1e} (a discrete event such as a ReLU input "
            f"changing sign in one run only, not round-off), and the converted run exceeded the tolerance only after "
            f"that step, by no more ({worst:.1e}): it may have drawn such an event too; rerun with another --seed, "
            f"or {_more_precision(ev)}")


# "inconclusive" first: when it applies, the other rows would only read noise.
CAUSES: tuple[tuple[str, Callable[[Evidence], str | None]], ...] = (
    ("inconclusive", _too_noisy),
    ("nesterov", _nesterov),
    ("non_sgd", _non_sgd),
    ("clipping", _clipping),
    ("wrong_si", _wrong_si),
    ("underflow", _underflow),
)


def find_jump(records: list[StepRecord], floor: float) -> tuple[int, float, float] | None:
    """First step whose deviation exceeds JUMP_FACTOR × the running maximum (floored at `floor`)."""
    running = 0.0
    for r in records:
        if r.rel_deviation > JUMP_FACTOR * max(running, floor):
            return r.step, running, r.rel_deviation
        running = max(running, r.rel_deviation)
    return None


def diagnose(ev: Evidence) -> Diagnosis:
    first = next((r.step for r in ev.records if r.rel_deviation > ev.tolerance), None)
    jump = find_jump(ev.records, floor=ev.tolerance / 1e4)
    causes = []
    for code, rule in CAUSES:
        why = rule(ev)
        if why is not None:
            causes.append((code, why))
            if code == "inconclusive":
                break
    jump_step, jump_from, jump_to = jump if jump is not None else (None, None, None)
    return Diagnosis(first, jump_step, jump_from, jump_to, tuple(causes))
