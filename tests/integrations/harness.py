"""Original-vs-converted training side by side for the framework integrations (float64, BN eps 1e-30)."""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import torch

from tests.configs.texp_harness import batches, fixture_model, loss_step


def compare_runs(original_opt: Callable, original_sched: Callable, converted: Callable, steps: int,
                 iters_per_epoch: int) -> tuple[float, Any]:
    """Train the weight-decay run and the converted one on the same batches; schedulers are stepped every
    `iters_per_epoch` iterations, as the framework steps them. `converted(model) -> (optimizer, scheduler)`.
    Returns the largest output difference on a probe batch over the run, and the converted scheduler."""
    model_a = fixture_model()
    model_b = copy.deepcopy(model_a)
    opt_a = original_opt(model_a)
    sched_a = original_sched(opt_a)
    opt_b, sched_b = converted(model_b)
    probe, worst = batches(1)[0][0], 0.0
    for i, batch in enumerate(batches(steps)):
        loss_step(model_a, opt_a, batch)
        loss_step(model_b, opt_b, batch)
        if (i + 1) % iters_per_epoch == 0:
            sched_a.step()
            sched_b.step()
        with torch.no_grad():
            worst = max(worst, (model_a(probe) - model_b(probe)).abs().max().item())
    return worst, sched_b


def _no_op(i: int) -> None:
    pass


@dataclasses.dataclass
class Side:
    """One run of an AMP comparison: its optimizer, and what the framework's loop does around iteration i."""

    optimizer: torch.optim.Optimizer
    before: Callable[[int], None] = _no_op  # e.g. pycls's set_lr at an epoch start
    after: Callable[[int], None] = _no_op  # e.g. scheduler.step(), step_update(i + 1)


def amp_loss_step(model, side: Side, scaler: torch.amp.GradScaler, batch, overflow: bool) -> bool:
    """One AMP iteration as detectron2's AMPTrainer, timm's NativeScaler, pycls and mmengine's AmpOptimWrapper
    run it: zero_grad, scaled backward, scaler.step, scaler.update. The overflow is real: the loss times inf
    makes the gradients non-finite and the GradScaler does not call optimizer.step(). Returns whether it did."""
    x, y = batch
    stepped: list[bool] = []
    handle = side.optimizer.register_step_post_hook(lambda *_: stepped.append(True))
    side.optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y) * (float("inf") if overflow else 1.0)
    scaler.scale(loss).backward()
    scaler.step(side.optimizer)
    scaler.update()
    handle.remove()
    return bool(stepped)


def compare_amp_runs(original: Callable, converted: Callable, steps: int, skips: set[int]) -> float:
    """The weight-decay run and the converted one on the same batches under a CPU GradScaler, both overflowing
    at the iterations in `skips`; `original(model)`, `converted(model)` -> Side. Returns the largest relative
    output difference on a probe batch over the run."""
    model_a = fixture_model()
    model_b = copy.deepcopy(model_a)
    side_a, side_b = original(model_a), converted(model_b)
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=5) for _ in range(2)]
    probe, worst = batches(1)[0][0], 0.0
    for i, batch in enumerate(batches(steps)):
        for model, side, scaler in ((model_a, side_a, scalers[0]), (model_b, side_b, scalers[1])):
            side.before(i)
            assert amp_loss_step(model, side, scaler, batch, i in skips) == (i not in skips)
            side.after(i)
        with torch.no_grad():
            out_a, out_b = model_a(probe), model_b(probe)
        worst = max(worst, ((out_a - out_b).abs().max() / out_a.abs().max()).item())
    return worst
