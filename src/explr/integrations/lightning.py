"""Lightning: `lr_scheduler.class_path: explr.integrations.lightning.TEXPScheduler` plus this callback.

LightningCLI builds the optimizer from `model.parameters()` and the scheduler from the optimizer, so
neither sees parameter names; ExplrCallback binds the scheduler to the LightningModule on the first
training batch (that batch's inputs are the example inputs when the runtime audits the model).
Under AMP ("16-mixed") the GradScaler skips an optimizer step whose gradients overflowed, while the
trainer's step count — and with it the original run's LR schedule — moves on: the callback sees the
trainer step without an optimizer step and moves TEXP's LR index on too, leaving its phantom untouched.
Lightning is optional: the callback subclasses lightning's Callback when it is installed, so
LightningCLI accepts it in `trainer.callbacks`, and is a plain class otherwise.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from explr.errors import ConfigError
from explr.integrations.scheduler import SCHEDULER_ATTR, TEXPScheduler
from explr.schedule.runtime import TEXP

if TYPE_CHECKING:  # one base for the type checker, whichever of these packages is installed
    from lightning.pytorch import Callback as _Base
else:
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


def _schedulers(trainer: Any) -> list[TEXPScheduler]:
    return [s for s in (getattr(o, SCHEDULER_ATTR, None) for o in trainer.optimizers) if s is not None]


class ExplrCallback(_Base):
    """Binds every explr TEXPScheduler of the trainer's optimizers to the LightningModule, once; carries
    the LR index over optimizer steps the AMP GradScaler skipped."""

    def __init__(self) -> None:
        self._before: tuple[int, list[tuple[TEXP, int]]] | None = None  # trainer step, (TEXP, its optimizer steps)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, *args: Any) -> None:
        schedulers = _schedulers(trainer)
        if not schedulers:
            raise ConfigError("ExplrCallback: no optimizer has an explr TEXPScheduler; set lr_scheduler.class_path: "
                              "explr.integrations.lightning.TEXPScheduler (run `explr convert` on the config)")
        running = []
        for scheduler in schedulers:
            running.append(scheduler.bind(pl_module, first_input(batch)))  # binds once; then the running TEXP
            scheduler.carry_skips = False  # this callback carries them, per trainer step, whatever the interval
        step = getattr(trainer, "global_step", None)  # a trainer without a step count: no skip tracking
        self._before = None if step is None else (step, [(texp, texp.optimizer_steps) for texp in running])

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        if self._before is None:
            return
        step_before, taken_before = self._before
        if trainer.global_step == step_before:  # accumulating gradients: no optimizer step was due
            return
        for texp, taken in taken_before:
            if texp.optimizer_steps == taken:  # due, but the GradScaler skipped it (overflow)
                texp.step()
