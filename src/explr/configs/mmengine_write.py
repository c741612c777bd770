"""The converted mmengine config: inherit the original, override optim_wrapper and param_scheduler.

    _base_ = ['./faster-rcnn_r50_fpn_1x_coco.py']
    custom_imports = dict(imports=['explr.integrations.mmengine'], allow_failed_imports=False)
    optim_wrapper = dict(constructor='ExplrOptimWrapperConstructor', explr=dict(lock='model.explr.lock'))
    param_scheduler = [dict(type='ExplrTEXPScheduler', by_epoch=True, convert_to_iter_based=True,
                            iters_per_epoch=7330, schedule=dict(base_lr=0.02, ...))]

mmengine merges `optim_wrapper` into the inherited dict (optimizer, paramwise_cfg and clip_grad stay)
and replaces the `param_scheduler` list. explr's classes live in explr/integrations/mmengine.py.
"""
from __future__ import annotations

import pathlib
from typing import Any

from explr.configs.framework_write import si_settings
from explr.configs.mmengine import (
    CONSTRUCTOR,
    INTEGRATION,
    LOOPS,
    SCHEDULER,
    auto_scale_note,
    load_config,
    loop_type,
    named,
)
from explr.configs.mmengine_schedule import kept_schedulers
from explr.configs.write import base_path
from explr.errors import ConfigError
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


def kept_text(cfg: Any) -> str:
    """The original's momentum schedulers (an adaptive optimizer's beta1), written before TEXP: they run unchanged."""
    return "".join(f"{python_literal(dict(named(spec)))}, " for spec in kept_schedulers(_schedulers(cfg)))


def scheduler_spec(converted, cfg: Any, scheduler: Any) -> dict:
    schedule = {"type": scheduler, "by_epoch": False, "schedule": schedule_args(converted.plan.lr)}
    if not converted.exact:
        schedule["approximate"] = True
    if any("eta_min_ratio" in spec for spec in _schedulers(cfg)):  # a floor relative to each group's LR
        schedule["scale_eta_min"] = True
    if LOOPS.get(loop_type(named(cfg.get("train_cfg")))):
        # Epochs became iterations at convert time. mmengine hands a scheduler the dataloader's length only
        # on its convert_to_iter_based path, so the scheduler asks for it there and checks it (it still
        # steps every iteration).
        schedule.update(by_epoch=True, convert_to_iter_based=True, iters_per_epoch=converted.plan.iters_per_epoch)
    return schedule


def base_module(source: pathlib.Path, output: pathlib.Path | None) -> str:
    """`source` as the relative module a pure-Python config imports in `with read_base():` (".orig")."""
    parts = base_path(source, output).removesuffix(".py").split("/")
    ups = sum(part == ".." for part in parts)
    names = [part for part in parts if part not in ("..", ".")]
    if not all(name.isidentifier() for name in names):
        raise ConfigError(f"{source}: a pure-Python (lazy import) config is imported by module name, and "
                          f"{'/'.join(names)} is not one; rename it or write the output next to it")
    return "." * (ups + 1) + ".".join(names)


def _header(converted) -> list[str]:
    verdict = "exact" if converted.exact else "approximate: " + "; ".join(converted.not_exact_because)
    return [f"# Converted by explr from {converted.source.path.name}: weight decay + LR schedule -> TEXP ({verdict}).",
            "# Train with your usual command on this file, e.g. python tools/train.py THIS_FILE"]


def lazy_import_text(converted, output: pathlib.Path | None, cfg: Any) -> list[str]:
    """mmengine's pure-Python style: `with read_base()` imports the original, classes instead of names."""
    spec = python_literal(scheduler_spec(converted, cfg, SCHEDULER)).replace(f"type={SCHEDULER!r}", f"type={SCHEDULER}")
    return [*_header(converted), "from mmengine.config import read_base", "", "with read_base():",
            f"    from {base_module(converted.source.path, output)} import *", "",
            f"from {INTEGRATION} import {CONSTRUCTOR}, {SCHEDULER}", "",
            f"optim_wrapper.update(explr={python_literal(si_settings(converted))}, constructor={CONSTRUCTOR})",
            f"param_scheduler = [{kept_text(cfg)}{spec}]"]


def inheriting_text(converted, output: pathlib.Path | None, cfg: Any) -> list[str]:
    """mmengine's classic style: `_base_` inheritance, registry names, custom_imports."""
    imports = list((cfg.get("custom_imports") or {}).get("imports", []))
    return [*_header(converted), f"_base_ = [{base_path(converted.source.path, output)!r}]",
            f"custom_imports = {python_literal({'imports': imports + [INTEGRATION], 'allow_failed_imports': False})}",
            f"optim_wrapper = {python_literal({'constructor': CONSTRUCTOR, 'explr': si_settings(converted)})}",
            f"param_scheduler = [{kept_text(cfg)}{python_literal(scheduler_spec(converted, cfg, SCHEDULER))}]"]


def converted_config(converted, output: pathlib.Path | None) -> tuple[str, list[str]]:
    """The text of the converted config and the notes for the user."""
    from mmengine.config import Config

    cfg = load_config(converted.source.path)
    lazy = Config._is_lazy_import(str(converted.source.path))  # mmengine's own test of the style
    lines = (lazy_import_text if lazy else inheriting_text)(converted, output, cfg)
    notes = [f"run it with your usual tools/train.py: it inherits {converted.source.path.name} and imports "
             f"{INTEGRATION} (explr must be installed where you train)"]
    if output is None:
        notes.append(f"save it next to {converted.source.path.name}: it imports that file by relative path")
    scale = auto_scale_note(cfg, converted.plan.lr.base_lr)
    if scale:
        notes.append(scale)
    return "\n".join(lines) + "\n", notes
