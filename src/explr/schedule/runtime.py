"""`explr.TEXP`: a torch LR scheduler, stepped every iteration, that runs the exact conversion.

Param groups tagged `explr_si` (see explr.param_groups) get η̃_t = η_t/(s_{t-1}s_t), with s_t the
phantom scalar of their original (momentum, dampening, weight decay); all other groups get the
original LR η_t. The network function then equals the weight-decay run's at every step
(docs/theory.md §3). Optional renormalization (§4) keeps the SI weights in a safe range, exactly.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.optim import SGD, Optimizer
from torch.optim.lr_scheduler import LRScheduler

from explr.errors import ConfigError, UnsupportedError
from explr.schedule import fingerprint
from explr.schedule.groups import ORIGINAL_WD, SI_TAG
from explr.schedule.phantom import Phantom, SGDHyper
from explr.schedule.renorm import Renormalizer
from explr.schedule.sources import lr_source

_ADAPTIVE = tuple(getattr(torch.optim, n) for n in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax", "RMSprop", "Adagrad"))


@dataclass(frozen=True, slots=True)
class _OptimizerRule:
    kind: str  # "sgd" (exact) | "nesterov" | "adaptive" (approximate only)
    matches: Callable[[Optimizer], bool]
    deviation: str | None  # None: exact; else what deviates (error in exact mode, warning otherwise)


_RULES = (
    _OptimizerRule("nesterov", lambda o: isinstance(o, SGD) and any(g.get("nesterov") for g in o.param_groups),
                   "Nesterov momentum has no exact exponential-LR equivalent (its look-ahead gradient term would "
                   "need a second LR), so the converted run deviates from the weight-decay run"),
    _OptimizerRule("sgd", lambda o: isinstance(o, SGD), None),
    _OptimizerRule("adaptive", lambda o: isinstance(o, _ADAPTIVE),
                   "the moment estimates mix gradients of different scales; TEXP uses η_t/s_t with "
                   "s_t = Π(1-η_t·λ) (≈ ExpLR with growth (1-ηλ)^-1), which only approximates the weight-decay run"),
)


def _conversion_kind(optimizer: Optimizer, approximate: bool) -> str:
    name = type(optimizer).__name__
    rule = next((r for r in _RULES if r.matches(optimizer)), None)
    if rule is None:
        raise UnsupportedError(f"TEXP: {name} has no weight-decay -> exponential-LR conversion; use torch.optim.SGD")
    if rule.deviation and not approximate:
        raise UnsupportedError(f"TEXP: {name}: {rule.deviation}; use plain SGD momentum or pass approximate=True")
    if rule.deviation:
        warnings.warn(f"TEXP(approximate=True) with {name}: {rule.deviation}", stacklevel=3)
    return rule.kind


class DecoupledScale:
    """Approximate scale for adaptive optimizers: s_t = s_{t-1}(1-η_t λ); returns η_t/s_t (Phantom's interface)."""

    __slots__ = ("weight_decay", "s", "t")

    def __init__(self, weight_decay: float):
        self.weight_decay, self.s, self.t = weight_decay, 1.0, 0

    def step(self, lr: float) -> float:
        self.s *= 1.0 - lr * self.weight_decay
        self.t += 1
        if self.s <= 0.0:
            raise ValueError(f"lr*weight_decay >= 1 at step {self.t}: weights shrink through zero")
        return lr / self.s

    def rescale(self, factor: float) -> None:
        self.s *= factor

    def state_dict(self) -> dict:
        return {"s": self.s, "buf": None, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.s, self.t = float(state["s"]), int(state["t"])


def _si_group_key(i: int, group: dict, kind: str) -> tuple:
    """Groups with equal keys share one phantom: same hyperparameters and same initial LR."""
    if group.get("weight_decay", 0.0) != 0.0:
        raise ConfigError(f"TEXP: param group {i} is tagged {SI_TAG} but has weight_decay={group['weight_decay']}; "
                          f"its original decay belongs in '{ORIGINAL_WD}' (build groups with explr.param_groups)")
    if ORIGINAL_WD not in group:
        raise ConfigError(f"TEXP: param group {i} is tagged {SI_TAG} but lacks '{ORIGINAL_WD}' (the original weight "
                          "decay); build groups with explr.param_groups")
    lr = float(group.get("initial_lr", group["lr"]))
    if kind == "adaptive":
        return kind, float(group[ORIGINAL_WD]), lr
    hyper = SGDHyper(group["momentum"], group["dampening"], float(group[ORIGINAL_WD]), bool(group["nesterov"]))
    try:
        hyper.validate()
    except ValueError as exc:
        raise ConfigError(f"TEXP: param group {i}: {exc}") from None
    return kind, hyper, lr


def _new_scaler(key: tuple) -> Phantom | DecoupledScale:
    return DecoupledScale(key[1]) if key[0] == "adaptive" else Phantom(key[1])


class TEXP(LRScheduler):
    """Exact TEXP scheduler. Step it after every optimizer.step() (per iteration, not per epoch).

    schedule: an LRSchedule, a function i -> lr (0-based iteration), or a factory
    `lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, ...)` describing the original run
    (milestones etc. counted in iterations, since TEXP steps per iteration).
    renormalize: None, or (low, high) bounds on the global L2 norm of the SI parameters; when it
    leaves them, SI parameters are multiplied by a power of two c, momentum buffers by 1/c and later
    SI LRs by c² (exact in function space). high/low must be >= 4.
    """

    def __init__(self, optimizer: Optimizer, schedule: Any, *, approximate: bool = False,
                 renormalize: tuple[float, float] | None = None, last_epoch: int = -1):
        # every check runs before LRScheduler.__init__, the first thing that writes into the optimizer
        self._kind = _conversion_kind(optimizer, approximate)
        self._source = lr_source(schedule, optimizer)
        self._setup_scalers(optimizer)
        if renormalize is not None and self._kind == "adaptive":
            raise UnsupportedError("TEXP: renormalization is exact only for SGD; drop renormalize= for this optimizer")
        si_params = [p for g in optimizer.param_groups if g.get(SI_TAG) for p in g["params"]]
        self._renorm = None if renormalize is None else Renormalizer(renormalize, si_params)
        self.weight_factor = 1.0  # product of the renormalization factors c so far
        self._skipped: list[int] = []  # LR indices whose optimizer step was skipped (AMP overflow)
        self._undo: list[dict | None] = [None] * len(self._scalers)  # scaler states before the pending step
        self._optimizer_steps = self._steps_seen = 0
        self._lr_digest, self._digested = 0, 0  # rolling digest of the original LRs of iterations < _digested
        super().__init__(optimizer, last_epoch)
        # registered last, once nothing can fail any more: counts real optimizer steps (GradScaler skips them)
        self._step_counter = optimizer.register_step_post_hook(self._count_optimizer_step)

    def _count_optimizer_step(self, *_: Any) -> None:
        self._optimizer_steps += 1

    def _setup_scalers(self, optimizer: Optimizer) -> None:
        keys: list[tuple] = []
        self._scaler_of_group: list[int | None] = []
        self._rep_group: list[int] = []  # for each scaler: a group whose original LR drives it
        for i, group in enumerate(optimizer.param_groups):
            if not group.get(SI_TAG):
                self._scaler_of_group.append(None)
                continue
            key = _si_group_key(i, group, self._kind)
            if key not in keys:
                keys.append(key)
                self._rep_group.append(i)
            self._scaler_of_group.append(keys.index(key))
        if not keys:
            warnings.warn(f"TEXP: no param group is tagged {SI_TAG}; it only replays the original schedule "
                          "(build groups with explr.param_groups)", stacklevel=3)
        self._keys = keys
        self._scalers = [_new_scaler(k) for k in keys]

    def _steps_before(self, i: int) -> int:
        """Optimizer steps actually taken before LR index i (indices whose step was skipped do not count)."""
        return i - sum(1 for j in self._skipped if j < i)

    def _advance(self, k: int, i: int, lr: float) -> float:
        """Step scaler k with the LR of index i and return its LR ratio; replay after a jump."""
        scaler = self._scalers[k]
        try:
            if scaler.t != self._steps_before(i):
                scaler = self._scalers[k] = _new_scaler(self._keys[k])
                skipped = set(self._skipped)
                for j in (j for j in range(i) if j not in skipped):
                    scaler.step(self._source.lrs_at(j)[self._rep_group[k]])
                if self.weight_factor != 1.0:
                    scaler.rescale(1.0 / self.weight_factor)
            self._undo[k] = scaler.state_dict()
            return scaler.step(lr)
        except ValueError as exc:
            raise ConfigError(f"TEXP: {exc}") from None

    def get_lr(self) -> list[float]:  # type: ignore[override]  # torch's stub also allows tensors; ours are floats
        i = self.last_epoch
        if i != self._digested:  # a jump: digest the schedule up to here
            self._lr_digest, self._digested = fingerprint.digest_of(self._source.lrs_at, i), i
        lrs = self._source.lrs_at(i)
        self._lr_digest, self._digested = fingerprint.fold(self._lr_digest, lrs), i + 1
        ratios = [self._advance(k, i, lrs[g]) for k, g in enumerate(self._rep_group)]
        return [lr if k is None else ratios[k] for lr, k in zip(lrs, self._scaler_of_group)]

    def _account_for_optimizer_steps(self) -> None:
        """Since the last scheduler step: one optimizer step (normal), or none — GradScaler skipped it on an
        overflow, so the original run's weights, momentum and phantom stay put while its LR index moves on."""
        taken, self._steps_seen = self._optimizer_steps - self._steps_seen, self._optimizer_steps
        if taken > 1:
            raise ConfigError(f"TEXP: optimizer.step() ran {taken} times since the last scheduler.step(); step "
                              "TEXP after every optimizer step (per iteration, not per epoch)")
        if taken == 0:
            for scaler, state in zip(self._scalers, self._undo):
                if state is not None:
                    scaler.load_state_dict(state)
            self._skipped.append(self.last_epoch)

    def step(self, epoch: int | None = None) -> None:
        if self._step_count > 0:  # not at construction: no step taken yet
            self._account_for_optimizer_steps()
            self._renormalize_if_needed()
        super().step(epoch)

    def _renormalize_if_needed(self) -> None:
        c = 1.0 if self._renorm is None else self._renorm.apply_if_needed(self.optimizer)
        if c != 1.0:  # weights × c, buffers / c (done); later SI LRs × c²: fold it into the phantoms
            self.weight_factor *= c
            for scaler in self._scalers:
                scaler.rescale(1.0 / c)

    def catch_up(self, index: int, most: int) -> None:
        """For a TEXP stepped by an optimizer step hook: the original run's LR index is now `index` (its scheduler
        stepped there). Iterations the hook never saw had their optimizer step skipped by GradScaler (overflow):
        the LR index moves over them with the phantom untouched, as the original's does. At most `most` of them
        fit since the caller's last call; more means the caller's count is not the original's."""
        behind = index - self.last_epoch
        if behind > most:
            raise ConfigError(f"TEXP: the original run's LR index is {index}, {behind} iterations past the "
                              f"{self.last_epoch} seen here (at most {most} skipped steps fit): the scheduler is "
                              "stepped more often than the converted plan says, or resumed without its state")
        for _ in range(behind):
            self.step()

    @property
    def optimizer_steps(self) -> int:
        """optimizer.step() calls seen since this scheduler was built (GradScaler-skipped steps do not count)."""
        return self._optimizer_steps

    @property
    def skipped_steps(self) -> list[int]:
        """LR indices (0-based iterations) whose optimizer step did not happen (AMP overflow)."""
        return list(self._skipped)

    @property
    def scales(self) -> list[float]:
        """Phantom scale per distinct SI hyperparameter set: s_t / weight_factor (= s_t if never renormalized)."""
        return [s.s for s in self._scalers]

    @property
    def renormalizations(self) -> int:
        return 0 if self._renorm is None else self._renorm.count

    def _phantom_keys(self) -> list[list]:
        return [[k[0], *(dataclasses.astuple(k[1]) if isinstance(k[1], SGDHyper) else (k[1],)), k[2]]
                for k in self._keys]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count, "_last_lr": list(self._last_lr),
                "base_lrs": list(self.base_lrs), "scalers": [s.state_dict() for s in self._scalers],
                "weight_factor": self.weight_factor, "renormalizations": self.renormalizations,
                "skipped": list(self._skipped), "undo": list(self._undo),
                "layout": fingerprint.group_layout(self.optimizer.param_groups, SI_TAG),
                "phantoms": self._phantom_keys(), "lr_digest": self._lr_digest}

    def _refuse_foreign(self, state: dict[str, Any]) -> None:
        """One line naming what differs when the checkpoint is of another model, split or schedule."""
        layout = fingerprint.group_layout(self.optimizer.param_groups, SI_TAG)
        differs = (fingerprint.first_difference(state.get("layout", layout), layout, "param group(s)")
                   or fingerprint.first_difference(state.get("phantoms", self._phantom_keys()), self._phantom_keys(),
                                                   "SI phantom(s) (kind, momentum, dampening, weight decay, nesterov, lr)"))
        if differs is None and len(state["scalers"]) != len(self._scalers):
            differs = f"the checkpoint has {len(state['scalers'])} SI phantom(s), this optimizer {len(self._scalers)}"
        if differs is None and "lr_digest" in state:
            n = int(state["last_epoch"]) + 1
            if fingerprint.digest_of(self._source.lrs_at, n) != state["lr_digest"]:
                differs = f"the original LRs of iterations 0..{n - 1} differ: it was saved with another LR schedule"
        if differs is not None:
            raise ConfigError(f"TEXP.load_state_dict: not a checkpoint of this run ({differs}); resume with the "
                              "model, param groups and schedule it was saved with")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._refuse_foreign(state_dict)
        for scaler, state in zip(self._scalers, state_dict["scalers"]):
            scaler.load_state_dict(state)
        self.last_epoch, self._step_count = state_dict["last_epoch"], state_dict["_step_count"]
        self._last_lr, self.base_lrs = list(state_dict["_last_lr"]), list(state_dict["base_lrs"])
        self.weight_factor = float(state_dict["weight_factor"])
        self._skipped = [int(j) for j in state_dict.get("skipped", ())]
        self._undo = list(state_dict.get("undo", [None] * len(self._scalers)))
        self._steps_seen = self._optimizer_steps
        self._digested = self.last_epoch + 1
        self._lr_digest = state_dict.get("lr_digest", fingerprint.digest_of(self._source.lrs_at, self._digested))
        if self._renorm is not None:
            self._renorm.count = int(state_dict["renormalizations"])
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):  # the LRs in effect when saved
            group["lr"] = lr
