"""pycls configs read by explr vs the same configs loaded by a yacs-compatible CfgNode over pycls's defaults and
scheduled by pycls's own LR functions, at every epoch and iteration.

pycls is not on PyPI; its config is a yacs CfgNode, and fvcore's CfgNode is the same class (a subclass of yacs'),
so merging the real fixture files with fvcore decides what the YAML means. The LR functions below are
pycls/core/optimizer.py (facebookresearch/pycls @5719de6) line for line, reading the merged cfg; trainer.py
train_epoch sets get_epoch_lr(cur_epoch) once at the start of each epoch.
"""
import pathlib

import numpy as np
import pytest
from fvcore.common.config import CfgNode

from explr.configs.adapter import DATASET_SIZES, ReadOptions
from explr.configs.pycls import ADAPTER
from explr.configs.source import ConfigSource
from explr.errors import UnsupportedError

REAL = pathlib.Path(__file__).resolve().parents[2] / "fixtures/configs/pycls/real"
REL = 1e-12


def pycls_defaults() -> CfgNode:
    """pycls/core/config.py: the OPTIM, BN, LN, TRAIN keys explr reads (verbatim defaults); the rest is free-form."""
    cfg = CfgNode(new_allowed=True)
    cfg.OPTIM = CfgNode({
        "OPTIMIZER": "sgd", "BASE_LR": 0.1, "MIN_LR": 0.0, "LR_POLICY": "cos", "STEPS": [], "LR_MULT": 0.1,
        "MAX_EPOCH": 200, "MOMENTUM": 0.9, "DAMPENING": 0.0, "NESTEROV": True, "BETA1": 0.9, "BETA2": 0.999,
        "WEIGHT_DECAY": 5e-4, "BIAS_USE_CUSTOM_WEIGHT_DECAY": False, "BIAS_CUSTOM_WEIGHT_DECAY": 0.0,
        "WARMUP_FACTOR": 0.1, "WARMUP_EPOCHS": 0, "EMA_ALPHA": 1e-5, "EMA_UPDATE_PERIOD": 32, "MTA": False})
    cfg.BN = CfgNode({"EPS": 1e-5, "MOM": 0.1, "USE_PRECISE_STATS": True, "NUM_SAMPLES_PRECISE": 8192,
                      "ZERO_INIT_FINAL_GAMMA": False, "USE_CUSTOM_WEIGHT_DECAY": False, "CUSTOM_WEIGHT_DECAY": 0.0})
    cfg.LN = CfgNode({"EPS": 1e-5, "USE_CUSTOM_WEIGHT_DECAY": False, "CUSTOM_WEIGHT_DECAY": 0.0})
    cfg.TRAIN = CfgNode({"DATASET": "", "SPLIT": "train", "BATCH_SIZE": 128}, new_allowed=True)
    cfg.NUM_GPUS = 1
    return cfg


def load(path: pathlib.Path) -> CfgNode:
    cfg = pycls_defaults()
    cfg.merge_from_file(str(path))
    return cfg


def get_epoch_lr(cfg: CfgNode, cur_epoch: int) -> float:
    """pycls/core/optimizer.py lr_fun_steps / lr_fun_exp / lr_fun_cos / lr_fun_lin and get_epoch_lr."""
    def lr_fun_steps(cur_epoch):
        ind = [i for i, s in enumerate(cfg.OPTIM.STEPS) if cur_epoch >= s][-1]
        return cfg.OPTIM.LR_MULT ** ind

    def lr_fun_exp(cur_epoch):
        return cfg.OPTIM.MIN_LR ** (cur_epoch / cfg.OPTIM.MAX_EPOCH)

    def lr_fun_cos(cur_epoch):
        lr = 0.5 * (1.0 + np.cos(np.pi * cur_epoch / cfg.OPTIM.MAX_EPOCH))
        return (1.0 - cfg.OPTIM.MIN_LR) * lr + cfg.OPTIM.MIN_LR

    def lr_fun_lin(cur_epoch):
        lr = 1.0 - cur_epoch / cfg.OPTIM.MAX_EPOCH
        return (1.0 - cfg.OPTIM.MIN_LR) * lr + cfg.OPTIM.MIN_LR

    lr_fun = {"steps": lr_fun_steps, "exp": lr_fun_exp, "cos": lr_fun_cos, "lin": lr_fun_lin}[cfg.OPTIM.LR_POLICY]
    lr = lr_fun(cur_epoch) * cfg.OPTIM.BASE_LR
    if cur_epoch < cfg.OPTIM.WARMUP_EPOCHS:
        alpha = cur_epoch / cfg.OPTIM.WARMUP_EPOCHS
        warmup_factor = cfg.OPTIM.WARMUP_FACTOR * (1.0 - alpha) + alpha
        lr *= warmup_factor
    return lr


def pycls_weight_decays(cfg: CfgNode) -> dict[str, float]:
    """pycls/core/optimizer.py construct_optimizer: the first of "bn", "ln", "bias", "" in the name picks the decay."""
    wd = cfg.OPTIM.WEIGHT_DECAY
    wds = [cfg.BN.CUSTOM_WEIGHT_DECAY if cfg.BN.USE_CUSTOM_WEIGHT_DECAY else wd,
           cfg.LN.CUSTOM_WEIGHT_DECAY if cfg.LN.USE_CUSTOM_WEIGHT_DECAY else wd,
           cfg.OPTIM.BIAS_CUSTOM_WEIGHT_DECAY if cfg.OPTIM.BIAS_USE_CUSTOM_WEIGHT_DECAY else wd, wd]
    names = ("conv.weight", "bn.weight", "bn.bias", "ln.weight", "fc.bias")
    return {n: wds[[k for k, x in enumerate(["bn", "ln", "bias", ""]) if x in n][0]] for n in names}


def iters_per_epoch(cfg: CfgNode) -> int:
    """Each of NUM_GPUS loaders drops its last partial batch of TRAIN.BATCH_SIZE / NUM_GPUS (pycls/datasets/loader)."""
    per_gpu = -(-DATASET_SIZES[cfg.TRAIN.DATASET] // cfg.NUM_GPUS)  # DistributedSampler pads to equal shards
    return per_gpu // (cfg.TRAIN.BATCH_SIZE // cfg.NUM_GPUS)


def check_against_pycls(path: pathlib.Path) -> None:
    cfg = load(path)
    plan = ADAPTER.read(ConfigSource.load(path), ReadOptions())
    ipe = iters_per_epoch(cfg)
    assert (plan.iters_per_epoch, plan.total_iters) == (ipe, cfg.OPTIM.MAX_EPOCH * ipe)
    inside = range(ipe) if plan.total_iters <= 1_000_000 else (0, 1, ipe // 2, ipe - 1)  # keep the suite fast
    for epoch in range(cfg.OPTIM.MAX_EPOCH):
        want = get_epoch_lr(cfg, epoch)
        got = {plan.lr.lr_at(epoch * ipe + j) for j in inside}  # the LR is set once, at the start of the epoch
        assert len(got) == 1 and abs(got.pop() - want) <= REL * want, (epoch, want)
    hyper = (plan.optimizer, plan.momentum, plan.dampening, plan.nesterov)
    assert hyper == (cfg.OPTIM.OPTIMIZER, cfg.OPTIM.MOMENTUM, cfg.OPTIM.DAMPENING, cfg.OPTIM.NESTEROV)
    kinds = {"conv.weight": "other", "bn.weight": "norm", "bn.bias": "norm", "ln.weight": "norm", "fc.bias": "bias"}
    assert {n: plan.decay.for_kind(k) for n, k in kinds.items()} == pycls_weight_decays(cfg)


REFUSED = {"configs/fsdp/example.yaml": r"example.yaml:30: layer-norm parameters get another weight decay"}


@pytest.mark.parametrize("path", sorted(p for p in REAL.rglob("*.yaml") if str(p.relative_to(REAL)) not in REFUSED),
                         ids=lambda p: str(p.relative_to(REAL)))
def test_real_config_reads_as_pycls_runs_it(path):
    check_against_pycls(path)


VARIANTS = {
    "steps_warmup": "LR_POLICY: steps\n  STEPS: [0, 3, 7]\n  LR_MULT: 0.2\n  WARMUP_EPOCHS: 2\n  WARMUP_FACTOR: 0.05",
    "exp": "LR_POLICY: exp\n  MIN_LR: 0.01",
    "lin_min_lr": "LR_POLICY: lin\n  MIN_LR: 0.05\n  WARMUP_EPOCHS: 3",
    "cos_min_lr": "LR_POLICY: cos\n  MIN_LR: 0.001\n  WARMUP_EPOCHS: 1\n  WARMUP_FACTOR: 0.5",
    "custom_decays": "WEIGHT_DECAY: 1e-4\n  BIAS_USE_CUSTOM_WEIGHT_DECAY: True\n  BIAS_CUSTOM_WEIGHT_DECAY: 0.0\n"
                     "BN:\n  USE_CUSTOM_WEIGHT_DECAY: True\n  CUSTOM_WEIGHT_DECAY: 0.0\n"
                     "LN:\n  USE_CUSTOM_WEIGHT_DECAY: True\n  CUSTOM_WEIGHT_DECAY: 0.0",
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_lr_policies_match_pycls_every_iteration(tmp_path, variant):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"TRAIN:\n  DATASET: cifar10\n  BATCH_SIZE: 500\nNUM_GPUS: 2\nOPTIM:\n  BASE_LR: 0.4\n"
                    f"  MAX_EPOCH: 10\n  {VARIANTS[variant]}\n")
    check_against_pycls(path)


def test_layer_norm_decay_other_than_batch_norm_is_refused(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("TRAIN:\n  DATASET: cifar10\nOPTIM:\n  MAX_EPOCH: 10\nLN:\n  USE_CUSTOM_WEIGHT_DECAY: True\n")
    with pytest.raises(UnsupportedError, match=r"layer-norm parameters get another weight decay"):
        ADAPTER.read(ConfigSource.load(path), ReadOptions())


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_real_config_refused_for_the_right_reason(name):
    with pytest.raises(UnsupportedError, match=REFUSED[name]):
        ADAPTER.read(ConfigSource.load(REAL / name), ReadOptions())
