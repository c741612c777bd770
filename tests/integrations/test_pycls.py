"""pycls idiom: add_explr_config + construct_optimizer; pycls's per-epoch optim.set_lr stays in the loop.

pycls is not in the test environment: a yacs CfgNode (fvcore's, the class pycls's cfg is built on) of
pycls's config defaults stands in for pycls.core.config.cfg, and the loop below is pycls's
trainer.train_epoch reduced to what touches the optimizer (set_lr at each epoch start, then steps).
"""
from __future__ import annotations

import copy

import pytest
import torch
from fvcore.common.config import CfgNode

import explr
from explr.configs.api import write_converted
from explr.configs.pycls import DEFAULTS
from explr.errors import ConfigError
from explr.integrations.pycls import add_explr_config, construct_optimizer, pycls_optimizer
from tests.configs.texp_harness import MODEL, batches, fixture_model, loss_step
from tests.conftest import FIXTURES
from tests.integrations.harness import Side, compare_amp_runs

IPE, EPOCHS = 8, 6
ORIGINAL = (FIXTURES / "configs/pycls/cifar_resnet56_steps.yaml").read_text().replace(
    "STEPS: [0, 80, 120]", "STEPS: [0, 2, 4]").replace("MAX_EPOCH: 160", f"MAX_EPOCH: {EPOCHS}").replace(
    "WEIGHT_DECAY: 0.0001", "WEIGHT_DECAY: 0.005\n  NESTEROV: False")


def pycls_cfg() -> CfgNode:
    """Stand-in for pycls.core.config.cfg: its defaults, other keys accepted as the YAML gives them."""
    tree: dict = {}
    for keypath, value in DEFAULTS.items():
        node = tree
        for key in keypath[:-1]:
            node = node.setdefault(key, {})
        node[keypath[-1]] = list(value) if isinstance(value, tuple) else value
    cfg = CfgNode(tree)
    cfg.set_new_allowed(True)
    return cfg


def set_lr(optimizer, lr: float) -> None:
    """pycls/core/optimizer.py set_lr."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def test_construct_optimizer_trains_the_weight_decay_run_despite_set_lr(tmp_path):
    cfg, plan = converted_pycls_cfg(tmp_path)
    assert "conv1.weight" in cfg.EXPLR.PARAMS and cfg.BN.USE_CUSTOM_WEIGHT_DECAY
    model_a = fixture_model()
    model_b = copy.deepcopy(model_a)
    opt_a, opt_b = pycls_optimizer(model_a, cfg), construct_optimizer(model_b, cfg, iters_per_epoch=IPE)
    probe, worst = batches(1)[0][0], 0.0
    for i, batch in enumerate(batches(IPE * EPOCHS)):
        if i % IPE == 0:  # trainer.train_epoch: lr = optim.get_epoch_lr(cur_epoch); optim.set_lr(optimizer, lr)
            set_lr(opt_a, plan.lr.lr_at(i))
            set_lr(opt_b, plan.lr.lr_at(i))
        loss_step(model_a, opt_a, batch)
        loss_step(model_b, opt_b, batch)
        with torch.no_grad():
            worst = max(worst, (model_a(probe) - model_b(probe)).abs().max().item())
    assert worst <= 1e-9 and plan.lr.lr_at(IPE * EPOCHS - 1) == pytest.approx(0.1 * 0.01)
    assert max(g["lr"] for g in opt_b.param_groups) > 0.1 * 0.01  # SI groups run on the grown TEXP LR


def converted_pycls_cfg(tmp_path) -> tuple[CfgNode, object]:
    original = tmp_path / "cifar.yaml"
    original.write_text(ORIGINAL)
    out = tmp_path / "cifar_explr.yaml"
    converted = explr.convert(str(original), model=MODEL, iters_per_epoch=IPE)
    write_converted(converted, str(out))
    cfg = pycls_cfg()
    add_explr_config(cfg)
    cfg.merge_from_file(str(out))
    return cfg, converted.plan


def test_mixed_precision_skipped_steps_keep_the_epoch_lr_of_the_iteration(tmp_path, monkeypatch):
    """pycls train_epoch with TRAIN.MIXED_PRECISION: set_lr at the epoch start, then per iteration zero_grad,
    scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update(): the LR is the epoch's, skipped or not."""
    cfg, plan = converted_pycls_cfg(tmp_path)

    def side(make_optimizer):
        def build(model):
            optimizer = make_optimizer(model)
            return Side(optimizer, before=lambda i: set_lr(optimizer, plan.lr.lr_at(i)) if i % IPE == 0 else None)
        return build

    original = side(lambda model: pycls_optimizer(model, cfg))
    converted = side(lambda model: construct_optimizer(model, cfg, iters_per_epoch=IPE))
    skips = {0, 3, 7, 8, 15, 16, 17, 33, 40}
    assert compare_amp_runs(original, converted, IPE * EPOCHS, skips) <= 1e-12
    monkeypatch.setattr(explr.TEXP, "catch_up", lambda self, index, most: None)  # the optimizer hook alone lags
    assert compare_amp_runs(original, converted, IPE * EPOCHS, skips) > 1e-6


def test_without_the_explr_node_it_is_a_clear_error():
    cfg = pycls_cfg()
    cfg.TRAIN.DATASET = "cifar10"
    with pytest.raises(ConfigError, match="add_explr_config"):
        construct_optimizer(torch.nn.Linear(2, 2), cfg, iters_per_epoch=IPE)
