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
  "+ constant"). A hand-written `statistic + eps` that the static analysis read as the
  statistic (its eps values are passed in) is run with TINY_EPS too, the same convention; the
  baseline forward measures eps / mean(statistic) there, and the confirmation refutes the
  claims that rely on an eps that is not small.
- **One float64 copy.** Made directly from the model (complex tensors become complex128);
  the perturbation repeats one block of random numbers, so it costs two passes over the weights.
- **Identical randomness and state.** Every forward is re-seeded the same way (dropout
  masks match) inside `fork_rng` (the caller's RNG is untouched), and buffers (BatchNorm
  running statistics, counters) are restored after each forward.
"""
from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves, tree_map

from explr.audit.arguments import bind_call
from explr.errors import ExplrError
from explr.model_copy import private_copy

TINY_EPS = 1e-30
# float64 carries ~1e-16 relative precision; with eps ~ 0 an invariant set reproduces the output
# up to rounding accumulated over the network depth (measured <= 1e-14 on every fixture), while a
# non-invariant parameter scaled by c in [0.3, 3.5] moves the output by >= 4e-3 there (usually
# 1e-2..1). 1e-9 sits five orders of magnitude from both.
TOLERANCE = 1e-9
# eps / variance above this: a normalization (or a hand-written `var + eps`) no longer makes its input's
# scale negligible (docs/theory.md §1); the converted run would drift visibly.
EPS_RATIO_LIMIT = 1e-3
FACTOR_RANGE = (0.3, 3.5)
_FACTOR_GAP = (0.77, 1.3)  # factors this close to 1 would weaken the test
DEFAULT_FACTORS = (0.37, 2.9)

# Normalization functions whose `eps` argument the copy sets to TINY_EPS (read by name, see arguments.py).
_NORM_FUNCS = frozenset(getattr(ns, name) for name in ("batch_norm", "instance_norm", "layer_norm", "group_norm",
                                                       "rms_norm") for ns in (torch.nn.functional, torch)
                        if hasattr(ns, name))
_ADDS = frozenset({torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__})


class UnverifiableError(ExplrError):
    """The model cannot be run for a numeric check (meta tensors, float64 failure, non-determinism)."""


class _TinyEps(TorchFunctionMode):
    """Every normalization runs with eps=TINY_EPS, and so does every hand-written `statistic + eps`
    the static analysis read as the statistic (the same convention on both sides). While
    `measuring`, the hand-written ones record eps / mean(statistic) (max per eps value)."""

    def __init__(self, eps_literals: Iterable[float] = ()):
        super().__init__()
        self.literals = frozenset(eps_literals)
        self.measuring = False
        self.ratios: dict[float, float] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _NORM_FUNCS:
            bound = bind_call(func, args, kwargs)
            if bound is not None and "eps" in bound.signature.parameters:
                bound.arguments["eps"] = TINY_EPS
                return func(*bound.args, **bound.kwargs)
        elif func in _ADDS and self.literals and len(args) == 2 and not kwargs:
            args = self._hand_written(args)
        return func(*args, **kwargs)

    def _hand_written(self, args: tuple) -> tuple:
        tensor, c = (args[0], args[1]) if isinstance(args[0], torch.Tensor) else (args[1], args[0])
        if not isinstance(tensor, torch.Tensor) or not isinstance(c, float) or c not in self.literals \
                or not bool((tensor >= 0).all()):
            return args
        if self.measuring:
            mean = float(tensor.detach().real.mean()) if tensor.numel() else 0.0
            ratio = c / mean if mean > 0 else math.inf
            self.ratios[c] = max(ratio, self.ratios.get(c, 0.0))
        return (tensor, TINY_EPS) if args[0] is tensor else (TINY_EPS, tensor)


def is_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def draw_factor(rng: random.Random, below: bool | None = None) -> float:
    """A log-uniform factor in FACTOR_RANGE, kept away from 1: below or above 1 as asked, else either
    side with equal odds."""
    if below is None:
        below = rng.random() < 0.5
    low, high = (FACTOR_RANGE[0], _FACTOR_GAP[0]) if below else (_FACTOR_GAP[1], FACTOR_RANGE[1])
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


_NOISE_PERIOD = 65521  # a prime: the repeated noise pattern never lines up with channel sizes


class _Noise:
    """(0.5·rms(p) + 0.1) · noise per parameter, so zeros and ones move too. The noise is one block
    of standard normal numbers, repeated from a random offset per tensor: drawing a fresh number
    per element costs seconds on 100M-parameter models."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.pool = torch.randn(2 * _NOISE_PERIOD, generator=self.gen, dtype=torch.float64)

    def widen_into(self, out: torch.Tensor, p: torch.Tensor) -> None:
        """out (float64/complex128, same shape) = p + noise: a widening copy, then one vectorized add."""
        flat_p, flat_out = p.detach().reshape(-1), out.view(-1)
        n = flat_p.numel()
        sample = flat_p[::max(1, n // _NOISE_PERIOD)]  # the rms of a strided sample sets the noise level
        scale = float(torch.linalg.vector_norm(sample)) / math.sqrt(sample.numel()) * 0.5 + 0.1
        offset = int(torch.randint(_NOISE_PERIOD, (1,), generator=self.gen))
        pattern = self.pool[offset:offset + _NOISE_PERIOD].to(p.device)
        rows = n // _NOISE_PERIOD
        head = rows * _NOISE_PERIOD
        flat_out.copy_(flat_p)
        if rows:  # every full period at once: (rows, P) += (1, P), in the wide dtype (vectorized)
            flat_out[:head].view(rows, _NOISE_PERIOD).add_(pattern.view(1, -1), alpha=scale)
        if head < n:
            flat_out[head:].add_(pattern[:n - head], alpha=scale)


def _wide(t: torch.Tensor) -> torch.dtype | None:
    """float64 for floating tensors, complex128 for complex ones (the imaginary part is kept)."""
    if t.is_complex():
        return torch.complex128
    return torch.float64 if t.is_floating_point() else None


def _to_float64(value: Any) -> Any:
    return tree_map(lambda t: t.to(_wide(t)) if isinstance(t, torch.Tensor) and _wide(t) else t, value)


def float64_copy(model: nn.Module, perturb_seed: int | None = None) -> nn.Module:
    """One copy of the model with floating tensors in float64 and complex ones in complex128 (tied
    tensors stay tied), made directly from the model's tensors; with `perturb_seed`, every
    parameter is perturbed while it is widened (one pass over the weights)."""
    noise = _Noise(perturb_seed) if perturb_seed is not None else None
    params = {id(p) for p in model.parameters()}
    memo: dict[int, Any] = {}
    for t in (*model.parameters(), *model.buffers()):
        dtype = _wide(t)
        if id(t) in memo or dtype is None:
            continue
        wide = torch.empty(t.shape, dtype=dtype, device=t.device)
        if noise is not None and id(t) in params and t.numel():
            noise.widen_into(wide, t)
        else:
            wide.copy_(t.detach())
        memo[id(t)] = nn.Parameter(wide, t.requires_grad) if isinstance(t, nn.Parameter) else wide
    try:
        return copy.deepcopy(model, memo)
    except Exception:  # noqa: BLE001 - models deepcopy refuses: the general copier, then widen each tensor
        copied = private_copy(model)
        with torch.no_grad():
            for t in (*copied.parameters(), *copied.buffers()):
                if _wide(t) is not None:
                    t.data = t.data.to(_wide(t))
            for p in copied.parameters():
                if noise is not None and _wide(p) is not None and p.numel():
                    noise.widen_into(p.data, p.data.clone())
        return copied


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
                 perturb: bool = True, tiny_eps: bool = True, eps_literals: Iterable[float] = ()):
        """`perturb`/`tiny_eps` exist to show (in tests) why both are on: never turn them off to verify.
        `eps_literals`: the hand-written eps values the static analysis read as negligible."""
        if is_meta(model):
            raise UnverifiableError("meta device: the weights are not allocated, so nothing can be run")
        self.seed = seed
        self._eps = _TinyEps(eps_literals) if tiny_eps else None
        self.model = float64_copy(model, seed if perturb else None).train()
        self.inputs = _to_float64(tuple(example_inputs))
        self.params = dict(self.model.named_parameters())
        # fork_rng must also save/restore the RNG of every CUDA device the model runs on
        self._cuda = sorted({p.device.index or 0 for p in self.params.values() if p.device.type == "cuda"})
        self._buffers = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        self.forwards = 0
        self._saved: dict[str, torch.Tensor] = {}
        if self._eps is not None:
            self._eps.measuring = True
        try:
            self.baseline = self._forward()
        finally:
            if self._eps is not None:
                self._eps.measuring = False
        if not _all_finite(self.baseline):
            raise UnverifiableError("the float64 output contains NaN or inf after perturbing the parameters")

    @property
    def eps_ratios(self) -> dict[float, float]:
        """Hand-written eps -> eps / mean(statistic), the largest seen in the baseline forward."""
        return dict(self._eps.ratios) if self._eps is not None else {}

    def _forward(self) -> Any:
        try:
            with torch.random.fork_rng(devices=self._cuda), torch.no_grad(), _float64_default(), \
                    (self._eps if self._eps is not None else contextlib.nullcontext()):
                torch.manual_seed(self.seed)
                return self.model(*self.inputs)
        except Exception as exc:  # the model's own failure: numeric confirmation is impossible
            raise UnverifiableError(f"the float64 copy failed to run: {type(exc).__name__}: {exc}") from exc
        finally:
            self.forwards += 1
            self._restore_buffers()

    def _restore_buffers(self) -> None:
        """Every forward starts from the buffers the copy had. A forward may rebind a buffer to a new
        tensor (a lazy cache: ConViT's `self.rel_indices = ...` on the first call): copying the saved
        value into that one would broadcast it into a wrong cache, so the saved tensor is bound back."""
        with torch.no_grad():
            for name, saved in self._buffers.items():
                owner, _, leaf = name.rpartition(".")
                module = self.model.get_submodule(owner)
                current = module._buffers.get(leaf)
                if isinstance(current, torch.Tensor) and current.shape == saved.shape and current.dtype == saved.dtype:
                    current.copy_(saved)
                else:
                    module._buffers[leaf] = saved.clone()

    def check_names(self, names: Iterable[str]) -> None:
        missing = sorted(set(names) - set(self.params))
        if missing:
            raise KeyError(f"not parameters of the model: {', '.join(missing)}")

    def error(self, factors: Mapping[str, float]) -> float:
        """Relative output change when each named parameter is multiplied by its factor; infinite
        when the scaled copy fails to run (a claim that breaks the forward pass is refuted)."""
        with self._restoring(factors):
            for name, c in factors.items():
                self.params[name].mul_(c)
            try:
                return max_rel_error(self.baseline, self._forward())
            except UnverifiableError:
                if not factors:
                    raise
                return math.inf

    @contextlib.contextmanager
    def _restoring(self, names: Iterable[str]) -> Iterator[None]:
        """Modify the named parameters in place (no grad) inside; their values come back after."""
        self.check_names(names)
        saved = {}
        for name in names:  # one save buffer per parameter, reused by every later check
            buffer = self._saved.get(name)
            if buffer is None:
                buffer = self._saved[name] = torch.empty_like(self.params[name])
            saved[name] = buffer.copy_(self.params[name].detach())
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
