"""detectron2 idiom: add_explr_config + ExplrTrainerMixin, on fvcore's CfgNode (detectron2's base class).

detectron2 itself does not install here: a CfgNode of detectron2's SOLVER defaults stands in for
get_cfg(), and a minimal trainer base class stands in for DefaultTrainer (only for the inheritance).
The converted YAML inherits the original through `_BASE_`, merged by fvcore's own merge_from_file.
"""
from __future__ import annotations

import pathlib

import pytest
import torch
from fvcore.common.config import CfgNode

import explr
from explr.configs.api import write_converted
from explr.configs.detectron2 import DEFAULTS
from explr.errors import ConfigError
from explr.integrations.detectron2 import ExplrTrainerMixin, add_explr_config, plan_of
from explr.integrations.native import build_from_plan, original_optimizer
from explr.load import load_model
from explr.schedule.groups import ORIGINAL_WD, SI_TAG
from tests.integrations import detectron2_solver
from tests.configs.texp_harness import MODEL
from tests.integrations.harness import Side, compare_amp_runs, compare_runs
from tests.conftest import FIXTURES

D2 = FIXTURES / "configs" / "detectron2"


def get_cfg() -> CfgNode:
    """Stand-in for detectron2.config.get_cfg(): its SOLVER defaults; other sections accepted as given."""
    cfg = CfgNode({"SOLVER": {k: (CfgNode(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()},
                   "DATASETS": {"TRAIN": ()}})
    cfg.set_new_allowed(True)
    return cfg


class DefaultTrainer:
    """Stand-in for detectron2.engine.DefaultTrainer's classmethods the mixin overrides."""

    @classmethod
    def build_optimizer(cls, cfg, model):
        raise AssertionError("the mixin must override build_optimizer")

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        raise AssertionError("the mixin must override build_lr_scheduler")


class Trainer(ExplrTrainerMixin, DefaultTrainer):
    pass


def converted_cfg(tmp_path: pathlib.Path, original: pathlib.Path) -> CfgNode:
    out = tmp_path / "converted.yaml"
    write_converted(explr.convert(str(original), model=MODEL), str(out))
    cfg = get_cfg()
    add_explr_config(cfg)
    cfg.merge_from_file(str(out))
    return cfg


def test_trainer_with_the_mixin_trains_the_weight_decay_run(tmp_path):
    original = tmp_path / "short.yaml"
    original.write_text(f"_BASE_: {D2 / 'COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml'}\n"
                        "SOLVER:\n  BASE_LR: 0.1\n  WEIGHT_DECAY: 0.005\n  STEPS: (25, 45)\n  MAX_ITER: 60\n"
                        "  WARMUP_ITERS: 10\n")
    cfg = converted_cfg(tmp_path, original)
    plan = plan_of(cfg)
    assert (plan.lr.base_lr, plan.lr.milestones, plan.lr.warmup_iters, plan.decay.norm) == (0.1, (25, 45), 10, 0.0)

    def converted(model):
        optimizer = Trainer.build_optimizer(cfg, model)
        return optimizer, Trainer.build_lr_scheduler(cfg, optimizer)

    worst, scheduler = compare_runs(
        lambda model: original_optimizer(model, plan),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda i: plan.lr.lr_at(i) / plan.lr.base_lr),
        converted, steps=60, iters_per_epoch=1)  # detectron2's LRScheduler hook steps every iteration
    assert worst <= 1e-9 and scheduler.bound and scheduler.texp.last_epoch == 60


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_amp_trainer_skipped_steps_move_the_lr_as_detectron2s_hook_does(tmp_path, monkeypatch):
    """detectron2's AMPTrainer.run_step: zero_grad, grad_scaler.scale(losses).backward(), grad_scaler.step,
    grad_scaler.update; then hooks.LRScheduler.after_step calls scheduler.step() every iteration, skipped or not."""
    original = tmp_path / "short.yaml"
    original.write_text(f"_BASE_: {D2 / 'COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml'}\n"
                        "SOLVER:\n  BASE_LR: 0.1\n  WEIGHT_DECAY: 0.005\n  STEPS: (25, 45)\n  MAX_ITER: 60\n"
                        "  WARMUP_ITERS: 10\n")
    cfg = converted_cfg(tmp_path, original)
    plan, made = plan_of(cfg), {}

    def original_side(model):
        optimizer = original_optimizer(model, plan)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: plan.lr.lr_at(i) / plan.lr.base_lr)
        return Side(optimizer, after=lambda i: scheduler.step())

    def converted_side(model):
        optimizer = Trainer.build_optimizer(cfg, model)
        scheduler = made["scheduler"] = Trainer.build_lr_scheduler(cfg, optimizer)
        return Side(optimizer, after=lambda i: scheduler.step())

    skips = {0, 4, 9, 10, 24, 25, 26, 44, 59}
    assert compare_amp_runs(original_side, converted_side, 60, skips) <= 1e-12
    assert made["scheduler"].texp.skipped_steps == sorted(skips) and made["scheduler"].texp.last_epoch == 60
    monkeypatch.setattr(explr.TEXP, "catch_up", lambda self, index, most: None)  # the optimizer hook alone lags
    assert compare_amp_runs(original_side, converted_side, 60, skips) > 1e-6


def test_converted_yaml_inherits_the_original_and_keeps_every_solver_key(tmp_path):
    original = D2 / "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"
    cfg = converted_cfg(tmp_path, original)
    plain = get_cfg()
    plain.merge_from_file(str(original))
    assert cfg.SOLVER == plain.SOLVER and cfg.MODEL == plain.MODEL
    assert "conv1.weight" in cfg.EXPLR.PARAMS and cfg.EXPLR.LOCK == "" and cfg.EXPLR.APPROXIMATE is False
    assert plan_of(cfg).lr == explr.convert(str(original)).plan.lr


def test_misuse_is_a_clear_error(tmp_path):
    cfg = get_cfg()
    with pytest.raises(ConfigError, match="add_explr_config"):
        Trainer.build_optimizer(cfg, torch.nn.Linear(2, 2))
    add_explr_config(cfg)
    with pytest.raises(ConfigError, match="exactly one of LOCK"):
        Trainer.build_optimizer(cfg, torch.nn.Linear(2, 2))
    cfg.EXPLR.PARAMS = ["weight"]
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED, cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = True, "norm"
    with pytest.raises(ConfigError, match="CLIP_GRADIENTS is enabled"):  # never a silently unclipped run
        Trainer.build_optimizer(cfg, torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="put the mixin first"):
        Trainer.build_lr_scheduler(cfg, torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1))


D2_NORMS = FIXTURES / "models" / "detectron2_norms.py"
SOLVERS = {
    "norm-0": "  WEIGHT_DECAY: 0.0001\n  WEIGHT_DECAY_NORM: 0.0\n",
    "norm-and-bias-0": "  WEIGHT_DECAY: 0.0001\n  WEIGHT_DECAY_NORM: 0.0\n  WEIGHT_DECAY_BIAS: 0.0\n",
    "norm-own-decay": "  WEIGHT_DECAY: 0.0005\n  WEIGHT_DECAY_NORM: 0.0002\n",
}


def per_parameter(optimizer: torch.optim.Optimizer, model: torch.nn.Module, key: str = "weight_decay") -> dict:
    """name -> the group's `key`; for weight decay, the one the run applies or, on TEXP, its phantom keeps."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g[ORIGINAL_WD] if key == "weight_decay" and g.get(SI_TAG) else g[key]
            for g in optimizer.param_groups for p in g["params"]}


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_weight_decay_of_each_parameter_is_detectron2s_own_grouping(tmp_path, solver):
    """detectron2's get_default_optimizer_params (copied) decides: its channels-first LayerNorm and RMSNorm keep
    WEIGHT_DECAY, its NaiveSyncBatchNorm (a BatchNorm2d), GroupNorm and torch's LayerNorm get WEIGHT_DECAY_NORM."""
    original = tmp_path / "train.yaml"
    original.write_text(f"_BASE_: {D2 / 'COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml'}\nSOLVER:\n"
                        "  BASE_LR: 0.02\n  MAX_ITER: 100\n  STEPS: (50,)\n" + SOLVERS[solver])
    cfg = get_cfg()
    cfg.merge_from_file(str(original))
    model = load_model(str(D2_NORMS)).model
    detectron2, plan = detectron2_solver.optimizer_of(cfg, model), plan_of(cfg)
    original = original_optimizer(model, plan)
    for key in ("weight_decay", "lr", "momentum", "nesterov"):
        assert per_parameter(original, model, key) == per_parameter(detectron2, model, key), key
    want = per_parameter(detectron2, model)
    si = ["conv.weight", "sync_bn.weight", "sync_bn.bias", "ln.weight", "ln.bias"]
    converted, _ = build_from_plan(model, plan, si=si)
    assert per_parameter(converted, model) == want  # the converted run: SI groups keep it for their phantom
    wd, norm = cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.WEIGHT_DECAY_NORM
    assert want["ln.weight"] == want["rms.weight"] == want["cycled.weight"] == wd != norm
    assert want["sync_bn.weight"] == want["gn.weight"] == want["token_ln.weight"] == norm
