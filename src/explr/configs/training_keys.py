"""Trainer/data facts that Lightning-style configs share: batch size, dataset, devices, clipping.

Used by the Lightning CLI and Hydra adapters (Hydra configs usually instantiate a Lightning Trainer),
each giving the key paths of its `trainer` and `data` mappings.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from explr.configs.adapter import DATASET_SIZES, ReadOptions, iters_per_epoch
from explr.configs.source import ConfigSource, KeyPath
from explr.errors import ConfigError

_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(slots=True)
class TrainerFacts:
    source: ConfigSource
    iters_per_epoch: int = 0
    paths: dict[str, KeyPath] = field(default_factory=dict)  # fact name -> key path it was read from

    def number(self, keypath: KeyPath, kind: type, default: Any) -> Any:
        value = self.source.get(keypath)
        if value is None:
            return default
        if kind is str and isinstance(value, (int, str)):
            value = str(value)
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"{self.source.where(keypath)}: {'.'.join(map(str, keypath))}={value!r} must be "
                              f"{_KINDS[kind]}")
        self.paths[str(keypath[-1])] = keypath
        return value

    def clip_norm(self, trainer: KeyPath) -> float | None:
        """Lightning's gradient_clip_val (algorithm "norm" by default; "value" clipping is reported the same way)."""
        value = self.number(trainer + ("gradient_clip_val",), float, None)
        self.paths.pop("gradient_clip_val", None)
        if not value:
            return None
        self.paths["grad_clip_norm"] = trainer + ("gradient_clip_val",)  # the TrainingPlan field's name
        return value


_CLIP_KEY = re.compile(r"clip_grad|grad_clip|gradient_clip|max_grad_norm|clip_norm", re.IGNORECASE)


def clipping_switch(source: ConfigSource, trainer: KeyPath) -> KeyPath | None:
    """Key path of a project's own gradient-clipping switch that is on (`train.clip_grad_norm: true`, a positive
    `max_grad_norm`), outside the Lightning trainer's gradient_clip_val; conservative: any such key counts."""
    def walk(node: Any, path: KeyPath) -> KeyPath | None:
        for key, child in (node.items() if isinstance(node, dict) else ()):
            here = path + (key,)
            if here == trainer + ("gradient_clip_val",):
                continue
            on = child is True or isinstance(child, (int, float)) and not isinstance(child, bool) and child > 0
            if _CLIP_KEY.search(str(key)) and on:
                return here
            found = walk(child, here)
            if found:
                return found
        return None
    return walk(source.data, ())


def averaging_path(nodes: list[tuple[KeyPath, Any]]) -> KeyPath | None:
    """Key path of the first weight-averaging class among (path, class name) pairs."""
    return next((path for path, name in nodes if averages_weights(name)), None)


def averages_weights(class_path: Any) -> bool:
    """A weight-averaging callback (EMA, SWA, Lightning's WeightAveraging): not exact after conversion."""
    name = str(class_path or "").rsplit(".", 1)[-1]
    return "EMA" in name or "Averaging" in name or name.startswith("SWA")


def _dataset_from_hint(hint: Any) -> str | None:
    """A well-known dataset named in a datamodule class path ("...CIFAR10DataModule" -> "cifar10")."""
    if not isinstance(hint, str):
        return None
    flat = re.sub(r"[^a-z0-9]", "", hint.lower())
    names = sorted((n for n in DATASET_SIZES if re.sub(r"[^a-z0-9]", "", n) in flat), key=len, reverse=True)
    return names[0] if names else None


def _devices(facts: TrainerFacts, trainer: KeyPath, options: ReadOptions) -> int | None:
    raw = facts.source.get(trainer + ("devices",))
    if options.num_devices or raw is None:
        return None
    count = len(raw) if isinstance(raw, list) else raw if isinstance(raw, int) and raw > 0 else None
    if count is None:
        raise ConfigError(f"{facts.source.where(trainer + ('devices',))}: devices={raw!r} does not say how many "
                          "devices share each epoch; pass --num-devices N (or --iters-per-epoch N)")
    facts.paths["devices"] = trainer + ("devices",)
    return count * facts.number(trainer + ("num_nodes",), int, 1)


def training_facts(source: ConfigSource, options: ReadOptions, *, trainer: KeyPath, data: KeyPath,
                   dataset_hint: Any = None) -> TrainerFacts:
    """Iterations per epoch (batches per epoch) from flags or the config's trainer/data keys."""
    facts = TrainerFacts(source)
    if options.iters_per_epoch is not None:
        facts.iters_per_epoch = iters_per_epoch(source, options, batch_size=None)
        return facts
    batch = facts.number(data + ("batch_size",), int, None)
    dataset = facts.number(data + ("dataset",), str, None) or _dataset_from_hint(dataset_hint)
    batches = iters_per_epoch(
        source, options, batch_size=batch, dataset=dataset, num_devices=_devices(facts, trainer, options),
        drop_last=facts.number(data + ("drop_last",), bool, None))
    # Lightning makes one optimizer step per k batches, and one more for a remainder at the epoch end.
    accumulate = facts.number(trainer + ("accumulate_grad_batches",), int, 1)
    facts.iters_per_epoch = math.ceil(batches / max(accumulate, 1))
    return facts
