"""mmengine configs: explr's reading against mmengine's own schedulers, built and stepped as its Runner does."""
from __future__ import annotations

import pathlib

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

import explr
from explr.configs.api import write_converted
from explr.errors import ConfigError, UnsupportedError
from tests.conftest import FIXTURES

MM = FIXTURES / "configs" / "mmengine"
FASTER_RCNN = MM / "mmdetection/configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"
RESNET50 = MM / "mmpretrain/configs/resnet/resnet50_8xb32_in1k.py"
POLY_80K = MM / "mmsegmentation/configs/_base_/schedules/schedule_80k.py"
PRETRAIN_BASE = MM / "mmpretrain/configs/_base_"


def mmengine_lrs(cfg: Config, iters_per_epoch: int) -> list[float]:
    """LR of each training iteration: Runner._build_param_scheduler + ParamSchedulerHook, on a 1-parameter model."""
    return [lrs[0] for lrs in mmengine_group_lrs(cfg, iters_per_epoch, torch.nn.Linear(1, 1, bias=False))]


def mmengine_group_lrs(cfg: Config, iters_per_epoch: int, model: torch.nn.Module) -> list[list[float]]:
    """The LR of every param group at each training iteration, as mmengine's Runner and hook step them."""
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    train = cfg.train_cfg
    by_epoch_loop = train.get("type") == "EpochBasedTrainLoop" or train.get("by_epoch", False)
    length = train["max_epochs"] if by_epoch_loop else train["max_iters"]
    specs = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
    total = length * iters_per_epoch if by_epoch_loop else length
    schedulers = []
    for spec in specs:
        spec = dict(spec)
        if isinstance(spec["type"], str):  # mmdet's scope: the test registers its class in mmengine's root
            spec["type"] = spec["type"].removeprefix("mmdet.")
        spec.setdefault("end", length if spec.get("by_epoch", True) else total)  # Runner: max_epochs / max_iters
        schedulers.append(PARAM_SCHEDULERS.build(spec, default_args=dict(optimizer=wrapper,
                                                                          epoch_length=iters_per_epoch)))
    lrs: list[list[float]] = []
    for i in range(total):
        lrs.append([group["lr"] for group in wrapper.optimizer.param_groups])
        wrapper.step()
        for scheduler in schedulers:
            if not scheduler.by_epoch:
                scheduler.step()
        if by_epoch_loop and (i + 1) % iters_per_epoch == 0:
            for scheduler in schedulers:
                if scheduler.by_epoch:
                    scheduler.step()
    return lrs


def assert_same_lrs(path: pathlib.Path, iters_per_epoch: int) -> None:
    plan = explr.convert(str(path), si=[], iters_per_epoch=iters_per_epoch).plan
    want = mmengine_lrs(Config.fromfile(str(path)), iters_per_epoch)
    assert plan.total_iters == len(want)
    for i, lr in enumerate(want):
        assert plan.lr.lr_at(i) == pytest.approx(lr, rel=1e-12, abs=1e-18), i


def test_faster_rcnn_1x_is_read_with_its_bases():
    plan = explr.convert(str(FASTER_RCNN), si=[], iters_per_epoch=7330).plan
    assert (plan.format, plan.optimizer, plan.momentum, plan.weight_decay, plan.nesterov) == (
        "mmengine", "sgd", 0.9, 1e-4, False)
    assert plan.lr.base_lr == 0.02 and plan.total_iters == 12 * 7330
    assert plan.lr.milestones == (8 * 7330, 11 * 7330) and plan.lr.gamma == 0.1
    assert (plan.lr.warmup_iters, plan.lr.warmup_factor) == (499, 0.001)  # LinearLR: end - begin - 1
    where = plan.where("lr")
    assert where.path.endswith("_base_/schedules/schedule_1x.py") and where.line == 20
    assert plan.where("total_iters").line == 2


@pytest.mark.parametrize("path, ipe", [(FASTER_RCNN, 45), (FASTER_RCNN, 42), (RESNET50, 3)])
def test_lr_per_iteration_matches_mmengine_on_real_configs(path, ipe):
    assert_same_lrs(path, ipe)  # ipe 45: the 499-iteration warmup overlaps milestone 8 (360); 42: both milestones


def write_config(tmp_path: pathlib.Path, text: str, name: str = "cfg.py") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


OPTIM = "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))\n"
SCHEDULES = {
    "cosine-warmup-per-epoch": f"_base_ = ['{PRETRAIN_BASE}/schedules/imagenet_bs256_200e_coslr_warmup.py']\n"
                               "train_cfg = dict(by_epoch=True, max_epochs=20)\n"
                               "param_scheduler = [dict(type='LinearLR', start_factor=0.25, by_epoch=True, begin=0, "
                               "end=3, convert_to_iter_based=True), dict(type='CosineAnnealingLR', T_max=17, "
                               "by_epoch=True, begin=3, end=20, eta_min=1e-3)]\n",
    "real-coslr-warmup": f"_base_ = ['{PRETRAIN_BASE}/schedules/imagenet_bs256_200e_coslr_warmup.py']\n",
    "step-constant": OPTIM + "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)\n"
                             "param_scheduler = [dict(type='ConstantLR', factor=0.5, by_epoch=False, end=7), "
                             "dict(type='StepLR', step_size=3, gamma=0.5, by_epoch=True)]\n",
    "exp-iters": OPTIM + "train_cfg = dict(type='IterBasedTrainLoop', max_iters=60)\n"
                         "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=10), "
                         "dict(type='ExponentialLR', gamma=0.97, by_epoch=False, begin=5, end=40)]\n",
    "cosine-converted": OPTIM + "train_cfg = dict(by_epoch=True, max_epochs=6)\n"
                                "param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, "
                                "convert_to_iter_based=True, eta_min_ratio=0.01)]\n",
    "poly-per-epoch": OPTIM + "train_cfg = dict(by_epoch=True, max_epochs=8)\n"
                              "param_scheduler = dict(type='PolyLR', power=0.9, eta_min=1e-4, begin=1, end=7)\n",
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_per_iteration_matches_mmengine(tmp_path, name):
    assert_same_lrs(write_config(tmp_path, SCHEDULES[name]), 4)


def test_poly_80k_of_mmsegmentation():
    assert_same_lrs(POLY_80K, 1000)


@pytest.mark.parametrize("schedulers, named", [
    ("dict(type='ReduceOnPlateauLR', monitor='loss')", "'ReduceOnPlateauLR' lowers the LR when a validation metric"),
    ("[dict(type='LinearLR', end=3), dict(type='CosineAnnealingMomentum', eta_min=0.8)]",
     "'CosineAnnealingMomentum' schedules momentum"),
    ("dict(type='CosineAnnealingParamScheduler', param_name='weight_decay')",
     "'CosineAnnealingParamScheduler' schedules weight_decay"),
    ("dict(type='WarmupPolyLR', end=3)", "'WarmupPolyLR' is not modelled"),
    ("dict(type='MultiStepLR', by_epoch=True, milestones=[2])", "by_epoch=True inside an IterBasedTrainLoop"),
    ("dict(type='OneCycleLR', eta_max=0.1, total_steps=3, by_epoch=True)", "OneCycleLR is stepped 5 times, past its"),
    ("dict(type='OneCycleLR', eta_max=[0.1, 0.2])", "OneCycleLR with one eta_max per param group"),
])
def test_unmodelled_schedulers_are_refused_by_name(tmp_path, schedulers, named):
    loop = ("dict(type='IterBasedTrainLoop', max_iters=40)" if "IterBased" in named
            else "dict(type='EpochBasedTrainLoop', max_epochs=5)")
    path = write_config(tmp_path, OPTIM + f"train_cfg = {loop}\nparam_scheduler = {schedulers}\n")
    with pytest.raises(UnsupportedError, match=named.replace("(", r"\(").replace("[", r"\[")) as caught:
        explr.convert(str(path), si=[], iters_per_epoch=4)
    assert str(caught.value).startswith(f"{path}:") and "\n" not in str(caught.value)


def test_paramwise_cfg_and_clip_grad_and_amp(tmp_path):
    path = write_config(tmp_path, "optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', "
                                  "optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4), "
                                  "clip_grad=dict(max_norm=35, norm_type=2), "
                                  "paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.5))\n"
                                  "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)\n")
    with pytest.raises(UnsupportedError, match="EXP203"):
        explr.convert(str(path), si=[], iters_per_epoch=5)
    converted = explr.convert(str(path), si=[], iters_per_epoch=5, approximate=True)
    plan = converted.plan
    assert (plan.decay.other, plan.decay.norm, plan.decay.bias) == (1e-4, 0.0, 5e-5)
    assert (plan.grad_clip_norm, plan.precision, plan.lr.decay) == (35.0, "bf16-mixed", "constant")


def test_ema_hook_is_not_exact(tmp_path):
    path = write_config(tmp_path, f"_base_ = ['{RESNET50}']\ncustom_hooks = [dict(type='EMAHook', momentum=1e-4)]\n")
    with pytest.raises(UnsupportedError, match="EXP204") as caught:
        explr.convert(str(path), si=[], iters_per_epoch=10)
    assert str(caught.value).startswith(f"{path}:2:")
    assert explr.convert(str(path), si=[], iters_per_epoch=10, approximate=True).plan.ema


def test_iterations_per_epoch_from_the_dataloader_or_asked_for():
    with pytest.raises(ConfigError, match="CocoDataset.*--iters-per-epoch"):
        explr.convert(str(FASTER_RCNN), si=[])
    with pytest.raises(ConfigError, match="--num-devices"):
        explr.convert(str(RESNET50), si=[])
    plan = explr.convert(str(RESNET50), si=[], num_devices=8).plan  # ImageNet 1281167 / (8 GPUs × 32)
    assert plan.iters_per_epoch == 5005 and plan.total_iters == 500500


def test_auto_scale_lr_when_enabled(tmp_path):
    path = write_config(tmp_path, f"_base_ = ['{RESNET50}']\nauto_scale_lr = dict(enable=True, base_batch_size=256)\n")
    with pytest.raises(ConfigError, match="auto_scale_lr.*--num-devices"):
        explr.convert(str(path), si=[], iters_per_epoch=10)
    assert explr.convert(str(path), si=[], iters_per_epoch=10, num_devices=4).plan.lr.base_lr == pytest.approx(0.05)


def test_a_config_that_raises_is_one_line_naming_the_file(tmp_path):
    path = write_config(tmp_path, "x = 1\nraise RuntimeError('boom in config')\n")
    with pytest.raises(ConfigError) as caught:
        explr.convert(str(path), si=[])
    assert str(caught.value) == f"{path}: mmengine could not load this config: RuntimeError: boom in config"


def test_written_config_inherits_the_original(tmp_path):
    converted = explr.convert(str(FASTER_RCNN), si=["conv1.weight"], iters_per_epoch=45)
    out = tmp_path / "sub" / "frcnn_explr.py"
    out.parent.mkdir()
    written = write_converted(converted, str(out))
    cfg = Config.fromfile(str(out))  # imports explr.integrations.mmengine (custom_imports)
    assert cfg.optim_wrapper.optimizer.lr == 0.02 and cfg.optim_wrapper.constructor == "ExplrOptimWrapperConstructor"
    assert cfg.model.type == "FasterRCNN" and [s["type"] for s in cfg.param_scheduler] == ["ExplrTEXPScheduler"]
    assert cfg.optim_wrapper.explr.si == ["conv1.weight"] and "_base_ = ['../" in written.text
    with pytest.raises(ConfigError, match="already converted"):
        explr.convert(str(out), si=[], iters_per_epoch=45)


def run_cli(capsys, *args):
    from explr.cli import main

    code = main(["convert", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_next_to_the_original_only_when_asked(tmp_path, capsys):
    from tests.configs.texp_harness import MODEL

    original = write_config(tmp_path, SCHEDULES["step-constant"], "train.py")
    code, out, err = run_cli(capsys, str(original), "--model", MODEL, "--iters-per-epoch", "4", "--in-place")
    written = tmp_path / "train_explr.py"
    assert code == 0 and out == "" and f"written to {written}" in err and "mmengine config" in err
    assert original.read_text() == SCHEDULES["step-constant"]  # the input is never overwritten
    cfg = Config.fromfile(str(written))
    assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4 and "conv1.weight" in cfg.optim_wrapper.explr.si
    assert run_cli(capsys, str(original), "--model", MODEL, "--iters-per-epoch", "4", "--check")[0] == 0


@pytest.mark.parametrize("text, args, message", [
    ("raise ValueError('bad value')\n", ["--iters-per-epoch", "4"],
     "mmengine could not load this config: ValueError: bad value"),
    (SCHEDULES["step-constant"], ["--iters-per-epoch", "4"], "pass --lock FILE"),  # SI unknown before training
    (OPTIM + "train_cfg = dict(by_epoch=True, max_epochs=3)\nparam_scheduler = dict(type='ReduceOnPlateauLR')\n",
     ["--iters-per-epoch", "4"], "param_scheduler type 'ReduceOnPlateauLR' lowers the LR"),
])
def test_cli_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, text, args, message):
    original = write_config(tmp_path, text, "train.py")
    out_file = tmp_path / "out.py"
    code, out, err = run_cli(capsys, str(original), *args, "-o", str(out_file))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out_file.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]
