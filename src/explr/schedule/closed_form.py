"""Closed forms of the phantom scale (docs/theory.md §3) and the TEXP phase table.

With a constant LR η, the phantom obeys s_t = (1+γ-(1-δ)λη)·s_{t-1} - γ·s_{t-2} (momentum γ,
dampening δ, weight decay λ), so s_t -> A·α^t with α the larger root of
x² - (1+γ-(1-δ)λη)·x + γ = 0, and the converted LR η/(s_{t-1}s_t) grows by α^-2 per step.
With γ = 0 torch ignores dampening and s_t = (1-λη)^t exactly.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from explr.lr_chain import chain_events
from explr.lr_schedule import LRSchedule
from explr.schedule.phantom import SGDHyper, Trace


def _effective_decay(lr: float, hyper: SGDHyper) -> float:
    """λη as it enters the recursion: dampening scales it, but only when momentum is on (torch SGD)."""
    damp = hyper.dampening if hyper.momentum != 0.0 else 0.0
    return (1.0 - damp) * hyper.weight_decay * lr


def alpha(lr: float, hyper: SGDHyper) -> float:
    """Per-step factor of s_t at constant LR: the larger root of x² - (1+γ-λη)x + γ = 0."""
    hyper.validate()
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} must be a finite number > 0")
    b = 1.0 + hyper.momentum - _effective_decay(lr, hyper)
    disc = b * b - 4.0 * hyper.momentum
    if b <= 0 or disc < 0:
        raise ValueError(
            f"lr*weight_decay={lr * hyper.weight_decay:.3g} is too large for momentum={hyper.momentum}: the "
            f"original SGD run makes weights oscillate through zero (needs (1+γ-λη)² >= 4γ and 1+γ-λη > 0)")
    return 0.5 * (b + math.sqrt(disc))


def growth_per_step(lr: float, hyper: SGDHyper) -> float:
    """Asymptotic factor by which the converted LR grows each iteration: α^-2."""
    return alpha(lr, hyper) ** -2


def growth_per_epoch(lr: float, hyper: SGDHyper, iters_per_epoch: int) -> float:
    """α^(-2·iters_per_epoch): 1.4812 for η=0.1, γ=0.9, λ=5e-4, 391 iterations (the blog's 1.481)."""
    if iters_per_epoch <= 0:
        raise ValueError(f"iters_per_epoch={iters_per_epoch!r} must be an integer > 0")
    return alpha(lr, hyper) ** (-2 * iters_per_epoch)


def momentum_free_scale(lr: float, weight_decay: float, t: int) -> float:
    """s_t = (1-λη)^t for momentum 0 and constant LR."""
    return (1.0 - lr * weight_decay) ** t


def momentum_free_converted_lr(lr: float, weight_decay: float, t: int) -> float:
    """η̃_t = η(1-λη)^(-2t+1) for t >= 1 (the paper's (1-λη)^(-2t-1)η with t counted from 0)."""
    return lr * (1.0 - lr * weight_decay) ** (-2 * t + 1)


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of the schedule: iterations [start_iter, end_iter) (0-based)."""

    kind: str  # "constant" (closed form applies) | "warmup" | "decay" (LR varies inside)
    start_iter: int
    end_iter: int
    base_lr: float  # original LR at the phase start
    converted_lr_start: float  # η̃ of the first step of the phase
    converted_lr_end: float  # η̃ of the last step of the phase
    growth_per_epoch: float | None  # closed form α^(-2·ipe); None where the LR varies inside or ipe is unknown

    def to_json(self) -> dict:
        return asdict(self)


def _boundaries(schedule: LRSchedule) -> list[int]:
    cuts = {0, schedule.total_iters, schedule.warmup_iters}
    if schedule.decay == "chain":
        cuts.update(at for _, at in chain_events(schedule.chain, schedule.total_iters))
    elif schedule.decay == "step":
        cuts.update(schedule.milestones)
    elif schedule.decay == "wsd":
        cuts.update((schedule.decay_start, *schedule.anneal_span))
    else:
        cuts.add(schedule.decay_start)
    return sorted(c for c in cuts if 0 <= c <= schedule.total_iters)


def _phase_kind(schedule: LRSchedule, start: int) -> str:
    if start < schedule.warmup_iters:
        return "warmup"
    if schedule.decay == "chain":  # the replayed schedulers may move the LR anywhere inside a phase
        return "decay"
    if schedule.decay in ("step", "constant") or start < schedule.decay_start:
        return "constant"
    if schedule.decay == "wsd":  # constant stable phase (rsqrt's decays) and eta_min after the anneal
        anneal_start, anneal_end = schedule.anneal_span
        stable = schedule.stable_timescale is None and start < anneal_start
        return "constant" if stable or start >= anneal_end else "decay"
    return "decay"


def phase_table(schedule: LRSchedule, hyper: SGDHyper, iters_per_epoch: int | None, run: Trace) -> list[Phase]:
    """TEXP phases (the paper's Theorem 2): at each boundary the LR drops and the growth switches to α_I^-2.

    `run` is the engine's trace of the same schedule: the converted LRs are exact, including the
    transient right after a boundary; the growth per epoch is the closed form of the phase's LR.
    """
    cuts = _boundaries(schedule)
    phases = []
    for start, end in zip(cuts, cuts[1:]):
        kind = _phase_kind(schedule, start)
        base = run.lrs[start]
        growth = None
        if kind == "constant" and iters_per_epoch and base > 0:  # an LR of 0 (wsd cooldown at min_lr 0) stays 0
            growth = growth_per_epoch(base, hyper, iters_per_epoch)
        phases.append(Phase(kind, start, end, base, run.converted[start], run.converted[end - 1], growth))
    return phases


def log_inverse_scale_estimate(lrs: list[float], hyper: SGDHyper) -> float:
    """ln(1/s_T) ≈ λ/(1-γ)·Σ η_t (docs/theory.md §4), valid while λη is small; the engine gives the exact value."""
    damp = hyper.dampening if hyper.momentum != 0.0 else 0.0
    return (1.0 - damp) * hyper.weight_decay / (1.0 - hyper.momentum) * math.fsum(lrs)
