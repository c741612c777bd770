"""Train the original and the converted setup in lockstep on the same batches, recording every step.

Lockstep (both runs take step t before either takes step t+1) keeps one batch in memory, lets a
randomly augmenting data function be consumed once, and stops at the first non-finite value.
Dropout draws the same masks in every run: the RNG is reseeded with the same value before each
run's forward pass.

The deviation after step t is measured on the training forward of step t+1 (the same batch, the same
train-mode function of the weights after step t, in every run): it costs nothing extra. Only the function
after the last step needs one forward of its own, on the fixed probe batch.

AMP (`Amp`): the forward runs under torch.autocast; with a GradScaler a step whose gradients overflow is
skipped by the scaler while the scheduler still steps, exactly as in a user's AMP loop.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import torch
from torch import nn

from explr.check.data import Batch, DataError, flat_output, loss_of
from explr.check.report import StepRecord
from explr.errors import ExplrError, quote_error

PROBE_VALUES = 4  # probe outputs kept per step for the plot
LOW_PRECISION = (torch.float16, torch.bfloat16)


class TrainingError(ExplrError):
    """Training hit NaN/inf or ran out of memory: the check stops and names the step and the run."""


@dataclass(frozen=True)
class Amp:
    """Mixed precision of a run: autocast dtype, and a GradScaler (float16) or not (bfloat16)."""

    dtype: torch.dtype
    grad_scaler: bool


class Scheduler(Protocol):
    """What a run needs of its scheduler: one step() after every optimizer step (torch's LRScheduler, TEXP)."""

    def step(self) -> None: ...


@dataclass
class Run:
    name: str  # "original" | "converted" | "perturbed"
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler
    group_labels: list[str]
    si_params: list[torch.Tensor] = field(default_factory=list)  # for the norm ratio
    amp: Amp | None = None
    scaler: torch.amp.GradScaler | None = None
    skipped: int = 0  # optimizer steps the GradScaler skipped (overflow)

    def __post_init__(self) -> None:
        if self.amp is not None and self.amp.grad_scaler and self.scaler is None:
            device = next(self.model.parameters()).device.type
            self.scaler = torch.amp.GradScaler(device)


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


@dataclass(frozen=True, slots=True)
class StepResult:
    loss: float
    lrs: dict  # LR per group used by this step
    clipped: bool
    zeros: float | None  # SI zero-gradient fraction (low precision only)
    output: torch.Tensor  # the training forward's outputs (the function of the weights before this step)


def _autocast(run: Run) -> contextlib.AbstractContextManager:
    if run.amp is None:
        return contextlib.nullcontext()
    return torch.autocast(next(run.model.parameters()).device.type, dtype=run.amp.dtype)


def train_step(run: Run, batch: Batch, seed: int, clip_norm: float | None) -> StepResult:
    """One optimizer step (skipped by the GradScaler on overflow) and one scheduler step."""
    torch.manual_seed(seed)
    run.optimizer.zero_grad(set_to_none=True)
    with _autocast(run):
        output = run.model(*batch.inputs)
        loss = loss_of(output, batch.target)
    scaled = loss if run.scaler is None else run.scaler.scale(loss)
    scaled.backward()
    if run.scaler is not None and clip_norm is not None:
        run.scaler.unscale_(run.optimizer)  # clip the true gradients, as torch's AMP recipe does
    clipped = _clip(run, clip_norm)
    low = run.si_params and run.si_params[0].dtype in LOW_PRECISION
    zeros = _zero_fraction(run.si_params) if low else None
    lrs = {label: float(g["lr"]) for label, g in zip(run.group_labels, run.optimizer.param_groups)}
    _optimizer_step(run)
    with warnings.catch_warnings():  # torch's advice when the scaler skipped the very first step: expected here
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
        run.scheduler.step()
    return StepResult(float(loss.detach()), lrs, clipped, zeros, flat_output(output).detach())


def _optimizer_step(run: Run) -> None:
    if run.scaler is None:
        run.optimizer.step()
        return
    scale = run.scaler.get_scale()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.skipped += run.scaler.get_scale() < scale  # the scale only drops on an overflow, which skipped the step


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
    num, den = (torch.linalg.vector_norm(torch.stack([n.double() for n in torch._foreach_norm(ps)]))
                for ps in (converted, original))
    return float(num / den) if den > 0 else None


def _finite_or_stop(step: int, run: str, loss: float, output: torch.Tensor, after: int) -> None:
    """Stop at a non-finite loss (step `step`) or output (the function after step `after`)."""
    if not math.isfinite(loss):
        raise TrainingError(f"the {run} run's loss became {loss} at step {step}; training diverged "
                            "(lower the LR, check the data, or use --dtype float64)")
    if not bool(torch.isfinite(output).all()):
        raise TrainingError(f"the {run} run's outputs became NaN/inf after step {after}; training diverged "
                            "(weights overflowed or the LR is too large for this model)")


@dataclass(frozen=True, slots=True)
class _Stepped:
    """Step t of every run, whose deviation is measured on the function after it (the next forward)."""

    step: int
    results: dict[str, StepResult]  # by run name
    norm: float | None  # the SI norm ratio after the step


def run_lockstep(runs: list[Run], stream: Iterator[Batch], probe: Batch, opts: RunnerOptions,
                 on_step: Callable[[int], None] = lambda t: None) -> list[StepRecord]:
    """Train runs[0] (original), runs[1] (converted) and optionally runs[2] (perturbed original)."""
    records: list[StepRecord] = []
    pending: _Stepped | None = None
    for t in range(1, opts.steps + 1):
        batch = next(stream)
        results = {}
        for run in runs:
            with _guard(t, run.name, opts.data_where):
                results[run.name] = train_step(run, batch, opts.seed + t, opts.clip_norm)
            _finite_or_stop(t, run.name, results[run.name].loss, results[run.name].output, after=t - 1)
        if pending is not None:
            records.append(_record(pending, {n: r.output for n, r in results.items()}, opts))
            on_step(t - 1)
        pending = _Stepped(t, results, norm_ratio(runs[1].si_params, runs[0].si_params))
    if pending is None:
        raise ValueError(f"run_lockstep needs at least one step, not {opts.steps}")
    outputs = {}
    for run in runs:  # the function after the last step: one forward of its own, on the probe batch
        with _guard(opts.steps, run.name, opts.data_where), _autocast(run):
            outputs[run.name] = probe_output(run.model, probe, opts.seed - opts.steps)
        _finite_or_stop(opts.steps, run.name, 0.0, outputs[run.name], after=opts.steps)
    records.append(_record(pending, outputs, opts))
    on_step(opts.steps)
    return records


def _record(stepped: _Stepped, outputs: dict[str, torch.Tensor], opts: RunnerOptions) -> StepRecord:
    """Step t's record; `outputs`: each run's function after step t (next training forward, or the probe)."""
    t, norm = stepped.step, stepped.norm
    original, converted = stepped.results["original"], stepped.results["converted"]
    y, y_c = outputs["original"], outputs["converted"]
    noise = rel_deviation(outputs["perturbed"], y) if "perturbed" in outputs else None
    zeros = (original.zeros, converted.zeros) if original.zeros is not None and converted.zeros is not None else None
    return StepRecord(
        step=t, rel_deviation=rel_deviation(y_c, y), loss_original=original.loss, loss_converted=converted.loss,
        lrs_original=original.lrs, lrs_converted=converted.lrs,
        norm_ratio=norm, predicted_ratio=opts.predicted_ratio(t),
        noise=noise, clipped=(original.clipped, converted.clipped), zero_grad_fraction=zeros,
        probe_original=tuple(y[:PROBE_VALUES].double().tolist()),
        probe_converted=tuple(y_c[:PROBE_VALUES].double().tolist()))
