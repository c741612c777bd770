"""Shared test helpers: a float64 fixture network with a negligible BatchNorm eps, batches, diffs.

The frameworks themselves are the oracles of the Lightning and Hydra readers and of the configs explr
writes for them (lightning_oracle.py, hydra_oracle.py); this module only holds small shared pieces.
"""
from __future__ import annotations

import importlib
import types
from typing import Any

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


def loss_step(model, optimizer, batch) -> None:
    x, y = batch
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


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
