"""The converted mmengine config: inherit the original, override optim_wrapper and param_scheduler.

    _base_ = ['./faster-rcnn_r50_fpn_1x_coco.py']
    custom_imports = dict(imports=['explr.integrations.mmengine'], allow_failed_imports=False)
    optim_wrapper = dict(constructor='ExplrOptimWrapperConstructor', explr=dict(lock='model.explr.lock'))
    param_scheduler = [dict(type='ExplrTEXPScheduler', by_epoch=False, schedule=dict(base_lr=0.02, ...))]

mmengine merges `optim_wrapper` into the inherited dict (optimizer, paramwise_cfg and clip_grad stay)
and replaces the `param_scheduler` list. explr's classes live in explr/integrations/mmengine.py.
"""
from __future__ import annotations

import pathlib
from typing import Any

from explr.configs.framework_write import si_settings
from explr.configs.mmengine import CONSTRUCTOR, INTEGRATION, SCHEDULER, auto_scale_note, load_config
from explr.configs.write import base_path
from explr.lr_schedule import schedule_args


def python_literal(value: Any) -> str:
    """`value` as Python source: dicts as dict(k=v), the rest by repr (floats round-trip exactly)."""
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={python_literal(v)}" for k, v in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    return repr(value)


def _schedulers(cfg: Any) -> list:
    schedulers = cfg.get("param_scheduler") or []
    return [schedulers] if isinstance(schedulers, dict) else list(schedulers)


def converted_config(converted, output: pathlib.Path | None) -> tuple[str, list[str]]:
    """The text of the converted config and the notes for the user."""
    cfg = load_config(converted.source.path)
    imports = list((cfg.get("custom_imports") or {}).get("imports", []))
    schedule = {"type": SCHEDULER, "by_epoch": False, "schedule": schedule_args(converted.plan.lr)}
    if not converted.exact:
        schedule["approximate"] = True
    if any("eta_min_ratio" in spec for spec in _schedulers(cfg)):  # a floor relative to each group's LR
        schedule["scale_eta_min"] = True
    verdict = "exact" if converted.exact else "approximate: " + "; ".join(converted.not_exact_because)
    lines = [
        f"# Converted by explr from {converted.source.path.name}: weight decay + LR schedule -> TEXP ({verdict}).",
        "# Train with your usual command on this file, e.g. python tools/train.py THIS_FILE",
        f"_base_ = [{base_path(converted.source.path, output)!r}]",
        f"custom_imports = {python_literal({'imports': imports + [INTEGRATION], 'allow_failed_imports': False})}",
        f"optim_wrapper = {python_literal({'constructor': CONSTRUCTOR, 'explr': si_settings(converted)})}",
        f"param_scheduler = [{python_literal(schedule)}]",
    ]
    notes = [f"run it with your usual tools/train.py: it inherits {converted.source.path.name} and imports "
             f"{INTEGRATION} (pip install explr on the training machine)"]
    if output is None:
        notes.append(f"save it next to {converted.source.path.name}: _base_ points there")
    scale = auto_scale_note(cfg, converted.plan.lr.base_lr)
    if scale:
        notes.append(scale)
    return "\n".join(lines) + "\n", notes
