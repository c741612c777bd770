"""How close is close enough: a justified tolerance, never a guess.

float64 on CPU -> FLOAT64_TOLERANCE = 1e-6. Why: the conversion is an identity (θ~_t = θ_t/s_t), so
the only differences are (a) round-off, ~1e-16 per operation and ~1e-13 after hundreds of steps, and
(b) the normalization eps: x/sqrt(σ² + eps) is scale-invariant only up to O(eps/σ²), which with the
default eps 1e-5 gives about 1e-8 over a short run (THEORY.md reference experiment: 2.5e-8 over 120
steps). 1e-6 sits well above both, and four or more orders of magnitude below every real
non-equivalence (Nesterov ~1e-2, a parameter wrongly trained as SI ~1e-1): a pass means the same
function, a failure is never round-off. (CPU float64 kernels are deterministic, so no noise floor is
measured there.)

float32, bfloat16, or any GPU run -> NOISE_MULTIPLIER × a measured noise floor: the largest output
deviation between the original run and the original run started from initial weights moved by one
ulp. That is what the hardware's rounding (and non-deterministic GPU kernels) alone does to this
model on this schedule; an exact conversion only perturbs the trajectory by round-off of the same
kind, so it stays within a small multiple of it. The float64 tolerance is kept as a lower bound
(the eps effect does not shrink with precision).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

FLOAT64_TOLERANCE = 1e-6
NOISE_MULTIPLIER = 10.0


@dataclass(frozen=True, slots=True)
class Tolerance:
    value: float
    reason: str


def needs_noise_floor(device: torch.device, dtype: torch.dtype) -> bool:
    return dtype != torch.float64 or device.type != "cpu"


def tolerance_for(device: torch.device, dtype: torch.dtype, noise_floor: float | None,
                  multiplier: float = NOISE_MULTIPLIER, override: float | None = None) -> Tolerance:
    if override is not None:
        return Tolerance(override, f"--tolerance {override:g} given")
    if noise_floor is None:
        return Tolerance(FLOAT64_TOLERANCE, "float64 on CPU: round-off ~1e-13 and normalization eps ~1e-8 lie far "
                                            "below 1e-6; real non-equivalence is >= 1e-3")
    value = max(multiplier * noise_floor, FLOAT64_TOLERANCE)
    name = str(dtype).removeprefix("torch.")
    return Tolerance(value, f"{name} on {device.type}: {multiplier:g} x measured noise floor {noise_floor:.2e} "
                            "(original vs original with initial weights moved by one ulp), at least 1e-6")
