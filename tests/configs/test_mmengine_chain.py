"""mmengine param_scheduler lists beyond one warmup + one decay, replayed by explr against mmengine's own schedulers.

The oracle builds the schedulers with mmengine's PARAM_SCHEDULERS (mmdet's QuadraticWarmupLR from a copy of its
source) and steps them as the Runner's ParamSchedulerHook does, per param group; explr's reading must give the
same LR at every iteration in float64 (|diff| <= 1e-12; the replay uses mmengine's operations, so it is 0 here).
"""
from __future__ import annotations

import dataclasses
import pathlib

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

import explr
import tests.configs.mmdet_quadratic_warmup  # noqa: F401 - registers mmdet's QuadraticWarmupLR for the oracle
from explr.configs.mmengine_chain import link_of
from explr.configs.mmengine_schedule import Loop, span_of
from explr.errors import ConfigError, UnsupportedError
from explr.integrations.scheduler import schedule_from_args
from explr.lr_schedule import schedule_args
from tests.configs.test_mmengine import MM, OPTIM, mmengine_group_lrs, mmengine_lrs, write_config

TOLERANCE = 1e-12
EPOCHS = "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)\n"
CHAINS = {
    "warmup-multistep-cosine": "[dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=7), dict(type='MultiStepLR', "
                               "milestones=[3, 6], by_epoch=True), dict(type='CosineAnnealingLR', by_epoch=True, "
                               "begin=2, eta_min=1e-3)]",
    "warmup-overlapping-cosine-eta-min": "[dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=13), "
                                         "dict(type='CosineAnnealingLR', by_epoch=True, eta_min=0.02)]",
    "warmup-poly-default-end": "[dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=5), "
                               "dict(type='PolyLR', eta_min=1e-4, power=0.9, by_epoch=False)]",
    "one-cycle-per-iteration": "dict(type='OneCycleLR', eta_max=0.3, by_epoch=False)",
    "one-cycle-three-phase-linear": "dict(type='OneCycleLR', eta_max=0.3, total_steps=10, pct_start=0.25, "
                                    "three_phase=True, anneal_strategy='linear', by_epoch=True, "
                                    "convert_to_iter_based=True)",
    "warmup-restarts": "[dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=2, convert_to_iter_based=True), "
                       "dict(type='CosineRestartLR', periods=[3, 3, 2], restart_weights=[1, 0.5, 0.2], "
                       "eta_min=1e-4, by_epoch=True, begin=2, convert_to_iter_based=True)]",
    "restarts-ratio-per-epoch": "dict(type='CosineRestartLR', periods=[4, 6], restart_weights=[1, 0.3], "
                                "eta_min_ratio=0.01, by_epoch=True)",
    "cosine-up-then-down": "[dict(type='CosineAnnealingLR', T_max=4, eta_min=1.0, begin=0, end=4, by_epoch=True, "
                           "convert_to_iter_based=True), dict(type='CosineAnnealingLR', T_max=6, eta_min=1e-5, "
                           "begin=4, end=10, by_epoch=True, convert_to_iter_based=True)]",
    "cosine-shorter-t-max-restarts": "[dict(type='CosineAnnealingLR', T_max=7, eta_min=0.01, by_epoch=False), "
                                     "dict(type='StepLR', step_size=9, gamma=0.7, by_epoch=False, begin=3)]",
    "late-warmup-end-factor-exp": "[dict(type='LinearLR', start_factor=0.5, end_factor=0.25, by_epoch=True, "
                                  "begin=2, end=5), dict(type='ExponentialLR', gamma=0.95, by_epoch=False, begin=4), "
                                  "dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=7, end=9)]",
    "yolox-style-quadratic-warmup": "[dict(type='mmdet.QuadraticWarmupLR', by_epoch=True, begin=0, end=2, "
                                    "convert_to_iter_based=True), dict(type='CosineAnnealingLR', eta_min=0.005, "
                                    "begin=2, T_max=8, end=8, by_epoch=True, convert_to_iter_based=True), "
                                    "dict(type='ConstantLR', by_epoch=True, factor=1, begin=8, end=10)]",
    "generic-param-scheduler-on-lr": "[dict(type='LinearParamScheduler', param_name='lr', start_factor=0.2, "
                                     "by_epoch=False, end=6), dict(type='MultiStepParamScheduler', param_name='lr', "
                                     "milestones=[4, 8], by_epoch=True), dict(type='ExponentialParamScheduler', "
                                     "param_name='lr', gamma=0.9, by_epoch=True, begin=8)]",
}


def max_diff(path: pathlib.Path, iters_per_epoch: int, approximate: bool = False) -> float:
    plan = explr.convert(str(path), si=[], iters_per_epoch=iters_per_epoch, approximate=approximate).plan
    want = mmengine_lrs(Config.fromfile(str(path)), iters_per_epoch)
    assert plan.total_iters == len(want)
    return max(abs(plan.lr.lr_at(i) - lr) for i, lr in enumerate(want))


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chained_schedulers_match_mmengine_every_iteration(tmp_path, name):
    path = write_config(tmp_path, OPTIM + EPOCHS + f"param_scheduler = {CHAINS[name]}\n")
    assert explr.convert(str(path), si=[], iters_per_epoch=4).plan.lr.decay == "chain"
    assert max_diff(path, 4) <= TOLERANCE


def test_each_param_group_follows_its_own_chain(tmp_path):
    """lr_mult groups: eta_min stays absolute, eta_min_ratio relative; explr replays each from the group's LR."""
    text = ("optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4), "
            "paramwise_cfg=dict(custom_keys={'1.': dict(lr_mult=0.25)}))\n" + EPOCHS +
            "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=9), "
            "dict(type='CosineRestartLR', periods=[5, 5], restart_weights=[1, 0.5], eta_min=1e-3, by_epoch=True), "
            "dict(type='CosineAnnealingLR', eta_min_ratio=0.1, by_epoch=False, begin=30)]\n")
    path = write_config(tmp_path, text)
    schedule = explr.convert(str(path), si=[], iters_per_epoch=4).plan.lr
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    initial = [group["lr"] for group in build_optim_wrapper(model, Config.fromfile(str(path)).optim_wrapper)
               .optimizer.param_groups]
    assert sorted(set(initial)) == [0.025, 0.1]
    want = mmengine_group_lrs(Config.fromfile(str(path)), 4, model)
    for column, lr in enumerate(initial):
        ours = dataclasses.replace(schedule, base_lr=lr)
        assert max(abs(ours.lr_at(i) - lrs[column]) for i, lrs in enumerate(want)) <= TOLERANCE


def test_chain_round_trips_through_the_converted_config_arguments(tmp_path):
    path = write_config(tmp_path, OPTIM + EPOCHS + f"param_scheduler = {CHAINS['warmup-restarts']}\n")
    schedule = explr.convert(str(path), si=[], iters_per_epoch=4).plan.lr
    again = schedule_from_args(schedule_args(schedule))
    assert again == schedule and [again.lr_at(i) for i in range(41)] == [schedule.lr_at(i) for i in range(41)]
    with pytest.raises(ConfigError, match="invalid schedule"):
        schedule_from_args({**schedule_args(schedule), "chain": [{"kind": "LinearLR"}]})


def test_epoch_counted_arguments_become_iterations_when_converted():
    loop = Loop(by_epoch=True, length=10, iters_per_epoch=7)
    cfg = dict(type="CosineRestartLR", periods=[3, 4], restart_weights=[1, 0.5], eta_min=0.0, by_epoch=True,
               begin=1, end=8, convert_to_iter_based=True)
    link = link_of(span_of(cfg, loop, "cfg.py:1"), "cfg.py:1")
    assert (link.begin, link.end, link.every, link.arg("periods")) == (7, 56, 1, (21, 28))
    per_epoch = link_of(span_of({**cfg, "convert_to_iter_based": False}, loop, "cfg.py:1"), "cfg.py:1")
    assert (per_epoch.begin, per_epoch.end, per_epoch.every, per_epoch.arg("periods")) == (1, 8, 7, (3, 4))


@pytest.mark.parametrize("scheduler, message", [
    ("dict(type='StepLR', gamma=0.5)", "StepLR needs step_size"),
    ("dict(type='PolyLR', gamma=0.5)", "PolyLR takes no gamma"),
    ("dict(type='PolyParamScheduler', power=2.0)", "PolyParamScheduler needs param_name"),
])
def test_arguments_mmengine_would_not_take_are_one_line(tmp_path, scheduler, message):
    path = write_config(tmp_path, OPTIM + EPOCHS + f"param_scheduler = [dict(type='LinearLR', end=2), {scheduler}]\n")
    with pytest.raises(ConfigError, match=message) as caught:
        explr.convert(str(path), si=[], iters_per_epoch=4)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_chain_mmengine_cannot_step_is_refused_naming_it(tmp_path):
    path = write_config(tmp_path, OPTIM + EPOCHS + "param_scheduler = [dict(type='LinearLR', start_factor=0.0, "
                                                   "by_epoch=False, end=5), dict(type='ExponentialLR', gamma=0.9)]\n")
    with pytest.raises(UnsupportedError, match=r"cannot step param_scheduler \[LinearLR, ExponentialLR\]"):
        explr.convert(str(path), si=[], iters_per_epoch=4)


# ---- real configs ----------------------------------------------------------------------------------------------
CYCLIC_40E = MM / "mmdetection3d/configs/_base_/schedules/cyclic-40e.py"
SRCNN = MM / "mmagic/configs/srcnn/srcnn_x4k915_1xb16-1000k_div2k.py"
YOLOX = MM / "mmdetection/configs/yolox/yolox_s_8xb8-300e_coco.py"


def test_mmdet3d_cyclic_schedule_keeps_adamws_momentum_schedulers_only_when_approximate(tmp_path):
    """AdamW is approximate anyway: its beta1 schedulers are kept as they are; with SGD they are refused."""
    with pytest.raises(UnsupportedError, match="EXP202|approximate"):
        explr.convert(str(CYCLIC_40E), si=[], iters_per_epoch=4)
    assert explr.convert(str(CYCLIC_40E), si=[], iters_per_epoch=4, approximate=True).plan.optimizer == "adamw"
    sgd = write_config(tmp_path, f"_base_ = ['{CYCLIC_40E}']\n"
                                 "optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9))\n")
    with pytest.raises(UnsupportedError, match="'CosineAnnealingMomentum' schedules momentum") as caught:
        explr.convert(str(sgd), si=[], iters_per_epoch=4, approximate=True)
    assert str(caught.value).startswith(str(CYCLIC_40E))


def test_mmdet3d_cyclic_lr_schedulers_alone_match_mmengine(tmp_path):
    """The real file's two LR cosines (up to 10x lr, then down to 1e-4 x lr) with its momentum schedulers dropped."""
    path = write_config(tmp_path, f"_base_ = ['{CYCLIC_40E}']\nparam_scheduler = _base_.param_scheduler[:2]\n")
    assert max_diff(path, 3, approximate=True) <= TOLERANCE


def test_mmagic_cosine_restarts_match_mmengine(tmp_path):
    """The real SRCNN config (Adam, CosineRestartLR: 4 periods of 250k iterations, eta_min 1e-7), its periods and
    max_iters shortened 500-fold to keep the oracle fast."""
    path = write_config(tmp_path, f"_base_ = ['{SRCNN}']\ntrain_cfg = dict(max_iters=2000)\n"
                                  "param_scheduler = dict(periods=[500, 500, 500, 500])\n")
    schedule = explr.convert(str(path), si=[], iters_per_epoch=1, approximate=True).plan.lr
    assert schedule.chain[0].to_dict() == {"kind": "CosineRestartLR", "begin": 0, "end": 2000, "every": 1, "args": {
        "eta_min": 1e-7, "periods": [500] * 4, "restart_weights": [1] * 4}}
    assert max_diff(path, 1, approximate=True) <= TOLERANCE


def test_yolox_quadratic_warmup_cosine_and_constant_match_mmdet(tmp_path):
    schedule = explr.convert(str(YOLOX), si=[], iters_per_epoch=5, approximate=True).plan.lr
    assert [link.kind for link in schedule.chain] == ["QuadraticWarmupLR", "CosineAnnealingLR", "ConstantLR"]
    path = write_config(tmp_path, f"_base_ = ['{YOLOX}']\ntrain_cfg = dict(max_epochs=30)\n")
    assert max_diff(path, 5, approximate=True) <= TOLERANCE
