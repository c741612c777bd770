"""Converted configs in the idiom of frameworks whose own code builds the optimizer.

Each keeps the framework's config and adds one explr node that explr's integration for that framework
reads (which parameters are SI, and whether the run is approximate); the schedule itself stays in the
framework's own keys, read again at train time by the same explr reader that converted it:
- detectron2: a YAML with `_BASE_` = the original and an `EXPLR:` node; the trainer mixes in
  explr.integrations.detectron2.ExplrTrainerMixin, and `add_explr_config(cfg)` declares the node;
- timm: the args.yaml with one more key, `explr:` (train.py's `parser.set_defaults(**cfg)` takes it);
- pycls: the YAML with an `EXPLR:` node (`add_explr_config(cfg)` declares it before load_cfg).
"""
from __future__ import annotations

import pathlib

from explr.configs.rewrite import Rewriter, render
from explr.configs.write import base_path
from explr.errors import ConfigError


def si_settings(converted) -> dict:
    """{"lock": PATH} or {"si": [names]}, plus approximate=True when the conversion is not exact."""
    si = converted.si
    if si.how == "audit-at-start":
        raise ConfigError(f"{converted.source.path}: the {converted.detected.name} output must know the "
                          "scale-invariant parameters before training: pass --lock FILE (from `explr audit --lock`) "
                          "or --model SPEC")
    settings: dict = {"lock": si.lock} if si.how == "lock" else {"si": list(si.names or ())}
    if not converted.exact:
        settings["approximate"] = True
    return settings


def yacs_node(converted) -> dict:
    """The EXPLR node of a yacs config (detectron2, pycls): upper-case keys, as add_explr_config declares them."""
    settings = si_settings(converted)
    node = {"LOCK": settings["lock"]} if "lock" in settings else {"PARAMS": settings["si"]}
    node["APPROXIMATE"] = bool(settings.get("approximate", False))
    return node


def _header(converted, use: str) -> list[str]:
    verdict = "exact" if converted.exact else "approximate: " + "; ".join(converted.not_exact_because)
    return [f"# Converted by explr from {converted.source.path.name}: weight decay + LR schedule -> TEXP ({verdict}).",
            f"# {use}"]


D2_USE = ("in your train_net.py: class Trainer(ExplrTrainerMixin, DefaultTrainer) and add_explr_config(cfg) "
          "before cfg.merge_from_file (from explr.integrations.detectron2)")
TIMM_USE = ("in timm's train.py: optimizer = explr.integrations.timm.create_optimizer(model, args) and "
            "lr_scheduler, num_epochs = explr.integrations.timm.create_scheduler(optimizer, args, updates_per_epoch)")
PYCLS_USE = ("explr.integrations.pycls.add_explr_config(cfg) before config.load_cfg, and "
             "optimizer = explr.integrations.pycls.construct_optimizer(model) instead of optim.construct_optimizer")


def detectron2_config(converted, output: pathlib.Path | None) -> tuple[str, list[str]]:
    lines = _header(converted, D2_USE)
    lines.append(f"_BASE_: {base_path(converted.source.path, output)}")
    lines += render({"EXPLR": yacs_node(converted)}, 0)
    notes = [D2_USE]
    if output is None:
        notes.append(f"save it next to {converted.source.path.name}: _BASE_ points there")
    return "\n".join(lines) + "\n", notes


def _with_key(converted, key: str, value: dict, use: str) -> tuple[str, list[str]]:
    source = converted.source
    if key in source.data:
        raise ConfigError(f"{source.where((key,))}: this config is already converted (it has `{key}`); "
                          "convert the original")
    rewriter = Rewriter(source)
    rewriter.add_key((), key, value)
    return rewriter.text(), [use]


def timm_config(converted, output: pathlib.Path | None) -> tuple[str, list[str]]:
    return _with_key(converted, "explr", si_settings(converted), TIMM_USE)


def pycls_config(converted, output: pathlib.Path | None) -> tuple[str, list[str]]:
    return _with_key(converted, "EXPLR", yacs_node(converted), PYCLS_USE)
