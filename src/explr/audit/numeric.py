"""Numeric scaling probe: the ground truth every static verdict is checked against.

A `ScalingProbe` holds a float64 deep copy of the model in train mode with perturbed parameter
values, runs it with a fixed seed, and measures how much the output moves when chosen
parameters are multiplied by positive factors. Three things keep the test sharp:

- **Perturbation first.** A freshly initialised bias (0) or BatchNorm (gamma=1, beta=0) makes
  scaling tests pass trivially (0·c = 0); random noise on every parameter removes that.
- **Tiny normalization eps.** eps blurs invariance by about eps/sigma² (docs/theory.md §1). Every
  batch/layer/group/instance/RMS normalization call in the copy runs with eps=1e-30: a
  `TorchFunctionMode` rewrites the eps argument of those functions, so it covers the nn
  modules *and* functional calls inside custom code (e.g. weight standardization via
  F.batch_norm) without touching unrelated `eps` attributes (which could hide a real
  "+ constant"). A hand-written `x / sqrt(var + eps)` keeps its eps: the static analysis
  treats that `+ eps` as a non-homogeneous constant anyway, so it never claims SI through it.
- **Identical randomness and state.** Every forward is re-seeded the same way (dropout
  masks match) inside `fork_rng` (the caller's RNG is untouched), and buffers (BatchNorm
  running statistics, counters) are restored after each forward.
"""
from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves, tree_map

from explr.errors import ExplrError
from explr.model_copy import private_copy

TINY_EPS = 1e-30
# float64 carries ~1e-16 relative precision; with eps ~ 0 an invariant set reproduces the output
# up to rounding accumulated over the network depth (measured <= 1e-14 on every fixture), while a
# non-invariant parameter scaled by c in [0.3, 3.5] moves the output by >= 4e-3 there (usually
# 1e-2..1). 1e-9 sits five orders of magnitude from both.
TOLERANCE = 1e-9
FACTOR_RANGE = (0.3, 3.5)
_FACTOR_GAP = (0.77, 1.3)  # factors this close to 1 would weaken the test
DEFAULT_FACTORS = (0.37, 2.9)

# Normalization functions (torch.nn.functional and torch namespaces) -> positional index of eps.
_EPS_POSITION = {"batch_norm": 7, "instance_norm": 7, "layer_norm": 4, "group_norm": 4, "rms_norm": 3}
_NORM_FUNCS = {getattr(ns, name): pos for name, pos in _EPS_POSITION.items()
               for ns in (torch.nn.functional, torch) if hasattr(ns, name)}


class UnverifiableError(ExplrError):
    """The model cannot be run for a numeric check (meta tensors, float64 failure, non-determinism)."""


class _TinyNormEps(TorchFunctionMode):
    """Run every normalization with eps=TINY_EPS (see module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        position = _NORM_FUNCS.get(func)
        if position is not None:
            if len(args) > position:
                args = (*args[:position], TINY_EPS, *args[position + 1:])
            else:
                kwargs["eps"] = TINY_EPS
        return func(*args, **kwargs)


def is_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def draw_factor(rng: random.Random) -> float:
    """A log-uniform factor in FACTOR_RANGE, kept away from 1 (either side with equal odds)."""
    low, high = ((FACTOR_RANGE[0], _FACTOR_GAP[0]) if rng.random() < 0.5 else (_FACTOR_GAP[1], FACTOR_RANGE[1]))
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def max_rel_error(reference: Any, other: Any) -> float:
    """Max over output tensors of max|a-b| / max|a| (handles tuple/list/dict outputs)."""
    ref_leaves = [t for t in tree_leaves(reference) if isinstance(t, torch.Tensor)]
    other_leaves = [t for t in tree_leaves(other) if isinstance(t, torch.Tensor)]
    if len(ref_leaves) != len(other_leaves):
        return math.inf
    return max((_tensor_rel_error(a, b) for a, b in zip(ref_leaves, other_leaves)), default=0.0)


def _tensor_rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    if not (a.is_floating_point() or a.is_complex()):
        return 0.0 if torch.equal(a, b) else math.inf
    if a.numel() == 0:
        return 0.0
    diff = (a - b).abs().max().item()
    if not math.isfinite(diff):
        return math.inf
    scale = a.abs().max().item()
    return diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)


def _all_finite(output: Any) -> bool:
    return all(torch.isfinite(t).all() for t in tree_leaves(output)
               if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()))


def perturb_(model: nn.Module, seed: int) -> None:
    """Add noise to every parameter: 0.5·rms(p) + 0.1 per element, so zeros and ones move too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point() or p.numel() == 0:
                continue
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
            rms = p.pow(2).mean().sqrt()
            p.add_(noise * (0.5 * rms + 0.1))


def _to_float64(value: Any) -> Any:
    return tree_map(lambda t: t.to(torch.float64) if isinstance(t, torch.Tensor) and t.is_floating_point() else t,
                    value)


@contextlib.contextmanager
def _float64_default() -> Iterator[None]:
    """Tensors created inside forward (torch.zeros(...)) then match the float64 copy."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class ScalingProbe:
    """A prepared float64 train-mode copy of a model that answers "does scaling these change f?"."""

    def __init__(self, model: nn.Module, example_inputs: tuple[Any, ...], seed: int = 0, *,
                 perturb: bool = True, tiny_eps: bool = True):
        """`perturb`/`tiny_eps` exist to show (in tests) why both are on: never turn them off to verify."""
        if is_meta(model):
            raise UnverifiableError("meta device: the weights are not allocated, so nothing can be run")
        self.seed = seed
        self._eps_mode = _TinyNormEps if tiny_eps else contextlib.nullcontext
        self.model = private_copy(model).to(torch.float64).train()
        if perturb:
            perturb_(self.model, seed)
        self.inputs = _to_float64(tuple(example_inputs))
        self.params = dict(self.model.named_parameters())
        # fork_rng must also save/restore the RNG of every CUDA device the model runs on
        self._cuda = sorted({p.device.index or 0 for p in self.params.values() if p.device.type == "cuda"})
        self._buffers = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        self.forwards = 0
        self.baseline = self._forward()
        if not _all_finite(self.baseline):
            raise UnverifiableError("the float64 output contains NaN or inf after perturbing the parameters")

    def _forward(self) -> Any:
        try:
            with torch.random.fork_rng(devices=self._cuda), torch.no_grad(), _float64_default(), self._eps_mode():
                torch.manual_seed(self.seed)
                return self.model(*self.inputs)
        except Exception as exc:  # the model's own failure: numeric confirmation is impossible
            raise UnverifiableError(f"the float64 copy failed to run: {type(exc).__name__}: {exc}") from exc
        finally:
            self.forwards += 1
            with torch.no_grad():
                for name, b in self.model.named_buffers():
                    b.copy_(self._buffers[name])

    def check_names(self, names: Iterable[str]) -> None:
        missing = sorted(set(names) - set(self.params))
        if missing:
            raise KeyError(f"not parameters of the model: {', '.join(missing)}")

    def error(self, factors: Mapping[str, float]) -> float:
        """Relative output change when each named parameter is multiplied by its factor."""
        with self._restoring(factors):
            for name, c in factors.items():
                self.params[name].mul_(c)
            return max_rel_error(self.baseline, self._forward())

    @contextlib.contextmanager
    def _restoring(self, names: Iterable[str]) -> Iterator[None]:
        """Modify the named parameters in place (no grad) inside; their values come back after."""
        self.check_names(names)
        saved = {name: self.params[name].detach().clone() for name in names}
        try:
            with torch.no_grad():
                yield
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    self.params[name].copy_(value)

    def noise_floor(self) -> float:
        """Error of an unscaled rerun: non-zero means the model is not reproducible."""
        return self.error({})

    def scaling_error(self, names: Iterable[str], factors: Iterable[float] = DEFAULT_FACTORS) -> float:
        """Max error when `names` are all scaled by one common factor, over each factor given."""
        names = list(names)
        return max(self.error(dict.fromkeys(names, c)) for c in factors)

    def is_invariant(self, names: Iterable[str], factors: Iterable[float] = DEFAULT_FACTORS,
                     tol: float = TOLERANCE) -> bool:
        return self.scaling_error(names, factors) <= tol

    def has_no_effect(self, name: str, tol: float = TOLERANCE) -> bool:
        """True when replacing the parameter by unrelated random values leaves the output unchanged."""
        param = self.params[name]
        gen = torch.Generator().manual_seed(self.seed + 1)
        with self._restoring([name]):
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 3 + 1)
            return max_rel_error(self.baseline, self._forward()) <= tol


def is_scale_invariant(model: nn.Module, example_inputs: tuple[Any, ...], names: Iterable[str],
                       factors: Iterable[float] = DEFAULT_FACTORS, seed: int = 0,
                       tol: float = TOLERANCE) -> tuple[bool, float]:
    """Numeric ground truth: is f unchanged when all `names` are scaled by each common factor?

    Returns (invariant, max relative error). Builds a fresh probe; reuse a `ScalingProbe` for
    many questions about one model.
    """
    err = ScalingProbe(model, example_inputs, seed).scaling_error(names, factors)
    return err <= tol, err
