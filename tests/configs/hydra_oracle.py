"""Hydra itself as the oracle of explr's Hydra reader: hydra's compose API and `hydra.utils.instantiate`.

Each real fixture's project builds its optimizer and scheduler in its own training code; `PROJECTS`
records how (read from that code: which node, how the scheduler is called, how often it is stepped,
where the length of training lives). The oracle composes the config with Hydra, instantiates those
nodes with `hydra.utils.instantiate` and steps them for the whole run.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class Project:
    """How a project's training code uses its config (cited from its source)."""

    optimizer: str  # dotted key of the optimizer node
    scheduler: str | None
    build_optimizer: Callable[[DictConfig, list], torch.optim.Optimizer]
    build_scheduler: Callable[[DictConfig, torch.optim.Optimizer], Any]
    epochs: Callable[[DictConfig], int]  # the length of training, in epochs
    interval: str = "epoch"


def _node(cfg: DictConfig, key: str) -> DictConfig:
    return OmegaConf.select(cfg, key, throw_on_missing=True)


PROJECTS = {
    # by-liu/MbLS calibrate/engine/trainer.py: instantiate(cfg.optim.object, model.parameters()),
    # instantiate(cfg.scheduler.object, optimizer), scheduler.step() after each of cfg.train.max_epoch epochs
    "mbls": Project("optim.object", "scheduler.object",
                    lambda cfg, params: instantiate(_node(cfg, "optim.object"), params),
                    lambda cfg, opt: instantiate(_node(cfg, "scheduler.object"), opt),
                    lambda cfg: cfg.train.max_epoch),
    # OATML/RHO-Loss src/models/OneModel.py configure_optimizers: instantiate(optimizer, params=...),
    # instantiate(scheduler, optimizer=...), returned as [optimizer], [scheduler]: Lightning steps it per epoch
    "rho_loss": Project("optimizer", "scheduler",
                        lambda cfg, params: instantiate(cfg.optimizer, params=params, _convert_="partial"),
                        lambda cfg, opt: instantiate(cfg.scheduler, optimizer=opt, _convert_="partial"),
                        lambda cfg: cfg.trainer.max_epochs),
    # by-liu/CALS calibrate/engine/distributed_trainer.py: the same calls on optim.object / lr_scheduler.object
    "cals": Project("optim.object", "lr_scheduler.object",
                    lambda cfg, params: instantiate(_node(cfg, "optim.object"), params),
                    lambda cfg, opt: instantiate(_node(cfg, "lr_scheduler.object"), opt),
                    lambda cfg: cfg.train.max_epoch),
    # ashleve/lightning-hydra-template src/models/mnist_module.py: optimizer(params=...), scheduler(optimizer=...)
    "lht": Project("optimizer", "scheduler",
                   lambda cfg, params: instantiate(cfg.optimizer)(params=params),
                   lambda cfg, opt: instantiate(cfg.scheduler)(optimizer=opt),
                   lambda cfg: 10),  # trainer/default.yaml max_epochs of the template
}


def load(path: pathlib.Path) -> DictConfig:
    """The config the training code receives: Hydra's composition of a primary config, else the file itself."""
    if "defaults" not in OmegaConf.load(path):
        return OmegaConf.load(path)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=os.path.abspath(path.parent), version_base=None):
            return compose(config_name=path.stem)
    finally:
        GlobalHydra.instance().clear()


@dataclass
class Reading:
    lrs: list[float]
    groups: list[dict]
    total_iters: int


def hydra_schedule(cfg: DictConfig, project: Project, iters_per_epoch: int) -> Reading:
    """Instantiate the project's optimizer and scheduler with Hydra and step them for the whole run."""
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = project.build_optimizer(cfg, [param])
    scheduler = project.build_scheduler(cfg, optimizer) if project.scheduler else None
    total = project.epochs(cfg) * iters_per_epoch
    lrs = []
    for i in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None and (project.interval == "step" or (i + 1) % iters_per_epoch == 0):
            scheduler.step()
    return Reading(lrs, [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups], total)
