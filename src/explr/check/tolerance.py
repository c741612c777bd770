"""How close is close enough: a justified tolerance, never a guess.

float64 on CPU -> FLOAT64_TOLERANCE = 1e-6. Why: the conversion is an identity (θ~_t = θ_t/s_t), so
the two runs differ only by round-off: ~1e-16 per operation, ~1e-14..1e-12 after hundreds of steps
(measured: ResNet 1.4e-14, PreResNet-32 1.7e-12). The normalization eps would add its O(eps/σ²) blur
of scale invariance (docs/theory.md §1; ~1e-8..1e-5 depending on the activations' variance), which the
theory accepts but which is not a property of the conversion: the check therefore sets eps to 1e-30
in both runs (--keep-eps keeps it; then pass a --tolerance that allows for it). Every real
non-equivalence measured on the fixtures grows well past 1e-6 within a few dozen steps (Nesterov
2e-5..5e-2, gradient clipping 6e-6..4e-3, a parameter wrongly trained as SI ~1e-2), and keeps growing
with more steps: a pass means the same function, and a failure is never round-off. CPU float64
kernels are deterministic, so no noise floor is measured.

float32, bfloat16, or any GPU run -> NOISE_MULTIPLIER × a measured noise floor: the largest output
deviation between the original run and the original run started from initial weights moved by one
ulp. That is what the hardware's rounding (and non-deterministic GPU kernels) alone does to this
model on this schedule; an exact conversion only perturbs the trajectory by round-off of the same
kind, so it stays within a small multiple of it. The float64 tolerance is kept as a lower bound.

A tolerance above MAX_CONCLUSIVE proves nothing (bfloat16 training is chaotic enough that one ulp
moves the outputs by tens of percent): such a check does not pass; it says to use more precision.

The twin's deviation has two parts. Round-off carried through the smooth dynamics grows slowly (at most
~2x a step on the fixtures). A discrete event does not: a ReLU input near 0 that changes sign in the twin
alone flips its gradient mask, and one step later the twin is off by the LR times that gradient (resnet_cifar,
float32, batch 4: 4.4e-6 -> 2.9e-4 in one step, then ~1e-1). The converted run is exposed to such
flips just as the twin is, but a flip is a lottery, not a property of the precision; one twin drawing one says
nothing about what round-off does. So the noise floor is the twin's largest deviation BEFORE its first
jump (JUMP_FACTOR over its running maximum in one step); the jump is reported. A converted run that
exceeds the tolerance before that step fails; one that exceeds it only after the twin jumped, and stays
below the twin's own deviation, cannot be told from such an event: inconclusive, never a pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

FLOAT64_TOLERANCE = 1e-6
NOISE_MULTIPLIER = 10.0
MAX_CONCLUSIVE = 1e-2  # beyond this the check could not tell a real deviation (>= 1e-4) from noise
JUMP_FACTOR = 10.0  # the twin's deviation growing this much in one step is a discrete event, not round-off
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True, slots=True)
class NoiseFloor:
    """The twin's deviation: `value`, its maximum before the first jump; the jump, if one happened."""

    value: float
    jump_step: int | None = None  # first step whose deviation was JUMP_FACTOR x the running maximum
    jump_max: float | None = None  # the twin's largest deviation from that step on


def noise_floor_of(noise: list[tuple[int, float]]) -> NoiseFloor:
    """(step, twin deviation) per step -> the round-off floor, split at the twin's first discrete jump."""
    running = 0.0
    for i, (step, dev) in enumerate(noise):
        if running > 0 and dev > JUMP_FACTOR * running:
            return NoiseFloor(running, step, max(d for _, d in noise[i:]))
        running = max(running, dev)
    return NoiseFloor(running)


@dataclass(frozen=True, slots=True)
class Tolerance:
    value: float
    reason: str

    @property
    def conclusive(self) -> bool:
        return self.value <= MAX_CONCLUSIVE


def needs_noise_floor(device: torch.device, dtype: torch.dtype) -> bool:
    return dtype != torch.float64 or device.type != "cpu"


def tolerance_for(device: torch.device, precision: str, noise_floor: float | None,
                  multiplier: float = NOISE_MULTIPLIER, override: float | None = None) -> Tolerance:
    """`precision`: what the runs compute in, for the reason ("float32", "float32 + autocast bfloat16")."""
    if override is not None:
        return Tolerance(override, f"--tolerance {override:g} given")
    if noise_floor is None:
        return Tolerance(FLOAT64_TOLERANCE, "float64 on CPU: round-off stays below ~1e-12; real non-equivalences "
                                            "grow past 1e-5 within dozens of steps")
    value = max(multiplier * noise_floor, FLOAT64_TOLERANCE)
    useless = f"; above {MAX_CONCLUSIVE:g} it proves nothing: inconclusive" if value > MAX_CONCLUSIVE else ""
    return Tolerance(value, f"{precision} on {device.type}: {multiplier:g} x measured noise floor {noise_floor:.2e} "
                            "(original vs original with initial weights moved by one ulp, before any discrete jump), "
                            f"at least 1e-6{useless}")


def verdict(deviations: list[tuple[int, float]], tol: Tolerance, floor: NoiseFloor | None) -> str:
    """PASS within a conclusive tolerance; FAIL beyond it, unless it was exceeded only after the twin
    jumped and stays within the twin's own deviation: then INCONCLUSIVE (module docstring)."""
    if not tol.conclusive:
        return INCONCLUSIVE
    first = next((step for step, dev in deviations if dev > tol.value), None)
    if first is None:
        return PASS
    if floor is None or floor.jump_step is None or floor.jump_max is None:
        return FAIL
    if first >= floor.jump_step and max(dev for _, dev in deviations) <= floor.jump_max:
        return INCONCLUSIVE
    return FAIL
