"""The contract every config format implements, and the facts shared by all of them.

One adapter module per format (explr, lightning, hydra, timm, detectron2, pycls); the table of
adapters lives in `configs/formats.py`. Detection returns a human reason ("has SOLVER.BASE_LR")
so the CLI can say which format it picked and why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from explr.configs.plan import TrainingPlan
from explr.configs.source import ConfigSource
from explr.errors import ConfigError

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
        if options.iters_per_epoch <= 0:
            raise ConfigError(f"--iters-per-epoch={options.iters_per_epoch} must be > 0")
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
    global_batch = batch * devices
    drop = options.drop_last if options.drop_last is not None else bool(drop_last)
    return size // global_batch if drop else math.ceil(size / global_batch)
