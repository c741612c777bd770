"""Train the original and the converted setup in lockstep on the same batches, recording every step.

Lockstep (both runs take step t before either takes step t+1) keeps one batch in memory, lets a
randomly augmenting data function be consumed once, and stops at the first non-finite value.
Dropout draws the same masks in every run: the RNG is reseeded with the same value before each
run's forward pass.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from explr.check.data import Batch, DataError, flat_output, loss_of
from explr.check.report import StepRecord
from explr.errors import ExplrError
from explr.load import quote_error

PROBE_VALUES = 4  # probe outputs kept per step for the plot
LOW_PRECISION = (torch.float16, torch.bfloat16)


class TrainingError(ExplrError):
    """Training hit NaN/inf or ran out of memory: the check stops and names the step and the run."""


@dataclass
class Run:
    name: str  # "original" | "converted" | "perturbed"
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object  # .step() after every optimizer step
    group_labels: list[str]
    si_params: list[torch.Tensor] = field(default_factory=list)  # for the norm ratio


@dataclass(frozen=True)
class RunnerOptions:
    steps: int
    seed: int
    clip_norm: float | None
    predicted_ratio: Callable[[int], float | None]  # t -> 1/s_t of the SI norm set
    data_where: str  # names the data source in errors


class ExactSchedule:
    """Writes the original LR of each iteration into every group (the original run's scheduler)."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float]):
        self.optimizer, self.lr_at, self.i = optimizer, lr_at, 0
        self._write()

    def _write(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.i)

    def step(self) -> None:
        self.i += 1
        self._write()


def rel_deviation(y: torch.Tensor, y_ref: torch.Tensor) -> float:
    diff = torch.linalg.vector_norm((y - y_ref).double()).item()
    ref = torch.linalg.vector_norm(y_ref.double()).item()
    return diff / ref if ref > 0 else (0.0 if diff == 0 else math.inf)


@contextlib.contextmanager
def _guard(step: int, run: str, where: str) -> Iterator[None]:
    """Turn a model/data/memory failure inside a step into one line naming the step and the run."""
    try:
        yield
    except ExplrError:
        raise
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainingError(f"out of memory at step {step} ({run} run): {quote_error(exc)}; "
                            "use a smaller --batch-size or --device cpu") from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise TrainingError(f"out of memory at step {step} ({run} run); use a smaller --batch-size") from exc
        raise DataError(f"step {step} ({run} run): the model or the loss rejected a batch of {where}: "
                        f"{quote_error(exc)}; check the batch shapes and target type") from exc


def _clip(run: Run, max_norm: float | None) -> bool:
    if max_norm is None:
        return False
    total = torch.nn.utils.clip_grad_norm_(run.model.parameters(), max_norm)
    return bool(total > max_norm)


def _zero_fraction(params: list[torch.Tensor]) -> float:
    grads = [p.grad for p in params if p.grad is not None]
    total = sum(g.numel() for g in grads)
    return sum(int((g == 0).sum()) for g in grads) / total if total else 0.0


def train_step(run: Run, batch: Batch, seed: int, clip_norm: float | None) -> tuple[float, dict, bool, float | None]:
    """One optimizer step; returns (loss, LR per group used, clipping active, SI zero-gradient fraction)."""
    torch.manual_seed(seed)
    run.optimizer.zero_grad(set_to_none=True)
    loss = loss_of(run.model(*batch.inputs), batch.target)
    loss.backward()
    clipped = _clip(run, clip_norm)
    low = run.si_params and run.si_params[0].dtype in LOW_PRECISION
    zeros = _zero_fraction(run.si_params) if low else None
    lrs = {label: float(g["lr"]) for label, g in zip(run.group_labels, run.optimizer.param_groups)}
    run.optimizer.step()
    run.scheduler.step()
    return float(loss.detach()), lrs, clipped, zeros


@torch.no_grad()
def probe_output(model: nn.Module, probe: Batch, seed: int) -> torch.Tensor:
    """Train-mode outputs on the probe batch; running statistics are left as training made them."""
    saved = [b.clone() for b in model.buffers()]
    torch.manual_seed(seed)
    out = flat_output(model.train()(*probe.inputs))
    for buffer, value in zip(model.buffers(), saved):
        buffer.copy_(value)
    return out


@torch.no_grad()
def norm_ratio(converted: list[torch.Tensor], original: list[torch.Tensor]) -> float | None:
    if not converted:
        return None
    num = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.double()) for p in converted]))
    den = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.double()) for p in original]))
    return float(num / den) if den > 0 else None


def _finite_or_stop(step: int, run: str, loss: float, output: torch.Tensor) -> None:
    if not math.isfinite(loss):
        raise TrainingError(f"the {run} run's loss became {loss} at step {step}; training diverged "
                            "(lower the LR, check the data, or use --dtype float64)")
    if not bool(torch.isfinite(output).all()):
        raise TrainingError(f"the {run} run's outputs became NaN/inf after step {step}; training diverged "
                            "(weights overflowed or the LR is too large for this model)")


def run_lockstep(runs: list[Run], stream: Iterator[Batch], probe: Batch, opts: RunnerOptions,
                 on_step: Callable[[int], None] = lambda t: None) -> list[StepRecord]:
    """Train runs[0] (original), runs[1] (converted) and optionally runs[2] (perturbed original)."""
    records = []
    for t in range(1, opts.steps + 1):
        batch = next(stream)
        results, outputs = {}, {}
        for run in runs:
            with _guard(t, run.name, opts.data_where):
                results[run.name] = train_step(run, batch, opts.seed + t, opts.clip_norm)
                outputs[run.name] = probe_output(run.model, probe, opts.seed - t)
            _finite_or_stop(t, run.name, results[run.name][0], outputs[run.name])
        records.append(_record(t, runs, results, outputs, opts))
        on_step(t)
    return records


def _record(t: int, runs: list[Run], results: dict, outputs: dict, opts: RunnerOptions) -> StepRecord:
    original, converted = runs[0], runs[1]
    (loss_o, lrs_o, clip_o, zero_o), (loss_c, lrs_c, clip_c, zero_c) = results["original"], results["converted"]
    y, y_c = outputs["original"], outputs["converted"]
    noise = rel_deviation(outputs["perturbed"], y) if "perturbed" in outputs else None
    zeros = (zero_o, zero_c) if zero_o is not None and zero_c is not None else None
    return StepRecord(
        step=t, rel_deviation=rel_deviation(y_c, y), loss_original=loss_o, loss_converted=loss_c,
        lrs_original=lrs_o, lrs_converted=lrs_c,
        norm_ratio=norm_ratio(converted.si_params, original.si_params), predicted_ratio=opts.predicted_ratio(t),
        noise=noise, clipped=(clip_o, clip_c), zero_grad_fraction=zeros,
        probe_original=tuple(y[:PROBE_VALUES].double().tolist()),
        probe_converted=tuple(y_c[:PROBE_VALUES].double().tolist()))
