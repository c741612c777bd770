"""The ONE table of config formats, and format detection.

Each row names a format, the module that defines its adapter (a module-level `ADAPTER`
implementing `explr.configs.adapter.FormatAdapter`), what detection looks for (shown to the user
when nothing matches), and how `explr convert` writes the result:

- "rewrite": the adapter also has `rewrite(source, converted) -> str` and the converted config is
  written back in the same format (explr, Lightning CLI, Hydra);
- "inherit": a new config that inherits the user's file (mmengine `_base_`, detectron2 `_BASE_`) and
  adds what explr's framework integration reads; `--in-place` writes it next to the input;
- "plan": the explr-native plan next to the config, generically (`configs/convert.py`), for a
  framework with no explr integration yet.
A row's `writer` ("module:function") writes the converted config when the adapter has no `rewrite`:
the framework-idiomatic outputs (configs/framework_write.py) are written that way.

Rows are tried in order, most specific first; the first adapter whose `detect` gives a reason wins.
Modules are imported lazily so a broken or heavy adapter never slows down `import explr`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from explr.configs.source import ConfigSource
from explr.errors import ConfigError


@dataclass(frozen=True, slots=True)
class FormatEntry:
    name: str
    module: str  # defines ADAPTER
    looks_for: str  # human description of what detect() checks
    writes: str  # "rewrite" | "inherit" | "plan"
    writer: str | None = None  # "module:function" (converted, output path) -> (text, notes); else adapter.rewrite

    def adapter(self):
        return importlib.import_module(self.module).ADAPTER

    def write(self, converted, path):
        """The converted config text and notes: the row's writer, or the adapter's own `rewrite`."""
        if self.writer is None:
            return self.adapter().rewrite(converted)
        module, _, function = self.writer.partition(":")
        return getattr(importlib.import_module(module), function)(converted, path)


FORMATS: tuple[FormatEntry, ...] = (
    FormatEntry("explr", "explr.configs.explr_format", "a top-level `explr: 1` version key", "rewrite"),
    FormatEntry("lightning", "explr.configs.lightning",
                "`optimizer`/`lr_scheduler` with `class_path` (+ `init_args`), or `trainer` with `model`/`data`",
                "rewrite"),
    FormatEntry("hydra", "explr.configs.hydra", "`_target_` naming a torch.optim optimizer or LR scheduler", "rewrite"),
    # Frameworks whose own code builds the optimizer: their idiomatic output is written by `writer`.
    FormatEntry("detectron2", "explr.configs.detectron2", "`SOLVER.BASE_LR`/`SOLVER.STEPS`/`SOLVER.MAX_ITER`, or `_BASE_`",
                "inherit", "explr.configs.framework_write:detectron2_config"),
    FormatEntry("pycls", "explr.configs.pycls", "`OPTIM.BASE_LR`/`OPTIM.LR_POLICY`/`OPTIM.MAX_EPOCH`", "rewrite",
                "explr.configs.framework_write:pycls_config"),
    FormatEntry("timm", "explr.configs.timm", "top-level `opt` and `sched` (timm train.py arguments)", "rewrite",
                "explr.configs.framework_write:timm_config"),
    FormatEntry("mmengine", "explr.configs.mmengine", "a Python config (.py) read by mmengine's Config.fromfile",
                "inherit", "explr.configs.mmengine_write:converted_config"),
)


@dataclass(frozen=True, slots=True)
class Detected:
    entry: FormatEntry
    reason: str

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def adapter(self):
        return self.entry.adapter()


def format_names() -> list[str]:
    return [entry.name for entry in FORMATS]


def entry_for(name: str) -> FormatEntry:
    for entry in FORMATS:
        if entry.name == name.lower():
            return entry
    raise ConfigError(f"--format {name!r} is not a known format; use one of: {', '.join(format_names())}")


def detect(source: ConfigSource, forced: str | None = None) -> Detected:
    """The format of `source` with the reason it was picked; `forced` (--format) overrides detection."""
    if forced:
        return Detected(entry_for(forced), f"--format {forced.lower()} was given")
    for entry in FORMATS:
        reason = entry.adapter().detect(source)
        if reason:
            return Detected(entry, reason)
    looked_for = "; ".join(f"{entry.name}: {entry.looks_for}" for entry in FORMATS)
    raise ConfigError(f"{source.path}: unrecognised config format (looked for {looked_for}); "
                      f"pass --format {{{','.join(format_names())}}}")
