"""The contract every config format implements, and the facts shared by all of them.

One adapter module per format (explr, lightning, hydra, timm, detectron2, pycls, mmengine); the table of
adapters lives in `configs/formats.py`. Detection returns a human reason ("has SOLVER.BASE_LR")
so the CLI can say which format it picked and why.
"""
from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from explr.configs.source import ConfigSource, KeyPath
from explr.errors import ConfigError
from explr.findings import Location
from explr.lr_schedule import LRSchedule
from explr.plan import TrainingPlan

# Training-set sizes of well-known datasets (train split), keyed by lower-case name.
DATASET_SIZES = {
    "cifar10": 50_000, "cifar-10": 50_000, "cifar100": 50_000, "cifar-100": 50_000,
    "imagenet": 1_281_167, "imagenet-1k": 1_281_167, "imagenet1k": 1_281_167, "ilsvrc2012": 1_281_167,
    "mnist": 60_000, "fashion-mnist": 60_000, "fashionmnist": 60_000, "svhn": 73_257,
    "stl10": 5_000, "tiny-imagenet": 100_000, "coco": 118_287, "coco_2017_train": 118_287,
}


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Facts the user can give on the command line when the config does not hold them."""

    iters_per_epoch: int | None = None
    dataset: str | None = None
    dataset_size: int | None = None
    batch_size: int | None = None  # per device
    num_devices: int | None = None
    drop_last: bool | None = None
    scheduler_interval: str | None = None  # "epoch" | "step": how user code steps a torch scheduler (Hydra)
    epochs: int | None = None  # length of training, when the config keeps it under a key explr does not know
    total_iters: int | None = None  # the same in optimizer steps (iterations)
    optimizer_class: str | None = None  # LightningCLI: the class the script fixes (parser.add_optimizer_args)
    scheduler_class: str | None = None  # LightningCLI: parser.add_lr_scheduler_args

    def __post_init__(self) -> None:
        for name in ("iters_per_epoch", "dataset_size", "batch_size", "num_devices", "epochs", "total_iters"):
            value = getattr(self, name)
            if value is not None and value <= 0:  # 0 would otherwise read as "not given" below
                raise ConfigError(f"--{name.replace('_', '-')}={value} must be > 0")


LENGTH_FLAGS = "pass --epochs N or --total-iters N"  # every "length of training is unknown" error names both


def flag_length(options: ReadOptions, iters_per_epoch: int) -> int | None:
    """Total iterations given by --total-iters / --epochs (None: the config says); ConfigError when invalid."""
    if options.epochs is not None and options.total_iters is not None:
        raise ConfigError("give only one of --epochs and --total-iters: both set the length of training")
    if options.total_iters is not None:
        return options.total_iters
    return options.epochs * iters_per_epoch if options.epochs is not None else None


class FormatAdapter(Protocol):
    name: str

    def detect(self, source: ConfigSource) -> str | None:
        """A one-line reason when `source` looks like this format, else None."""

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        """The format-free TrainingPlan, every fact located; ConfigError naming file:line on bad input."""


def iters_per_epoch(source: ConfigSource, options: ReadOptions, *, batch_size: int | None,
                    dataset: str | None = None, num_devices: int | None = None,
                    drop_last: bool | None = None) -> int:
    """Iterations per epoch from flags first, then the config's own facts; a clear error when unknown.

    `batch_size` is the per-device batch size read from the config (flags override it).
    """
    if options.iters_per_epoch is not None:
        return options.iters_per_epoch
    size = options.dataset_size
    name = options.dataset or dataset
    if size is None and name is not None:
        size = DATASET_SIZES.get(str(name).lower())
    batch = options.batch_size or batch_size
    devices = options.num_devices or num_devices or 1
    if size is None or not batch:
        missing = "the dataset size (--dataset NAME or --dataset-size N)" if size is None else "the batch size (--batch-size N)"
        raise ConfigError(f"{source.path}: cannot tell iterations per epoch: {missing} is unknown; "
                          "pass --iters-per-epoch N")
    # DistributedSampler pads the dataset to ceil(N / devices) samples per replica; the
    # DataLoader then batches those, dropping or keeping the last partial batch.
    per_device = math.ceil(size / devices)
    drop = options.drop_last if options.drop_last is not None else bool(drop_last)
    return per_device // batch if drop else math.ceil(per_device / batch)


_ABSENT = object()
_KINDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string", tuple: "a list of numbers",
          list: "a list"}


def finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite: what a numeric config value must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coerce(value: Any, kind: type) -> Any:
    """`value` as `kind`; strings are decoded the way yacs (literal_eval) and argparse (type=) do. ValueError if not."""
    if isinstance(value, str) and kind is not str:
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            value = float(value) if kind in (float, int) else value  # argparse: "1e-4" -> float
    if kind is bool and isinstance(value, bool) or kind is str and isinstance(value, str):
        return value
    if kind in (float, int) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if kind is int and not float(value).is_integer():
            raise ValueError(value)
        return kind(value)
    if kind is list and isinstance(value, (list, tuple)):
        return list(value)
    if kind is tuple and isinstance(value, (list, tuple)):
        return tuple(item if type(item) is int else _coerce(item, float) for item in value)
    raise ValueError(value)


class ConfigFacts:
    """Typed reads of a config's keys that record where each fact came from (TrainingPlan.locations).

    `layers` are the config and the files it inherits from, most specific first (detectron2 `_BASE_`);
    a key is read from the first layer that has it, which is what merging the layers gives for leaves.
    Facts that take the framework default are not recorded: no location means "default".
    """

    def __init__(self, layers: Sequence[ConfigSource]):
        self.layers = tuple(layers)
        self.locations: dict[str, Location] = {}

    @property
    def source(self) -> ConfigSource:
        return self.layers[0]

    def layer_of(self, keypath: KeyPath) -> ConfigSource | None:
        return next((layer for layer in self.layers if layer.has(keypath)), None)

    def has(self, keypath: KeyPath) -> bool:
        return self.layer_of(keypath) is not None

    def where(self, keypath: KeyPath) -> str:
        layer = self.layer_of(keypath)
        return layer.where(keypath) if layer else str(self.source.path)

    def error(self, keypath: KeyPath, problem: str) -> ConfigError:
        """ConfigError '<file:line>: KEY <problem>'; `problem` must say what to do."""
        return ConfigError(f"{self.where(keypath)}: {'.'.join(map(str, keypath))} {problem}")

    def get(self, fact: str | None, keypath: KeyPath, kind: type, default: Any = _ABSENT) -> Any:
        """The value at `keypath` as `kind` (None stays None); `default` when absent, else a ConfigError."""
        layer = self.layer_of(keypath)
        if layer is None:
            if default is _ABSENT:
                raise self.error(keypath, f"is missing; set it to {_KINDS[kind]}")
            return default
        if fact:
            self.locations[fact] = layer.location(keypath)
        raw = layer.get(keypath)
        if raw is None:
            return None
        try:
            return _coerce(raw, kind)
        except (ValueError, TypeError):
            raise self.error(keypath, f"is {raw!r}; it must be {_KINDS[kind]}") from None


def late_milestones(schedule: LRSchedule) -> tuple[int, ...]:
    """Milestones at or past the end of training: torch (and every framework here) never reaches them."""
    return tuple(m for m in schedule.milestones if m >= schedule.total_iters)


def validated_schedule(schedule: LRSchedule, prefix: str, suffix: str = "") -> LRSchedule:
    """`schedule` without its late milestones, validated; a violation becomes one ConfigError line
    `prefix + problem + suffix`. Readers record late_milestones() in TrainingPlan.ignored_milestones (EXP209)."""
    late = late_milestones(schedule)
    if late:
        schedule = dataclasses.replace(schedule, milestones=schedule.milestones[:-len(late)])
    try:
        schedule.validate()
    except ValueError as exc:
        raise ConfigError(f"{prefix}{exc}{suffix}") from None
    return schedule
