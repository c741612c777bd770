"""Lightning: `lr_scheduler.class_path: explr.integrations.lightning.TEXPScheduler` plus this callback.

LightningCLI builds the optimizer from `model.parameters()` and the scheduler from the optimizer, so
neither sees parameter names; ExplrCallback binds the scheduler to the LightningModule on the first
training batch (that batch's inputs are the example inputs when the runtime audits the model).
Lightning is optional: the callback subclasses lightning's Callback when it is installed, so
LightningCLI accepts it in `trainer.callbacks`, and is a plain class otherwise.
"""
from __future__ import annotations

from typing import Any

from explr.errors import ConfigError
from explr.integrations.scheduler import TEXPScheduler

try:  # pragma: no cover - depends on the environment
    from lightning.pytorch import Callback as _Base
except ImportError:  # pragma: no cover
    try:
        from pytorch_lightning import Callback as _Base
    except ImportError:
        _Base = object

__all__ = ["ExplrCallback", "TEXPScheduler"]


def first_input(batch: Any) -> Any:
    """The model input of a batch: `x` of `(x, y)` / `[x, y]`, `batch["input"]`, or the batch itself."""
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0]
    if isinstance(batch, dict):
        for key in ("input", "inputs", "x", "image", "images"):
            if key in batch:
                return batch[key]
    return batch


class ExplrCallback(_Base):
    """Binds every explr TEXPScheduler of the trainer's optimizers to the LightningModule, once."""

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, *args: Any) -> None:
        schedulers = [s for s in (getattr(o, "_explr_scheduler", None) for o in trainer.optimizers) if s is not None]
        if not schedulers:
            raise ConfigError("ExplrCallback: no optimizer has an explr TEXPScheduler; set lr_scheduler.class_path: "
                              "explr.integrations.lightning.TEXPScheduler (run `explr convert` on the config)")
        for scheduler in schedulers:
            if not scheduler.bound:
                scheduler.bind(pl_module, first_input(batch))
