"""Eval-mode outputs: BatchNorm running statistics are EMAs over iterates of *different scale*.

In the converted run the SI weights grow like 1/s_t, so the running mean/var of a BatchNorm after
them average activations of a growing scale, while the original run's average shrinking weights:
the two eval-mode networks differ even though the train-mode networks are identical (docs/theory.md §5,
'Not exact'). Recomputing the statistics on a few batches with the final weights removes this.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from explr.check.data import Batch, flat_output
from explr.check.report import EvalModeResult
from explr.check.runner import rel_deviation

RECALIBRATION_BATCHES = 2  # the same batches recalibrate both runs: exactness needs no more; each costs a forward per run


def running_stat_modules(model: nn.Module) -> list[nn.modules.batchnorm._NormBase]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats and m.running_mean is not None]


@torch.no_grad()
def eval_output(model: nn.Module, probe: Batch) -> torch.Tensor:
    was_training = model.training
    out = flat_output(model.eval()(*probe.inputs))
    model.train(was_training)
    return out


@torch.no_grad()
def recalibrate(model: nn.Module, batches: Iterable[Batch], seed: int) -> None:
    """Recompute the running statistics as a plain average over `batches` (momentum=None) with the final weights."""
    modules = running_stat_modules(model)
    momenta = [m.momentum for m in modules]
    for m in modules:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch counts the same
    model.train()
    for k, batch in enumerate(batches):
        torch.manual_seed(seed + k)
        model(*batch.inputs)
    for m, momentum in zip(modules, momenta):
        m.momentum = momentum


def compare_eval_mode(original: nn.Module, converted: nn.Module, probe: Batch, batches: list[Batch],
                      tolerance: float, seed: int) -> EvalModeResult:
    if not running_stat_modules(original):
        return EvalModeResult(False, None, None, 0, "same_as_train_mode",
                              "no running statistics (e.g. GroupNorm/LayerNorm): eval mode computes what train "
                              "mode computes, so the train-mode match carries over")
    before = rel_deviation(eval_output(converted, probe), eval_output(original, probe))
    for model in (original, converted):
        recalibrate(model, batches, seed)
    after = rel_deviation(eval_output(converted, probe), eval_output(original, probe))
    if before <= tolerance:
        return EvalModeResult(True, before, after, len(batches), "as_trained",
                              "the running statistics as trained already match within tolerance")
    if after > tolerance:
        return EvalModeResult(True, before, after, len(batches), "recalibrated",
                              f"even with recomputed statistics the eval-mode outputs differ by {after:.1e}: the "
                              "train-mode trajectories themselves differ")
    return EvalModeResult(True, before, after, len(batches), "recalibrated",
                          f"recompute BatchNorm statistics before evaluating a converted model (deviation "
                          f"{before:.1e} as trained, {after:.1e} after {len(batches)} batches): the running "
                          "averages mix iterates of different scale")
