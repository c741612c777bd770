"""`explr.param_groups`: optimizer param groups that put the scale-invariant (SI) parameters on TEXP.

SI parameters get weight decay 0 and the tag `explr_si=True`; their original weight decay is kept
in `explr_weight_decay` for the phantom scalar (docs/theory.md §3). Every other parameter keeps the
original policy, including a no-decay group for norm/bias parameters when the setup has one.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any

from torch import nn

from explr.audit_report import AuditReport
from explr.errors import ConfigError, ExplrError
from explr.plan import DecayPolicy

SI_TAG = "explr_si"
ORIGINAL_WD = "explr_weight_decay"
# The module classes whose parameters are "norm" parameters, as each framework's optimizer code decides it
# (isinstance, so subclasses count).
NORM_LAYERS: dict[str, tuple[type, ...]] = {
    # every torch normalization layer with parameters (torch, Lightning, Hydra, explr's own format)
    "torch": tuple(t for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                               getattr(nn, "RMSNorm", None)) if t is not None),
    # detectron2/solver/build.py get_default_optimizer_params `norm_module_types`: its NaiveSyncBatchNorm
    # subclasses BatchNorm2d and counts; its own channels-first detectron2.layers.LayerNorm (get_norm("LN"),
    # ConvNeXt/ViTDet), CycleBatchNormList's shared affine and torch's RMSNorm do not, and keep WEIGHT_DECAY
    "detectron2": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm1d,
                   nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm),
}


def _si_names_and_joint_groups(model: nn.Module, si: Any) -> tuple[list[str], list[tuple[str, ...]]]:
    """Resolve `si` (AuditReport, lock-file path or parameter names) to names + known joint groups."""
    if isinstance(si, AuditReport):
        return si.si_names, [g.members for g in si.groups if len(g.members) > 1]
    if isinstance(si, (str, os.PathLike)):
        from explr.lock import read_lock  # lazy: the lock module is only needed for this input

        lock = read_lock(os.fspath(si))
        lock.check_model(model)  # raises ExplrError when the model changed since the lock was written
        return list(lock.si), [tuple(g) for g in getattr(lock, "groups", ()) if len(g) > 1]
    if isinstance(si, Iterable):
        names = list(si)
        if not all(isinstance(n, str) for n in names):
            raise ConfigError("param_groups: `si` must be an AuditReport, a lock file path or parameter names (str)")
        return names, []
    raise ConfigError(f"param_groups: `si` of type {type(si).__name__} is not an AuditReport, lock path or names")


def param_kinds(model: nn.Module, norm_layers: str = "torch") -> dict[str, str]:
    """'norm' for affine parameters of normalization layers (NORM_LAYERS[norm_layers]), 'bias' for other biases,
    else 'other'."""
    if norm_layers not in NORM_LAYERS:
        raise ConfigError(f"param_groups: norm_layers={norm_layers!r} is not one of {', '.join(NORM_LAYERS)}")
    kinds = {}
    for module_name, module in model.named_modules():
        for local, _ in module.named_parameters(recurse=False):
            name = f"{module_name}.{local}" if module_name else local
            is_norm = isinstance(module, NORM_LAYERS[norm_layers])
            kinds[name] = "norm" if is_norm else "bias" if local == "bias" else "other"
    return kinds


def _policy(weight_decay: float, no_decay_norm_bias: bool | DecayPolicy) -> DecayPolicy:
    if isinstance(no_decay_norm_bias, DecayPolicy):
        return no_decay_norm_bias
    if weight_decay < 0:
        raise ValueError(f"weight_decay={weight_decay!r} must be >= 0")
    return DecayPolicy(weight_decay, 0.0, 0.0) if no_decay_norm_bias else DecayPolicy(weight_decay)


def drop_mixed_joint_groups(si: set[str], joint: list[tuple[str, ...]], wd: dict[str, float]) -> set[str]:
    """A joint SI group is only invariant when scaled as a whole: members with different original
    weight decay would be scaled differently by their phantoms, so such a group stays on the original policy."""
    for members in joint:
        if len({wd[m] for m in members}) > 1:
            warnings.warn(f"explr.param_groups: jointly scale-invariant {list(members)} have different weight decay "
                          f"({sorted({wd[m] for m in members})}); they keep the original schedule", stacklevel=3)
            si -= set(members)
    return si


def _assert_partition(model: nn.Module, groups: list[dict]) -> None:
    seen = [id(p) for g in groups for p in g["params"]]
    expected = {id(p) for p in model.parameters()}
    assert len(seen) == len(set(seen)) and set(seen) == expected, "explr.param_groups: groups must partition the model"


def param_groups(model: nn.Module, si: Any, weight_decay: float = 0.0,
                 no_decay_norm_bias: bool | DecayPolicy = False, **defaults: Any) -> list[dict]:
    """Param groups for torch.optim.SGD: SI parameters (weight decay 0, tagged) and the rest (original policy).

    `si`: an AuditReport, a lock-file path, or an iterable of parameter names (taken as given: the
    caller asserts they are scale-invariant). `no_decay_norm_bias`: True for a weight-decay-0 group
    of norm/bias parameters, or a DecayPolicy. `defaults` (lr, momentum, ...) go into every group.
    """
    names, joint = _si_names_and_joint_groups(model, si)
    params = dict(model.named_parameters())
    unknown = sorted(set(names) - set(params))
    if unknown:
        raise ExplrError(f"param_groups: {len(unknown)} SI name(s) are not parameters of the model: "
                         f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} (audit this model again)")
    policy = _policy(weight_decay, no_decay_norm_bias)
    kinds = param_kinds(model, policy.norm_layers)
    wd = {n: policy.for_kind(kinds.get(n, "other")) for n in params}
    si_set = drop_mixed_joint_groups(set(names), joint, wd)
    buckets: dict[tuple[bool, float], list[str]] = {}
    for name in params:
        buckets.setdefault((name in si_set, wd[name]), []).append(name)
    groups = [_group(params, members, is_si, decay, defaults) for (is_si, decay), members in buckets.items()]
    _assert_partition(model, groups)
    return groups


def _group(params: dict, members: list[str], is_si: bool, decay: float, defaults: dict) -> dict:
    group = {**defaults, "params": [params[n] for n in members], "param_names": members, SI_TAG: is_si}
    if is_si:
        group.update({"weight_decay": 0.0, ORIGINAL_WD: decay})
    else:
        group["weight_decay"] = decay
    return group


_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def _unwrapped_name(name: str) -> str:
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def rebind(groups: list[dict], wrapped: nn.Module) -> list[dict]:
    """The same groups on the parameters of a wrapped model, matched by name.

    For FSDP with use_orig_params=True (and torch.compile): build the groups on the plain model,
    wrap it, then `rebind(groups, wrapped)` before creating the optimizer.
    """
    by_name = {_unwrapped_name(n): p for n, p in wrapped.named_parameters()}
    missing = [n for g in groups for n in g["param_names"] if n not in by_name]
    if missing:
        raise ExplrError(f"rebind: {len(missing)} parameter(s) not found in the wrapped model, e.g. {missing[0]}; "
                         "wrap FSDP with use_orig_params=True")
    return [{**g, "params": [by_name[n] for n in g["param_names"]]} for g in groups]
