"""The original LR as a pure function of the iteration (timm style: the scheduler only writes it).

`LRSchedule.lr_at(i)` is the LR of optimizer step i+1 (i = 0-based iteration index). Everything
is expressed in iterations; a scheduler that the original setup steps once per epoch is
modelled with `step_every = iters_per_epoch` (the LR is held constant inside each epoch).
Decay "wsd" is timm's WSDLRScheduler (warmup-stable-decay; `--sched rsqrt` is its rsqrt stable phase).
Decay "chain" carries mmengine's chained schedulers themselves and replays them (explr.lr_chain).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from explr.lr_chain import VALUES, ChainLink, chained_lrs

DECAYS = ("step", "cosine", "linear", "constant", "exp", "poly", "tanh", "wsd", "chain")
CYCLED = ("cosine", "poly", "tanh")  # the decays that take timm's restarts (and, but tanh, k-decay)
TANH_BOUNDS = (-7.0, 3.0)  # timm TanhLRScheduler's lb, ub defaults (create_scheduler_v2 never sets them)
WARMUPS = ("linear", "constant")
ANNEAL_SHAPES = ("linear", "1-sqrt", "cosine", "power", "exp")  # timm WSDLRScheduler's decay_fn names
# How warmup combines with the decay: "multiply" scales the decayed LR (torch chained, pycls);
# "ramp_to_base" replaces it by a ramp from warmup_factor*base_lr to base_lr (timm schedulers);
# "ramp_to_decay" ramps to the decayed LR at the end of warmup (detectron2 WarmupParamScheduler).
WARMUP_BLENDS = ("multiply", "ramp_to_base", "ramp_to_decay")


@dataclass(frozen=True, slots=True)
class LRSchedule:
    base_lr: float
    total_iters: int
    decay: str = "step"  # one of DECAYS
    milestones: tuple[int, ...] = ()  # iterations where the LR is multiplied by gamma ("step"), sorted
    gamma: float = 0.1
    eta_min: float = 0.0  # floor of "cosine"/"linear" decay; end LR of "exp" (base*(eta_min/base)**frac)
    warmup_iters: int = 0
    warmup_factor: float = 0.0  # LR multiplier at the first warmup iteration
    warmup_method: str = "linear"  # one of WARMUPS
    step_every: int = 1  # 1: stepped per iteration; iters_per_epoch: stepped per epoch
    decay_start: int = 0  # iteration where "cosine"/"linear" decay begins (torch SequentialLR after warmup)
    decay_iters: int | None = None  # length of that decay; None: until total_iters
    warmup_blend: str = "multiply"  # one of WARMUP_BLENDS
    # Cosine restarts and k-decay (timm CosineLRScheduler): cycle i lasts decay_iters * cycle_mul**i, peaks at
    # base_lr * cycle_decay**i, and the phase is frac**k_decay; after cycle_limit cycles the LR stays at eta_min.
    cycle_limit: int = 1
    cycle_mul: float = 1.0
    cycle_decay: float = 1.0
    k_decay: float = 1.0
    # decay shape exponent: "poly" (timm PolyLRScheduler) eta_min + (peak - eta_min) * (1 - frac**k_decay) ** power;
    # "linear" (mmengine PolyLR) (1 - frac) ** power
    power: float = 1.0
    warmup_every: int | None = None  # warmup stepped every this many iterations; None: as step_every (mmengine
    # can warm up per iteration under a decay stepped per epoch)
    # "wsd" (timm WSDLRScheduler): from decay_start a stable phase, base_lr or rsqrt base_lr * (1 + t /
    # stable_timescale) ** -0.5 (None: constant), floored at eta_min; its last anneal_iters of decay_iters anneal to
    # eta_min by anneal_shape ("power": 1 - frac ** power; "exp": (gamma ** frac - gamma) / (1 - gamma))
    stable_timescale: float | None = None
    anneal_iters: int = 0
    anneal_shape: str = "1-sqrt"  # one of ANNEAL_SHAPES
    chain: tuple[ChainLink, ...] = ()  # decay "chain": mmengine's chained schedulers, replayed (explr.lr_chain)

    def validate(self) -> None:
        if not (self.base_lr > 0 and math.isfinite(self.base_lr)):
            raise ValueError(f"lr={self.base_lr!r} must be a finite number > 0")
        if self.total_iters <= 0:
            raise ValueError(f"total iterations={self.total_iters!r} must be > 0")
        if self.decay not in DECAYS:
            raise ValueError(f"decay={self.decay!r} is not one of {', '.join(DECAYS)}")
        if self.warmup_method not in WARMUPS:
            raise ValueError(f"warmup_method={self.warmup_method!r} is not one of {', '.join(WARMUPS)}")
        if list(self.milestones) != sorted(self.milestones):  # a repeated milestone decays twice there (timm)
            raise ValueError(f"milestones={list(self.milestones)} must be strictly increasing (or repeated)")
        if self.milestones and (self.milestones[0] <= 0 or self.milestones[-1] >= self.total_iters):
            raise ValueError(f"milestones={list(self.milestones)} must lie inside (0, {self.total_iters}) iterations")
        if not (0 < self.gamma <= 1):
            raise ValueError(f"gamma={self.gamma!r} must be in (0, 1]")
        if not (0 <= self.warmup_iters <= self.total_iters):  # == total: the whole run warms up (detectron2)
            raise ValueError(f"warmup iterations={self.warmup_iters!r} must be in [0, {self.total_iters}]")
        if self.step_every <= 0:
            raise ValueError(f"step_every={self.step_every!r} must be > 0")
        if not (0 <= self.decay_start < self.total_iters) or (self.decay_iters is not None and self.decay_iters <= 0):
            raise ValueError(f"decay_start={self.decay_start!r}/decay_iters={self.decay_iters!r} must lie inside training")
        if self.warmup_blend not in WARMUP_BLENDS:
            raise ValueError(f"warmup_blend={self.warmup_blend!r} is not one of {', '.join(WARMUP_BLENDS)}")
        if not self.power > 0:
            raise ValueError(f"power={self.power!r} must be > 0")
        if self.warmup_every is not None and self.warmup_every <= 0:
            raise ValueError(f"warmup_every={self.warmup_every!r} must be > 0")
        if self.decay == "exp" and not 0 < self.eta_min <= self.base_lr:
            raise ValueError(f"exp decay needs 0 < eta_min={self.eta_min!r} <= lr={self.base_lr!r}")
        if self.cycle_limit < 1 or self.cycle_mul <= 0 or self.cycle_decay <= 0 or self.k_decay <= 0:
            raise ValueError(f"cycle_limit={self.cycle_limit!r} must be >= 1 and cycle_mul={self.cycle_mul!r}, "
                             f"cycle_decay={self.cycle_decay!r}, k_decay={self.k_decay!r} > 0")
        if (self.decay == "chain") != bool(self.chain) or any(link.kind not in VALUES for link in self.chain):
            raise ValueError(f"decay='chain' needs a chain of {', '.join(VALUES)} (and only it takes one)")
        if self.chain:
            try:
                chained_lrs(self.chain, self.base_lr, self.total_iters)
            except (ArithmeticError, TypeError) as exc:  # ValueError passes through as it is
                raise ValueError(f"the chained schedulers fail to step: {type(exc).__name__}: {exc}") from None
        self._validate_wsd()
        if self._cycled and self.decay not in CYCLED:
            raise ValueError(f"cycles and k-decay apply to {' and '.join(CYCLED)} decay only, not decay={self.decay!r}")

    def _validate_wsd(self) -> None:
        if self.decay != "wsd":
            if (self.stable_timescale, self.anneal_iters, self.anneal_shape) != (None, 0, "1-sqrt"):
                raise ValueError(f"stable_timescale, anneal_iters and anneal_shape apply to decay 'wsd' only, not "
                                 f"decay={self.decay!r}")
            return
        if self.decay_iters is None or not 0 < self.anneal_iters <= self.decay_iters:
            raise ValueError(f"wsd decay needs 0 < anneal_iters={self.anneal_iters!r} <= decay_iters="
                             f"{self.decay_iters!r}")
        if self.anneal_shape not in ANNEAL_SHAPES or not 0 < self.gamma < 1:
            raise ValueError(f"anneal_shape={self.anneal_shape!r} must be one of {', '.join(ANNEAL_SHAPES)} "
                             f"(and gamma={self.gamma!r}, the exp ratio, in (0, 1))")
        if self.stable_timescale is not None and not self.stable_timescale > 0:
            raise ValueError(f"stable_timescale={self.stable_timescale!r} must be > 0")
        if not 0 <= self.eta_min <= self.base_lr:
            raise ValueError(f"wsd decay needs 0 <= eta_min={self.eta_min!r} <= lr={self.base_lr!r}")

    @property
    def _cycled(self) -> bool:
        return self.decay in ("poly", "tanh") or (self.cycle_limit, self.cycle_mul, self.cycle_decay, self.k_decay) != (
            1, 1.0, 1.0, 1.0)

    def _position(self, i: int, every: int | None = None) -> int:
        every = every or self.step_every
        return (i // every) * every

    def warmup_multiplier(self, u: int) -> float:
        if u >= self.warmup_iters:
            return 1.0
        if self.warmup_method == "constant":
            return self.warmup_factor
        alpha = u / self.warmup_iters
        return self.warmup_factor * (1.0 - alpha) + alpha

    def decay_lr(self, u: int) -> float:
        if self.decay == "step":
            return self.base_lr * self.gamma ** sum(1 for m in self.milestones if u >= m)
        if self.decay == "constant":
            return self.base_lr
        if self.decay == "wsd":
            return self._wsd_decay(max(u - self.decay_start, 0))
        length = self.decay_iters if self.decay_iters is not None else self.total_iters - self.decay_start
        if self._cycled:
            return self._cycled_decay(max(u - self.decay_start, 0), length)
        frac = min(max(u - self.decay_start, 0) / length, 1.0)
        if self.decay == "exp":
            return self.base_lr * (self.eta_min / self.base_lr) ** frac
        shape = 0.5 * (1.0 + math.cos(math.pi * frac)) if self.decay == "cosine" else (1.0 - frac) ** self.power
        return self.eta_min + (self.base_lr - self.eta_min) * shape

    def _cycled_decay(self, t: int, length: int) -> float:
        """timm Cosine/Poly/TanhLRScheduler._get_lr after warmup, t and length in iterations (same operations)."""
        mul = self.cycle_mul
        if mul != 1:
            i = math.floor(math.log(1 - t / length * (1 - mul), mul))
            t_i = mul ** i * length
            t_curr = t - (1 - mul ** i) / (1 - mul) * length
        else:
            i, t_i = t // length, length
            t_curr = t - length * i
        if i >= self.cycle_limit:
            return self.eta_min
        peak = self.base_lr * self.cycle_decay ** i
        k = self.k_decay
        if self.decay == "poly":
            return self.eta_min + (peak - self.eta_min) * (1 - t_curr ** k / t_i ** k) ** self.power
        if self.decay == "tanh":
            lb, ub = TANH_BOUNDS
            tr = t_curr / t_i
            return self.eta_min + 0.5 * (peak - self.eta_min) * (1 - math.tanh(lb * (1. - tr) + ub * tr))
        return self.eta_min + 0.5 * (peak - self.eta_min) * (1 + math.cos(math.pi * t_curr ** k / t_i ** k))

    def _wsd_decay(self, t: int) -> float:
        """timm WSDLRScheduler._get_lr after warmup, t and lengths in iterations (same operations)."""
        stable = 1. if self.stable_timescale is None else (1. + t / self.stable_timescale) ** -0.5
        lr = max(self.base_lr * stable, self.eta_min)
        assert self.decay_iters is not None  # validate()
        t_decay = t - (self.decay_iters - self.anneal_iters)
        if t_decay <= 0:
            return lr
        return self.eta_min + (lr - self.eta_min) * self._anneal(min(t_decay / self.anneal_iters, 1.))

    @property
    def anneal_span(self) -> tuple[int, int]:
        """"wsd": the iterations [start, end) where the LR anneals; before, the stable phase; after, eta_min."""
        end = self.decay_start + (self.decay_iters or 0)
        return end - self.anneal_iters, end

    def _anneal(self, frac: float) -> float:
        """WSDLRScheduler._decay: from 1 at frac 0 to 0 at frac 1."""
        if self.anneal_shape == "linear":
            return 1. - frac
        if self.anneal_shape == "1-sqrt":
            return 1. - math.sqrt(frac)
        if self.anneal_shape == "cosine":
            return 0.5 * (1. + math.cos(math.pi * frac))
        if self.anneal_shape == "power":
            return 1. - frac ** self.power
        return (self.gamma ** frac - self.gamma) / (1. - self.gamma)

    def warmup_ramp(self, u: int) -> float:
        """LR during warmup when it replaces the decay ("ramp_to_*" blends)."""
        start = self.warmup_factor * self.base_lr
        if self.warmup_method == "constant":
            return start
        end = self.base_lr if self.warmup_blend == "ramp_to_base" else self.decay_lr(self.warmup_iters)
        return start + (end - start) * (u / self.warmup_iters)

    def lr_at(self, i: int) -> float:
        if self.decay == "chain":  # mmengine's own operations; after training the last LR is held
            lrs = chained_lrs(self.chain, self.base_lr, self.total_iters)
            return lrs[min(i, len(lrs) - 1)]
        u, w = self._position(i), self._position(i, self.warmup_every)
        if w < self.warmup_iters and self.warmup_blend != "multiply":
            return self.warmup_ramp(w)
        return self.decay_lr(u) * self.warmup_multiplier(w)

    def __call__(self, i: int) -> float:
        return self.lr_at(i)


def schedule_from_epochs(lr: float, iters_per_epoch: int, epochs: int, milestones: tuple[int, ...] = (),
                         gamma: float = 0.1, warmup_epochs: int = 0, decay: str = "step") -> LRSchedule:
    """An LRSchedule from the epoch-level values people write (milestones in epochs); errors name epochs."""
    if iters_per_epoch <= 0:
        raise ValueError(f"iters_per_epoch={iters_per_epoch!r} must be an integer > 0")
    if epochs <= 0:
        raise ValueError(f"epochs={epochs!r} must be an integer > 0")
    if list(milestones) != sorted(set(milestones)) or (milestones and not 0 < milestones[0] <= milestones[-1] < epochs):
        raise ValueError(f"milestones={list(milestones)} must be strictly increasing epochs inside (0, {epochs})")
    if not 0 <= warmup_epochs < epochs:
        raise ValueError(f"warmup_epochs={warmup_epochs!r} must be in [0, {epochs})")
    schedule = LRSchedule(base_lr=lr, total_iters=epochs * iters_per_epoch, decay=decay,
                          milestones=tuple(m * iters_per_epoch for m in milestones), gamma=gamma,
                          warmup_iters=warmup_epochs * iters_per_epoch)
    schedule.validate()
    return schedule


def schedule_args(schedule: LRSchedule) -> dict:
    """The LRSchedule fields that differ from their defaults, in field order (what a config stores)."""
    out = {}
    for spec in dataclasses.fields(LRSchedule):
        value = getattr(schedule, spec.name)
        if spec.name == "chain" and value:
            out[spec.name] = [link.to_dict() for link in value]
        elif spec.default is dataclasses.MISSING or value != spec.default:
            out[spec.name] = list(value) if isinstance(value, tuple) else value
    return out
