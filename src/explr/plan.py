"""TrainingPlan: the format-free facts of a training config, each with the file:line it came from."""
from __future__ import annotations

from dataclasses import dataclass, field

from explr.findings import Location
from explr.lr_schedule import LRSchedule


@dataclass(frozen=True, slots=True)
class DecayPolicy:
    """Weight decay per parameter kind. norm/bias None means 'same as other'."""

    other: float
    norm: float | None = None  # affine parameters of normalization layers
    bias: float | None = None  # biases of non-normalization layers
    norm_layers: str = "torch"  # which module classes are normalization layers: a framework's own list
    # (explr.schedule.groups.NORM_LAYERS: "torch" every torch norm layer, "detectron2" its optimizer's tuple)

    def for_kind(self, kind: str) -> float:
        value = {"norm": self.norm, "bias": self.bias}.get(kind)
        return self.other if value is None else value


@dataclass(slots=True)
class TrainingPlan:
    format: str  # "explr" | "lightning" | "hydra" | "timm" | "detectron2" | "pycls"
    path: str
    optimizer: str  # lower-case family: "sgd", "adam", "adamw", ...
    momentum: float
    dampening: float
    nesterov: bool
    decay: DecayPolicy
    lr: LRSchedule
    iters_per_epoch: int | None
    epochs: float | None
    precision: str = "32"  # "64" | "32" | "16-mixed" | "bf16-mixed"
    grad_clip_norm: float | None = None
    grad_clip_key: str | None = None  # a project's own clipping switch (threshold in its code): train.clip_grad_norm
    ema: bool = False
    scheduler_interval: str = "step"  # how the original scheduler is stepped: "step" | "epoch"
    ignored_milestones: tuple[int, ...] = ()  # iterations at or past the end: never reached, dropped (EXP209)
    class_notes: tuple[tuple[str, str], ...] = ()  # (fact, why) for a class inferred from its arguments (EXP210)
    locations: dict[str, Location] = field(default_factory=dict)  # fact name -> where it was read

    @property
    def weight_decay(self) -> float:
        return self.decay.other

    @property
    def total_iters(self) -> int:
        return self.lr.total_iters

    def where(self, key: str) -> Location | None:
        return self.locations.get(key)
