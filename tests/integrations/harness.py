"""Original-vs-converted training side by side for the framework integrations (float64, BN eps 1e-30)."""
from __future__ import annotations

import copy
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
