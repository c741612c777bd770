"""Hydra: `_target_: explr.integrations.hydra.TEXPScheduler` (with `_partial_: true`, called by the
training code as `scheduler(optimizer=optimizer)`, exactly like the torch scheduler it replaces).

Bind it to the model once before the first optimizer step: with a Lightning trainer the converted
config adds explr's callback to `callbacks`; otherwise one line in the training code,
`scheduler.bind(model, example_inputs)` (docs/formats.md).
"""
from explr.integrations.lightning import ExplrCallback
from explr.integrations.scheduler import TEXPScheduler

__all__ = ["ExplrCallback", "TEXPScheduler"]
