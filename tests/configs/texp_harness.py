"""Shared test harness: real torch schedulers as ground truth, and original-vs-converted training runs.

A written Lightning/Hydra config is instantiated the way the framework does it (import the class,
call it with its arguments) and trained next to the original weight-decay run; in float64 with a
negligible BatchNorm eps the two networks must agree at every step (docs/theory.md §3).
"""
from __future__ import annotations

import copy
import importlib
import types
from typing import Any, Callable

import torch
import yaml

from explr.load import load_model
from tests.conftest import FIXTURES

MODEL = str(FIXTURES / "models" / "conv_bias_bn.py")


def load_yaml(text: str) -> Any:
    """As LightningCLI (jsonargparse) and Hydra (OmegaConf) load it: PyYAML, YAML 1.1."""
    return yaml.safe_load(text)


def import_string(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def fixture_model() -> torch.nn.Module:
    model = load_model(MODEL).model.double()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eps = 1e-30  # docs/theory.md §1: invariance holds up to eps/σ²; make it negligible
    return model.train()


def batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (6,), generator=g))
            for _ in range(n)]


def torch_scheduler(optimizer, name: str, args: dict, nested: Callable[[Any], tuple[str, dict]]):
    """The real torch scheduler a config names (SequentialLR children built on the same optimizer)."""
    cls = import_string(name if "." in name else f"torch.optim.lr_scheduler.{name}")
    args = dict(args)
    if cls is torch.optim.lr_scheduler.SequentialLR:
        args["schedulers"] = [torch_scheduler(optimizer, *nested(child), nested) for child in args["schedulers"]]
    return cls(optimizer, **args)


def torch_lrs(base_lr: float, make: Callable, scheduler_steps: int) -> list[float]:
    """LR in effect during each scheduler step 0..n-1 of the real torch scheduler."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = make(optimizer)
    out = []
    for _ in range(scheduler_steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def loss_step(model, optimizer, batch) -> None:
    x, y = batch
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def compare_runs(original_opt: Callable, original_sched: Callable, converted: Callable, steps: int,
                 iters_per_epoch: int, on_batch: Callable | None = None) -> tuple[float, Any]:
    """Train the weight-decay run (scheduler stepped per epoch) and the converted one side by side.

    `converted(model) -> (optimizer, scheduler)`; `on_batch(model, optimizer, batch)` emulates the
    framework's per-batch hook. Returns the largest output difference and the converted scheduler.
    """
    base = fixture_model()
    model_a, model_b = base, copy.deepcopy(base)
    opt_a = original_opt(model_a)
    sched_a = original_sched(opt_a)
    opt_b, sched_b = converted(model_b)
    probe = batches(1)[0][0]
    worst = 0.0
    for i, batch in enumerate(batches(steps)):
        if on_batch:
            on_batch(model_b, opt_b, batch)
        loss_step(model_a, opt_a, batch)
        loss_step(model_b, opt_b, batch)
        if (i + 1) % iters_per_epoch == 0:  # the framework's per-epoch scheduler call
            sched_a.step()
            sched_b.step()
        with torch.no_grad():
            worst = max(worst, (model_a(probe) - model_b(probe)).abs().max().item())
    return worst, sched_b


def trainer_stub(optimizer) -> types.SimpleNamespace:
    return types.SimpleNamespace(optimizers=[optimizer])


def diff_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed from `before`, lines added in `after`), as `diff` would show them."""
    import difflib

    a, b = before.splitlines(), after.splitlines()
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added
