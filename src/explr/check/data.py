"""The data stream both runs train on: synthetic by default, or the user's batches.

Both runs are stepped in lockstep on the very same batch objects, so a data function that
augments randomly is consumed once and still feeds identical data to both runs.

User data contract (`--data module:function`, or `train_batches()` in the model file): a function
called with no arguments that returns an iterable of `(inputs, target)` batches, where `inputs` is a
tensor or a tuple of tensors passed to the model as positional arguments. The loss is
cross-entropy when the target holds integer class labels and the output is (batch, classes),
otherwise mean squared error. The iterable is restarted (the function called again) when exhausted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from explr.check.budget import MIN_SIDE, DataSize
from explr.errors import ExplrError, LoadError, quote_error
from explr.load.spec import imported, parse_spec

DATA_FUNCTION = "train_batches"


class DataError(ExplrError):
    """The data function failed or gave batches the model or the loss cannot take."""


@dataclass(frozen=True, slots=True)
class Batch:
    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor

    def to(self, device: torch.device, dtype: torch.dtype) -> "Batch":
        def move(x: torch.Tensor) -> torch.Tensor:
            return x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
        return Batch(tuple(move(x) for x in self.inputs), move(self.target))

    def head(self, n: int) -> "Batch":
        return Batch(tuple(x[:n] for x in self.inputs), self.target[:n])


BatchStream = Callable[[], Iterator[Batch]]  # a restartable batch iterator factory


def flat_output(output: Any) -> torch.Tensor:
    """All floating tensors of a model output (tensor, tuple, dict) as one flat vector."""
    if isinstance(output, torch.Tensor):
        return output.reshape(-1)
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        parts = [flat_output(o) for o in output if isinstance(o, (torch.Tensor, tuple, list, dict))]
        return torch.cat(parts) if parts else torch.zeros(0)
    raise DataError(f"the model returned {type(output).__name__}; the check compares tensor outputs")


def _main_output(output: Any) -> torch.Tensor:
    if isinstance(output, dict):
        output = next(iter(output.values()))
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


def loss_of(output: Any, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class labels on (batch, classes) logits, else mean squared error."""
    y = _main_output(output)
    if not target.is_floating_point() and y.dim() == 2:
        return F.cross_entropy(y, target)
    return F.mse_loss(y, target.to(y.dtype))


# ------------------------------------------------------------------------------------ synthetic


def _like(x: torch.Tensor, batch: int, gen: torch.Generator) -> torch.Tensor:
    shape = (batch, *x.shape[1:])
    if x.is_floating_point():
        return torch.randn(shape, generator=gen, dtype=torch.float64)
    high = int(x.max().item()) + 1 if x.numel() else 2
    return torch.randint(0, max(high, 2), shape, generator=gen)


def synthetic_batches(model: nn.Module, example_inputs: tuple[Any, ...], batch: int,
                      seed: int) -> BatchStream:
    """Random inputs shaped like the example inputs (batch dim replaced) with random labels/targets."""
    tensors = tuple(x for x in example_inputs if isinstance(x, torch.Tensor))
    if len(tensors) != len(example_inputs) or not tensors:
        raise DataError("the model's example inputs are not all tensors: synthetic data cannot imitate them; "
                        f"pass --data module:function or define {DATA_FUNCTION}() in the model file")
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        out = _main_output(model.train()(*tensors))
        model.load_state_dict(saved)
    classes = out.shape[1] if out.dim() == 2 and out.shape[1] > 1 else None

    def generate() -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(seed)
        while True:
            inputs = tuple(_like(x, batch, gen) for x in tensors)
            target = (torch.randint(0, classes, (batch,), generator=gen) if classes
                      else torch.randn((batch, *out.shape[1:]), generator=gen, dtype=torch.float64))
            yield Batch(inputs, target)
    return generate


@torch.no_grad()
def check_first_batch(model: nn.Module, batch: "Batch", where: str) -> None:
    """Run the model and the loss once on the first batch, so bad data fails before any training.

    Buffers (BatchNorm running statistics) are restored afterwards.
    """
    if batch.inputs[0].dim() == 0 or batch.inputs[0].shape[0] < 2:
        raise DataError(f"{where}: batches need at least 2 samples (train-mode normalization needs a batch)")
    saved = [b.clone() for b in model.buffers()]
    try:
        loss_of(model.train()(*batch.inputs), batch.target)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{where}: the model or the loss rejected the first batch "
                        f"({', '.join(str(tuple(x.shape)) for x in batch.inputs)} -> target "
                        f"{tuple(batch.target.shape)}): {quote_error(exc)}; check the batch shapes and target type") from exc
    finally:
        for buffer, value in zip(model.buffers(), saved):
            buffer.copy_(value)


# ----------------------------------------------------------------------------------- user data


def resolve_data_function(data_spec: str | None, model_spec: str) -> tuple[Callable[[], Iterable], str] | None:
    """The user's data function (`--data module:function`, else `train_batches()` in the model file), or None."""
    if data_spec:
        parsed = parse_spec(data_spec)
        if parsed.attr is None:
            raise DataError(f"--data {data_spec!r} names no function; write module:function or path/file.py:function")
        with imported(parsed) as module:
            fn = getattr(module, parsed.attr, None)
        if not callable(fn):
            raise DataError(f"--data {data_spec!r}: {parsed.target} has no function {parsed.attr!r}")
        return fn, data_spec
    parsed = parse_spec(model_spec)
    if not parsed.is_file:
        return None
    try:
        with imported(parsed) as module:
            fn = getattr(module, DATA_FUNCTION, None)
    except LoadError:
        return None  # the model loader reports problems with the model file itself
    return (fn, f"{parsed.target}:{DATA_FUNCTION}") if callable(fn) else None


def _as_batch(item: Any, where: str, index: int) -> Batch:
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise DataError(f"{where}: batch {index} is {type(item).__name__}, not an (inputs, target) pair")
    inputs, target = item
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not all(isinstance(x, torch.Tensor) for x in (*inputs, target)):
        raise DataError(f"{where}: batch {index} must hold tensors (inputs tensor or tuple of tensors, target tensor)")
    return Batch(inputs, target)


def user_batches(fn: Callable[[], Iterable], where: str) -> BatchStream:
    """Batches of the user's function, restarted when exhausted; its failures become DataError."""
    def generate() -> Iterator[Batch]:
        index = 0
        while True:
            try:
                iterator = iter(fn())
            except Exception as exc:
                raise DataError(f"{where}() raised {quote_error(exc)}; fix the data function") from exc
            produced = False
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:
                    raise DataError(f"{where}: producing batch {index} raised {quote_error(exc)}") from exc
                produced = True
                yield _as_batch(item, where, index)
                index += 1
            if not produced:
                raise DataError(f"{where}() returned no batches")
    return generate


# ----------------------------------------------------------------------------------- the source both runs use


@dataclass(frozen=True)
class DataSource:
    """The batches both runs train on: the user's (fixed size) or synthetic ones of a chosen size."""

    make: Callable[[DataSize], BatchStream]
    where: str  # names the source in messages
    user: bool
    side: int | None = None  # synthetic images: the side that may be shrunk (None: not shrinkable)


def shrunk_images(inputs: tuple, shrink: int) -> tuple:
    """Random images like `inputs` with sides divided by `shrink` (the inputs themselves when 1)."""
    return tuple(torch.randn(*x.shape[:-2], x.shape[-2] // shrink, x.shape[-1] // shrink, dtype=x.dtype)
                 for x in inputs) if shrink > 1 else inputs


def _shrinkable_side(model: nn.Module, inputs: tuple) -> int | None:
    """The image side synthetic data may shrink (every input an N,C,H,W image and the model takes a
    MIN_SIDE one), else None."""
    if not inputs or not all(isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point() for x in inputs):
        return None
    side = min(min(x.shape[-2:]) for x in inputs)
    if side < 2 * MIN_SIDE:
        return None
    try:
        synthetic_batches(model, shrunk_images(inputs, side // MIN_SIDE), 2, 0)
    except Exception:  # noqa: BLE001 - any failure only means "keep the model's own input size"
        return None
    return side


def data_source(data_spec: str | None, model_spec: str, model: nn.Module, inputs: tuple, seed: int,
                may_shrink: bool) -> DataSource:
    """The user's data function when there is one, else synthetic data like `inputs`; `may_shrink`: the
    synthetic images may get smaller sides (a time budget chooses the data size)."""
    found = resolve_data_function(data_spec, model_spec) if (data_spec or model_spec) else None
    if found:
        fn, where = found
        stream = user_batches(fn, where)
        return DataSource(lambda _size: stream, where, True)
    side = _shrinkable_side(model, inputs) if may_shrink else None
    return DataSource(lambda size: synthetic_batches(model, shrunk_images(inputs, size.shrink), size.batch, seed),
                      "synthetic data", False, side)


def first_batch(make_stream: BatchStream, model: nn.Module, where: str, device: torch.device,
                dtype: torch.dtype) -> Batch:
    """The first batch, after checking the model and loss accept it (bad data fails before any training)."""
    first = next(make_stream()).to(device, dtype)
    with torch.random.fork_rng(devices=[]):
        check_first_batch(model, first, where)
    return first
