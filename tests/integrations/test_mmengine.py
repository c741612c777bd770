"""A converted mmengine config trains the same network as the original, through mmengine's own Runner.

Both runs are built by mmengine (Runner: build_optim_wrapper with the config's constructor, param
schedulers through PARAM_SCHEDULERS with epoch_length, ParamSchedulerHook stepping them) from the
original config and from explr's converted config (which inherits it); float64, BatchNorm eps 1e-30.
"""
from __future__ import annotations

import copy
import logging
import pathlib

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner

import explr
from explr.configs.api import write_converted
from explr.errors import ConfigError
from explr.integrations.mmengine import ExplrOptimWrapperConstructor
from explr.schedule.groups import SI_TAG
from tests.configs.texp_harness import MODEL, batches, fixture_model
from tests.conftest import FIXTURES

FASTER_RCNN = FIXTURES / "configs/mmengine/mmdetection/configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"


class Classifier(BaseModel):
    """The fixture network as an mmengine model: forward(inputs, labels, mode) -> {"loss": ...}."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, inputs, labels, mode="loss"):
        return {"loss": torch.nn.functional.cross_entropy(self.net(inputs), labels)}


class OverflowingClassifier(Classifier):
    """The classifier whose loss is multiplied by inf at the chosen training iterations: a real overflow."""

    def __init__(self, net: torch.nn.Module, skips: frozenset):
        super().__init__(net)
        self.skips, self.iteration = skips, -1

    def forward(self, inputs, labels, mode="loss"):
        self.iteration += 1
        loss = super().forward(inputs, labels, mode)["loss"]
        return {"loss": loss * (float("inf") if self.iteration in self.skips else 1.0)}


class RecordOutputs(Hook):
    def __init__(self, probe: torch.Tensor):
        self.probe, self.outputs, self.lrs = probe, [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append([g["lr"] for g in runner.optim_wrapper.optimizer.param_groups])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.runner = runner
        with torch.no_grad():
            self.outputs.append(runner.model.net(self.probe).clone())


def train(cfg: Config, net: torch.nn.Module, data: list, work_dir: pathlib.Path, max_epochs: int,
          checkpoint: dict | None = None, resume: str | None = None, skips: frozenset = frozenset()) -> RecordOutputs:
    recorder = RecordOutputs(batches(1)[0][0])
    runner = Runner(model=OverflowingClassifier(net, skips), work_dir=str(work_dir), default_scope="mmengine",
                    train_dataloader=torch.utils.data.DataLoader(data, batch_size=None),
                    train_cfg=dict(by_epoch=True, max_epochs=max_epochs), optim_wrapper=cfg.optim_wrapper,
                    param_scheduler=cfg.param_scheduler, custom_hooks=[recorder],
                    default_hooks=dict(checkpoint=checkpoint, logger=None, sampler_seed=None), log_level="ERROR",
                    resume=resume is not None, load_from=resume)
    runner.train()
    return recorder


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "original.py"
    path.write_text(text)
    return path


AGGRESSIVE = ("optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9, dampening=0.2, "
              "weight_decay=5e-3), paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={'fc': dict(lr_mult=0.5)}))\n"
              "train_cfg = dict(by_epoch=True, max_epochs=6)\n"
              "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=5), "
              "dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=5, eta_min=1e-3)]\n")


LAZY_IMPORT = ("from mmengine.optim import OptimWrapper\nfrom mmengine.optim.scheduler import LinearLR, MultiStepLR\n"
               "from mmengine.runner import EpochBasedTrainLoop\nfrom torch.optim import SGD\n\n"
               "optim_wrapper = dict(type=OptimWrapper, optimizer=dict(type=SGD, lr=0.1, momentum=0.9, "
               "weight_decay=5e-3))\ntrain_cfg = dict(type=EpochBasedTrainLoop, max_epochs=12)\n"
               "param_scheduler = [dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=50), "
               "dict(type=MultiStepLR, by_epoch=True, milestones=[8, 11], begin=0, end=12)]\n")


CHAINED = ("optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=5e-3), "
           "paramwise_cfg=dict(custom_keys={'fc': dict(lr_mult=0.5)}))\ntrain_cfg = dict(by_epoch=True, max_epochs=6)\n"
           "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=5), "
           "dict(type='CosineRestartLR', periods=[2, 2, 2], restart_weights=[1, 0.5, 0.25], eta_min=1e-3, "
           "by_epoch=True, convert_to_iter_based=True), dict(type='MultiStepLR', milestones=[3], gamma=0.5)]\n")
ONE_CYCLE = ("optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2), "
             "paramwise_cfg=dict(custom_keys={'fc': dict(lr_mult=0.5)}))\ntrain_cfg = dict(by_epoch=True, max_epochs=5)\n"
             "param_scheduler = dict(type='OneCycleLR', eta_max=0.3, by_epoch=False)\n")


@pytest.mark.parametrize("original, ipe, epochs", [(None, 45, 12), (AGGRESSIVE, 5, 6), (LAZY_IMPORT, 5, 12),
                                                   (CHAINED, 5, 6), (ONE_CYCLE, 5, 5)],
                         ids=["faster-rcnn-1x", "cosine-paramwise", "pure-python-style", "chained-restarts",
                              "one-cycle"])
def test_converted_config_trains_the_same_network(tmp_path, original, ipe, epochs):
    path = FASTER_RCNN if original is None else write(tmp_path, original)
    converted = explr.convert(str(path), model=MODEL, iters_per_epoch=ipe)
    out = tmp_path / "converted_explr.py"
    write_converted(converted, str(out))
    data = batches(ipe)
    net = fixture_model()
    runs = [train(Config.fromfile(str(p)), copy.deepcopy(net), data, tmp_path / name, epochs)
            for p, name in ((path, "a"), (out, "b"))]
    original_run, converted_run = runs
    assert len(original_run.outputs) == ipe * epochs
    worst = max((a - b).abs().max().item() for a, b in zip(original_run.outputs, converted_run.outputs))
    assert worst <= 1e-9
    first_lrs = [lrs[0] for lrs in original_run.lrs]  # the original LR per iteration is explr's reading
    assert first_lrs == pytest.approx([converted.plan.lr.lr_at(i) for i in range(ipe * epochs)], rel=1e-12)
    grown = [lr for lrs in converted_run.lrs[-1:] for lr in lrs]
    assert max(grown) > max(original_run.lrs[-1])  # SI groups did run on the growing TEXP LR
    with pytest.raises(ConfigError, match="already converted"):
        explr.convert(str(out), si=[], iters_per_epoch=ipe)


def test_resuming_a_converted_run_from_an_mmengine_checkpoint_continues_it_exactly(tmp_path, monkeypatch):
    """The Runner's checkpoint holds the split optimizer and the TEXP scheduler's phantom; resuming continues."""
    # mmengine 0.10's resume calls torch.load without weights_only, which torch >= 2.6 refuses for its own
    # HistoryBuffer (any mmengine resume, converted or not); torch's documented switch restores the old default.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = write(tmp_path, AGGRESSIVE)
    out = tmp_path / "converted_explr.py"
    write_converted(explr.convert(str(path), model=MODEL, iters_per_epoch=5), str(out))
    data, net = batches(5), fixture_model()
    whole = train(Config.fromfile(str(out)), copy.deepcopy(net), data, tmp_path / "whole", 6)
    train(Config.fromfile(str(out)), copy.deepcopy(net), data, tmp_path / "first", 3,
          checkpoint=dict(type="CheckpointHook", interval=3))
    rest = train(Config.fromfile(str(out)), copy.deepcopy(net), data, tmp_path / "rest", 6,
                 resume=str(tmp_path / "first" / "epoch_3.pth"))
    assert len(rest.outputs) == 15 and rest.lrs[0] == whole.lrs[15]
    assert (rest.outputs[-1] - whole.outputs[-1]).abs().max().item() <= 1e-9


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_amp_optim_wrapper_skipped_steps_keep_the_converted_run_on_the_original(tmp_path, monkeypatch):
    """mmengine's own AmpOptimWrapper (update_params: loss_scaler.scale(loss).backward(), loss_scaler.step,
    loss_scaler.update) under the Runner; ParamSchedulerHook.after_train_iter steps every by_epoch=False
    scheduler each iteration, skipped or not. AmpOptimWrapper asserts a GPU and builds torch.cuda.amp.GradScaler:
    on this CPU machine the assert is lifted and it gets torch.amp.GradScaler("cpu"); the rest is mmengine's."""
    module = "mmengine.optim.optimizer.amp_optimizer_wrapper"
    monkeypatch.setattr(f"{module}.is_cuda_available", lambda: True)
    monkeypatch.setattr(f"{module}.GradScaler", lambda: torch.amp.GradScaler("cpu", init_scale=2.0 ** 10,
                                                                             growth_interval=5))
    path = write(tmp_path, AGGRESSIVE.replace("optim_wrapper = dict(", "optim_wrapper = dict(type='AmpOptimWrapper', "))
    out = tmp_path / "converted_explr.py"
    write_converted(explr.convert(str(path), model=MODEL, iters_per_epoch=5), str(out))
    assert Config.fromfile(str(out)).optim_wrapper.type == "AmpOptimWrapper"
    skips, data, net = frozenset({0, 3, 4, 5, 9, 17, 24}), batches(5), fixture_model()
    original, converted = (train(Config.fromfile(str(p)), copy.deepcopy(net), data, tmp_path / name, 6, skips=skips)
                           for p, name in ((path, "a"), (out, "b")))
    assert len(original.outputs) == 30
    worst = max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(original.outputs, converted.outputs))
    assert worst <= 1e-12
    texp = next(s.texp for s in converted.runner.param_schedulers if hasattr(s, "texp"))
    assert texp.skipped_steps == sorted(skips) and texp.optimizer_steps == 30 - len(skips)


def test_a_dataloader_of_another_length_than_converted_for_is_refused(tmp_path):
    """Epochs were turned into iterations at convert time: another GPU count must not shift the milestones."""
    path = write(tmp_path, AGGRESSIVE)
    out = tmp_path / "converted_explr.py"
    write_converted(explr.convert(str(path), model=MODEL, iters_per_epoch=5), str(out))
    with pytest.raises(ConfigError, match="converted for 5 iterations per epoch, but the train dataloader has 4"):
        train(Config.fromfile(str(out)), fixture_model(), batches(4), tmp_path / "run", 1)


def test_constructor_splits_mmengine_groups_and_keeps_their_decay():
    net = Classifier(fixture_model())
    constructor = ExplrOptimWrapperConstructor(
        dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4), explr=dict(si=["conv1.weight"])),
        dict(norm_decay_mult=0.0))
    groups = constructor(net).optimizer.param_groups
    tagged = [g for g in groups if g.get(SI_TAG)]
    assert [p is net.net.conv1.weight for g in tagged for p in g["params"]] == [True]
    assert tagged[0]["weight_decay"] == 0.0 and tagged[0]["explr_weight_decay"] == 1e-4
    bn = next(g for g in groups if g["params"][0] is net.net.bn1.weight)
    assert bn["weight_decay"] == 0.0 and not bn[SI_TAG]  # norm_decay_mult=0, applied by mmengine's constructor


def test_constructor_and_scheduler_refuse_misuse():
    with pytest.raises(ConfigError, match="exactly one of si"):
        ExplrOptimWrapperConstructor(dict(optimizer=dict(type="SGD", lr=0.1), explr=dict()))
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
                      param_scheduler=[dict(type="ExplrTEXPScheduler", schedule=dict(base_lr=0.1, total_iters=4))]))
    with pytest.raises(ConfigError, match="ExplrOptimWrapperConstructor"):
        train(cfg, fixture_model(), batches(2), pathlib.Path("/tmp/explr-mm-misuse"), 1)


@pytest.fixture(autouse=True)
def quiet_mmengine():
    yield
    MMLogger.get_current_instance().setLevel(logging.ERROR)


class RecordBetas(RecordOutputs):
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        super().before_train_iter(runner, batch_idx, data_batch)
        self.outputs.append([(g["betas"][0], g.get(SI_TAG, False)) for g in runner.optim_wrapper.optimizer.param_groups])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        pass


def test_kept_momentum_schedulers_move_adamws_beta1_as_in_the_original(tmp_path, monkeypatch):
    """mmdetection3d's cyclic-40e (AdamW, two LR cosines, two CosineAnnealingMomentum), converted under
    --approximate: the converted config runs the momentum schedulers unchanged, so beta1 of every group follows
    the original's at each iteration, and the groups left off TEXP keep the original LR."""
    cyclic = FIXTURES / "configs/mmengine/mmdetection3d/configs/_base_/schedules/cyclic-40e.py"
    path = write(tmp_path, f"_base_ = ['{cyclic}']\n")
    converted = explr.convert(str(path), model=MODEL, iters_per_epoch=2, approximate=True)
    out = tmp_path / "converted_explr.py"
    write_converted(converted, str(out))
    monkeypatch.setattr("tests.integrations.test_mmengine.RecordOutputs", RecordBetas)
    net, data = fixture_model(), batches(2)
    original, texp = [train(Config.fromfile(str(p)), copy.deepcopy(net), data, tmp_path / n, 40)
                      for p, n in ((path, "a"), (out, "b"))]
    betas = [groups[0][0] for groups in original.outputs]  # the original has one param group
    assert len(texp.outputs) == len(betas) == 80 and len(set(betas)) > 10  # beta1 did move
    assert all(beta == betas[i] for i, groups in enumerate(texp.outputs) for beta, _ in groups)
    non_si = [i for i, (_, si) in enumerate(texp.outputs[0]) if not si]
    assert non_si and all(lrs[i] == pytest.approx(ref[0], rel=1e-12)
                          for lrs, ref in zip(texp.lrs, original.lrs) for i in non_si)
