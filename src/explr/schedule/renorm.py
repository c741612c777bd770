"""Renormalization (docs/theory.md §4): keep the converted SI weights in a safe range, exactly.

At any step, multiplying the SI parameters by c, their momentum buffers by 1/c and all later SI
LRs by c² leaves the network function of every later step unchanged (train-mode SI). c is a power
of two, so the multiplications themselves are exact in floating point.

The decision uses the global norm of the SI parameters as this process sees them: replicated
parameters (single process, DDP) agree on every rank; sharded ones (FSDP) do not — see docs/api.md.
"""
from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from explr.errors import ConfigError


class Renormalizer:
    def __init__(self, bounds: tuple[float, float], params: list[torch.Tensor]):
        low, high = (float(b) for b in bounds)
        if not (0 < low and math.isfinite(high) and high >= 4 * low):
            raise ConfigError(f"TEXP: renormalize=({low}, {high}) must satisfy 0 < low and 4*low <= high < inf "
                             "(room for a power-of-two rescale)")
        self.low, self.high, self.params, self.count = low, high, params, 0
        self._by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in params:
            self._by_dtype.setdefault(p.dtype, []).append(p)

    def _norm(self) -> float:
        """Global L2 norm; one fused reduction per dtype, one host sync."""
        if not self.params:
            return 0.0
        per_dtype = [torch.linalg.vector_norm(torch.stack(torch._foreach_norm(ps))).double()
                     for ps in self._by_dtype.values()]
        return torch.linalg.vector_norm(torch.stack(per_dtype)).item()

    def apply_if_needed(self, optimizer: Optimizer) -> float:
        """Rescale when the SI norm left [low, high]; return c (1.0 when nothing was done)."""
        norm = self._norm()
        if self.low <= norm <= self.high or norm == 0.0 or not math.isfinite(norm):
            return 1.0
        c = 2.0 ** round(math.log2(math.sqrt(self.low * self.high) / norm))
        with torch.no_grad():
            torch._foreach_mul_(self.params, c)
            for p in self.params:
                buf = optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    buf.mul_(1.0 / c)
        self.count += 1
        return c
