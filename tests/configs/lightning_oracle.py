"""The real LightningCLI as the oracle of explr's Lightning reader and of the converted configs.

`lightning_schedule` parses a config with LightningCLI (jsonargparse reading the YAML file, the script's
fixed classes given as the real script gives them: parser.add_optimizer_args / add_lr_scheduler_args)
and builds the optimizer and scheduler through Lightning's own configure_optimizers path
(`_init_optimizers_and_lr_schedulers`), then steps them the way Lightning's fit loop does for the
whole run. `lightning_fit` runs `LightningCLI(...).fit` on a tiny BatchNorm network in float64.

Only the sections that decide the schedule go to the framework (optimizer, lr_scheduler, the
trainer's length and explr's callback): a fixture's project-specific model, data and callback classes
are not importable here, and the GPU/fp16 trainer flags cannot run on this CPU.
"""
from __future__ import annotations

import importlib
import pathlib
import tempfile
from dataclasses import dataclass
from typing import Any

import torch
import yaml
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.core.optimizer import _init_optimizers_and_lr_schedulers
from lightning.pytorch.loops.utilities import _parse_loop_limits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

BATCH = 4
LENGTH_KEYS = ("max_epochs", "max_steps")


class TinyNet(LightningModule):
    """conv (no bias) -> BatchNorm (eps tiny) -> ReLU -> pool -> linear: conv.weight is scale-invariant."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(11)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4, eps=1e-30), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5 + (1.0 if p.dim() == 1 else 0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)


class TinyData(LightningDataModule):
    def __init__(self, batches: int = 2) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(5)
        n = batches * BATCH
        self.data = TensorDataset(torch.randn(n, 3, 6, 6, generator=generator),
                                  torch.randint(0, 3, (n,), generator=generator))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=BATCH, shuffle=False)


def import_class(path: str | None) -> type | None:
    if not path:
        return None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def oracle_config(text: str, *, callbacks: bool = False) -> dict:
    """The sections of a fixture that decide the schedule, as the framework reads the YAML (PyYAML)."""
    full = yaml.safe_load(text)
    trainer = full.get("trainer") or {}
    out: dict = {"trainer": {k: trainer[k] for k in LENGTH_KEYS if k in trainer}}
    for key in ("optimizer", "lr_scheduler"):
        if full.get(key) is not None:
            out[key] = full[key]
    if callbacks:  # the converted config's explr callback (the project's own callbacks are not importable)
        out["trainer"]["callbacks"] = [c for c in trainer.get("callbacks") or []
                                       if str(c.get("class_path", "")).startswith("explr.")]
    return out


def _cli(config: dict, fixed: tuple[str | None, str | None], args: list[str], run: bool) -> LightningCLI:
    optimizer_class, scheduler_class = (import_class(c) for c in fixed)

    class ScriptCLI(LightningCLI):  # what the project's script does when it fixes the classes
        def add_arguments_to_parser(self, parser) -> None:
            if optimizer_class:
                parser.add_optimizer_args(optimizer_class)
            if scheduler_class:
                parser.add_lr_scheduler_args(scheduler_class)

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return ScriptCLI(TinyNet, TinyData, args=[*args, "--config", str(path)], run=run, save_config_callback=None,
                         seed_everything_default=False,
                         trainer_defaults={"accelerator": "cpu", "devices": 1, "barebones": True})


@dataclass
class Reading:
    lrs: list[float]  # LR of every iteration of the run, as Lightning's loop leaves it before optimizer.step
    groups: list[dict]  # the optimizer's param-group hyperparameters
    total_iters: int


def lightning_schedule(text: str, iters_per_epoch: int, fixed: tuple[str | None, str | None] = (None, None)) -> Reading:
    """Build and step the optimizer and scheduler Lightning builds from `text`, for the whole run."""
    cli = _cli(oracle_config(text), fixed, [], run=False)
    cli.model.trainer = cli.trainer
    optimizers, configs = _init_optimizers_and_lr_schedulers(cli.model)
    (optimizer,) = optimizers
    trainer = cli.trainer
    _, max_epochs = _parse_loop_limits(trainer.min_steps, trainer.max_steps, trainer.min_epochs, trainer.max_epochs,
                                       trainer)  # what Trainer.fit sets (max_epochs 1000 when no length is given)
    epochs = max_epochs if max_epochs not in (None, -1) else None
    total = min(n for n in (trainer.max_steps if trainer.max_steps > 0 else None,
                            epochs * iters_per_epoch if epochs else None) if n)
    lrs = []
    for i in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: nothing moves, but the scheduler sees a stepped optimizer
        for config in configs:  # Lightning's loop: interval "step" every step, "epoch" at each epoch end
            done = i + 1 if config.interval == "step" else ((i + 1) // iters_per_epoch if (i + 1) % iters_per_epoch == 0
                                                            else None)
            if done is not None and done % config.frequency == 0:
                config.scheduler.step()
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    return Reading(lrs, groups, total)


class ProbeOutputs(Callback):
    """After every optimizer step: the network's train-mode output on a fixed probe batch (float64)."""

    def __init__(self, probe: torch.Tensor) -> None:
        self.probe, self.outputs = probe, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            self.outputs.append(pl_module(self.probe.to(pl_module.dtype)).clone())


@dataclass
class Fit:
    outputs: list[torch.Tensor]  # probe outputs after every optimizer step
    groups: list[dict]  # the optimizer's param groups at the end


def lightning_fit(text: str, epochs: int, batches: int, fixed: tuple[str | None, str | None] = (None, None),
                  callbacks: bool = True) -> Fit:
    """`LightningCLI fit` of the config's optimizer/scheduler (and explr's callback) on TinyNet, float64."""
    probe = ProbeOutputs(torch.randn(3, 3, 6, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    config = oracle_config(text, callbacks=callbacks)
    config["trainer"] = {**config["trainer"], "max_epochs": epochs, "max_steps": -1, "precision": "64-true"}
    cli = _cli(config, fixed, ["--data.batches", str(batches)], run=False)
    cli.trainer.callbacks.append(probe)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return Fit(probe.outputs, cli.trainer.optimizers[0].param_groups)
