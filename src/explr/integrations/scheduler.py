"""TEXPScheduler: the class converted Lightning/Hydra configs point at (`class_path` / `_target_`).

Framework configs build the optimizer from bare `model.parameters()`, so nothing knows parameter
names when the scheduler is created. The scheduler therefore starts unbound and is bound to the
model once (`bind(model, example_inputs)`, done by explr's Lightning callback on the first batch or
by one line of user code): it splits every existing param group into its scale-invariant part
(weight decay 0, tagged for explr.TEXP) and the rest (untouched), then drives explr.TEXP from an
optimizer step hook — every iteration, whatever interval the framework steps the scheduler at
(LightningCLI steps it once per epoch). Under AMP the GradScaler skips an overflowed optimizer step, so
the hook misses it while the original's scheduler still moves: the scheduler's own `step()`, called by the
user's loop or detectron2's LRScheduler hook every `schedule.step_every` iterations as the original's was,
moves the LR index over the skipped iterations (Lightning's ExplrCallback does it per trainer step
instead). Stepping the optimizer before `bind` is an error, never a silent un-converted run.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from explr.errors import ConfigError
from explr.lr_chain import ChainLink
from explr.lr_schedule import LRSchedule
from explr.schedule.groups import ORIGINAL_WD, SI_TAG, drop_mixed_joint_groups
from explr.schedule.runtime import TEXP

AUDIT = "audit"
SCHEDULER_ATTR = "_explr_scheduler"  # the optimizer attribute that holds its TEXPScheduler (for the framework hooks)
MEMBERS = "explr_members"  # a split group's parameters as positions in the unsplit optimizer (for resume)
_FIELDS = {f.name: f for f in dataclasses.fields(LRSchedule)}


def _names(value: Any) -> list[str] | None:
    """A list of parameter names from any sequence (Hydra passes an OmegaConf ListConfig), else None."""
    if isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(n, str) for n in value):
        return list(value)
    return None


def schedule_from_args(args: Any) -> LRSchedule:
    """An LRSchedule from config arguments (any mapping: Hydra passes an OmegaConf DictConfig)."""
    if not isinstance(args, Mapping):
        raise ConfigError(f"TEXPScheduler: schedule must be a mapping of LRSchedule fields, not {args!r}")
    unknown = sorted(set(args) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"TEXPScheduler: unknown schedule field(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(_FIELDS)}")
    values: dict[str, Any] = {str(k): tuple(v) if k == "milestones" else v for k, v in args.items()}  # validated below
    try:
        values["chain"] = tuple(ChainLink.from_dict(link) for link in values.get("chain", ()))
        schedule = LRSchedule(**values)
        schedule.validate()
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"TEXPScheduler: invalid schedule: {exc}") from None
    return schedule


def _prefix_for(model: nn.Module, names: list[str]) -> str:
    """"" when `names` are `model`'s own parameter names, else the one submodule prefix ("net.") that fits
    them all: an audit or lock of the bare network used inside a LightningModule."""
    params = dict(model.named_parameters())
    if all(n in params for n in names):
        return ""
    prefixes = [m for m, _ in model.named_modules() if m and all(f"{m}.{n}" in params for n in names)]
    if len(prefixes) != 1:
        missing = next(n for n in names if n not in params)
        why = "several submodules match" if prefixes else f"{missing!r} is not a parameter of it"
        raise ConfigError(f"TEXPScheduler.bind: the SI names do not fit this model ({why}); audit this model again")
    return prefixes[0] + "."


def unwrapped(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel-style wrapper (its `.module`), else `model` itself."""
    inner = getattr(model, "module", model)
    return inner if isinstance(inner, nn.Module) else model


def si_names(model: nn.Module, si: Any, lock: str | None,
             example_inputs: Any) -> tuple[list[str], list[tuple[str, ...]], Any]:
    """(SI names, joint groups, the lock or None), as audited or recorded for `model` or its sub-network."""
    if lock is not None:
        from explr.lock import read_lock

        recorded = read_lock(lock)
        return list(recorded.si), [tuple(g) for g in recorded.groups if len(g) > 1], recorded
    if si == AUDIT:
        if example_inputs is None:
            raise ConfigError("TEXPScheduler.bind: `si: audit` needs example inputs (a training batch) to audit "
                              "the model; pass example_inputs, or convert with --model/--lock")
        from explr.audit.api import audit

        report = audit(model, example_inputs if isinstance(example_inputs, tuple) else (example_inputs,))
        return list(report.si_names), [tuple(g.members) for g in report.groups if len(g.members) > 1], None
    names = _names(si)
    if names is None:
        raise ConfigError(f"TEXPScheduler: si must be a list of parameter names or {AUDIT!r}, not {si!r}")
    return names, [], None


def bind_si_groups(optimizer: torch.optim.Optimizer, model: nn.Module, si: Any = AUDIT, lock: str | None = None,
                   example_inputs: Any = None, restored: bool = False) -> None:
    """Split every param group of a framework-built optimizer into its SI part (weight decay 0, tagged for
    explr.TEXP, the original decay kept) and the rest (untouched). Before the first step — or, `restored`,
    after a checkpoint re-split the groups: then check the split is this model's."""
    if any(optimizer.state.values()) and not restored:
        raise ConfigError("TEXPScheduler.bind: the optimizer already stepped; bind before the first step")
    names, joint, recorded = si_names(model, si, lock, example_inputs)
    prefix = _prefix_for(model, names + [m for group in joint for m in group])
    if recorded is not None:  # a stale lock must not mark parameters SI: its structure has to match
        recorded.check_model(model.get_submodule(prefix[:-1]) if prefix else model)
    joint = [tuple(prefix + m for m in group) for group in joint]
    name_of = _names_of_held(optimizer, model)
    wd = {name_of[id(p)]: float(g.get(ORIGINAL_WD, g.get("weight_decay", 0.0)))
          for g in optimizer.param_groups for p in g["params"]}
    si_set = drop_mixed_joint_groups({prefix + n for n in names} & set(wd), joint, wd)
    if restored:
        _check_restored_split(optimizer, name_of, si_set)
    else:
        _split_groups(optimizer, name_of, si_set)


def _names_of_held(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[int, str]:
    name_of = {id(p): n for n, p in model.named_parameters()}
    strangers = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in name_of]
    if strangers:
        raise ConfigError(f"TEXPScheduler.bind: {len(strangers)} optimizer parameter(s) are not in the bound model;"
                          " bind the module whose parameters the optimizer was built from")
    return name_of


def _check_restored_split(optimizer: torch.optim.Optimizer, name_of: dict[int, str], si: set[str]) -> None:
    restored = {name_of[id(p)] for g in optimizer.param_groups if g.get(SI_TAG) for p in g["params"]}
    if restored != si:
        differ = sorted(restored ^ si)
        raise ConfigError(f"TEXPScheduler: the checkpoint trained {len(restored)} parameters as SI, this model's "
                          f"SI set has {len(si)} (e.g. {differ[0]!r} differs); resume with the model and SI "
                          "set the checkpoint was made with")


def _split_groups(optimizer: torch.optim.Optimizer, name_of: dict[int, str], si: set[str]) -> None:
    groups, position = [], 0
    for group in optimizer.param_groups:
        parts: dict[bool, list] = {True: [], False: []}
        for p in group["params"]:
            parts[name_of[id(p)] in si].append((position, p))
            position += 1
        rest = {k: v for k, v in group.items() if k not in ("params", "param_names")}
        if parts[True]:
            groups.append({**rest, "params": [p for _, p in parts[True]], "weight_decay": 0.0, SI_TAG: True,
                           ORIGINAL_WD: float(group.get("weight_decay", 0.0)), MEMBERS: [i for i, _ in parts[True]]})
        if parts[False]:
            groups.append({**rest, "params": [p for _, p in parts[False]], SI_TAG: False,
                           MEMBERS: [i for i, _ in parts[False]]})
    optimizer.param_groups[:] = groups


class TEXPScheduler(LRScheduler):
    """Exact TEXP for a framework-built optimizer. `si`: parameter names or "audit"; or `lock`: a lock file."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: dict, si: Any = AUDIT, lock: str | None = None,
                 approximate: bool = False, last_epoch: int = -1):
        self.schedule = schedule_from_args(schedule)
        lrs = {float(g["lr"]) for g in optimizer.param_groups}
        if lrs != {self.schedule.base_lr}:
            raise ConfigError(f"TEXPScheduler: the optimizer's lr {sorted(lrs)} differs from the converted schedule's "
                              f"base_lr {self.schedule.base_lr}; run `explr convert` again after changing the LR")
        self.si, self.lock, self.approximate = si, lock, approximate
        self.texp: TEXP | None = None
        self._restored_split = False  # groups re-split from a checkpoint before bind (framework resume)
        self._pending_state: dict | None = None  # TEXP state loaded before bind
        self.carry_skips = True  # False: another caller (ExplrCallback) moves the LR over AMP-skipped steps
        self._due = 0  # the original run's LR index at the last step() call
        setattr(optimizer, SCHEDULER_ATTR, self)  # how the Lightning callback and detectron2's hook find it
        self._guard = optimizer.register_step_pre_hook(self._refuse_unbound)
        optimizer.register_load_state_dict_pre_hook(self._split_like_checkpoint)
        super().__init__(optimizer, last_epoch)

    @property
    def bound(self) -> bool:
        return self.texp is not None

    def _refuse_unbound(self, *_: Any) -> None:
        if self.texp is None:
            raise ConfigError("TEXPScheduler: optimizer.step() before bind(model): add explr.integrations.lightning."
                              "ExplrCallback to the trainer callbacks, or call scheduler.bind(model, example_inputs)")

    def bind(self, model: nn.Module, example_inputs: Any = None) -> TEXP:
        """Split the param groups into SI (weight decay 0) and the rest, and start TEXP. Once, before step 1
        (or after a framework restored a converted checkpoint: then the split must be the one it recorded).
        Returns the running TEXP (the one already running when bound before)."""
        if self.texp is not None:
            return self.texp
        bind_si_groups(self.optimizer, model, self.si, self.lock, example_inputs, restored=self._restored_split)
        texp = self.texp = TEXP(self.optimizer, self.schedule, approximate=self.approximate)
        if self._pending_state is not None:
            self._load(texp, self._pending_state)
            self._pending_state = None
        self.optimizer.register_step_post_hook(lambda *_: texp.step())
        self._last_lr = texp.get_last_lr()
        return texp

    def _split_like_checkpoint(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """Before a framework loads a converted checkpoint into the still unsplit optimizer (Lightning restores
        optimizers before the first batch binds): split the groups as the checkpoint records, so it fits."""
        saved = state.get("param_groups", [])
        if self.bound or not saved or not all(MEMBERS in g for g in saved):
            return
        held = [p for g in optimizer.param_groups for p in g["params"]]
        members = sorted(i for g in saved for i in g[MEMBERS])
        if members != list(range(len(held))) or any(len(g[MEMBERS]) != len(g["params"]) for g in saved):
            raise ConfigError(f"TEXPScheduler: the checkpoint's optimizer holds {len(members)} parameters, this one "
                              f"{len(held)}: it is a checkpoint of a different model; resume with the model it was "
                              "saved from")
        optimizer.param_groups[:] = [{**{k: v for k, v in g.items() if k != "params"},
                                      "params": [held[i] for i in g[MEMBERS]]} for g in saved]
        self._restored_split = True

    # ---- LRScheduler interface: the LR moves per optimizer step (hook), not when the framework calls step()
    def get_lr(self) -> list[float | torch.Tensor]:  # LRScheduler's type; these are floats
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """Called where the original run stepped its scheduler (every `step_every` iterations): the original's LR
        index moved that far, over optimizer steps the GradScaler skipped too; TEXP catches up with it."""
        if self.texp is not None and self.carry_skips:
            self._due += self.schedule.step_every
            self.texp.catch_up(self._due, most=self.schedule.step_every)
        self._last_lr = self.get_lr()

    def state_dict(self) -> dict:
        return {"texp": self.texp.state_dict() if self.texp else None, "due": self._due}

    def _load(self, texp: TEXP, state_dict: dict) -> None:
        texp.load_state_dict(state_dict["texp"])
        self._due = int(state_dict.get("due", texp.last_epoch))

    def load_state_dict(self, state_dict: dict) -> None:
        """Before bind (a framework restoring a checkpoint), the state waits for bind; after, it applies now."""
        if state_dict.get("texp") is None:
            return
        if self.texp is None:
            self._pending_state = state_dict
        else:
            self._load(self.texp, state_dict)
