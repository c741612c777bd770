"""timm idiom: the converted args.yaml keeps timm's keys plus `explr:`; create_scheduler replaces one line.

timm is not in the test environment: its train.py config parsing (`parser.set_defaults(**cfg)` after
yaml.safe_load, then parse_args) is replayed with argparse, and its SGD optimizer with weight-decay
groups (timm.optim param_groups_weight_decay: ndim <= 1 and *.bias get no decay) is built the same way.
"""
from __future__ import annotations

import argparse

import pytest
import torch
import yaml

import explr
from explr.configs.api import write_converted
from explr.errors import ConfigError
from explr.integrations.timm import TimmTEXP, create_scheduler, plan_of
from tests.configs.test_timm import timm_train_lrs, wsd_get_lr
from tests.configs.texp_harness import MODEL, fixture_model
from tests.integrations.harness import Side, compare_amp_runs, compare_runs
from tests.conftest import FIXTURES

ORIGINAL = (FIXTURES / "configs/timm/cifar10_resnet_multistep.yaml").read_text().replace(
    "weight_decay: 5.0e-4", "weight_decay: 5.0e-3").replace("[100, 150]", "[2, 4]").replace("epochs: 200", "epochs: 6")
UPDATES = 10


def timm_args(text: str) -> argparse.Namespace:
    """timm train.py _parse_args: the YAML becomes parser defaults, unknown keys included."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=None)
    parser.set_defaults(**yaml.safe_load(text))
    return parser.parse_args([])


def timm_sgd(model: torch.nn.Module, args) -> torch.optim.SGD:
    """timm create_optimizer_v2(opt='momentum'): param_groups_weight_decay + SGD(nesterov=False)."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and not n.endswith(".bias")]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or n.endswith(".bias")]
    groups = [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": args.weight_decay}]
    return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, nesterov=False)


def converted_args(tmp_path, text: str = ORIGINAL) -> argparse.Namespace:
    original = tmp_path / "args.yaml"
    original.write_text(text)
    out = tmp_path / "args_explr.yaml"
    write_converted(explr.convert(str(original), model=MODEL, iters_per_epoch=UPDATES), str(out))
    return timm_args(out.read_text())


def test_converted_args_yaml_keeps_timm_keys_and_adds_one(tmp_path):
    args = converted_args(tmp_path)
    assert {k: v for k, v in vars(args).items() if k != "explr"} == vars(timm_args(ORIGINAL))
    assert "conv1.weight" in args.explr["si"] and set(args.explr) == {"si"}


def converted_side(args, made):
    """timm's SGD with explr's create_scheduler on the converted args; what it made is kept in `made`."""
    def converted(model):
        optimizer = timm_sgd(model, args)
        made["scheduler"], made["epochs"] = create_scheduler(optimizer, model, args, UPDATES)
        return optimizer, made["scheduler"]
    return converted


def test_create_scheduler_trains_the_weight_decay_run(tmp_path):
    args = converted_args(tmp_path)
    plan = plan_of(args, UPDATES)
    made: dict = {}
    converted = converted_side(args, made)

    worst, scheduler = compare_runs(
        lambda model: timm_sgd(model, args),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda i: plan.lr.lr_at(i) / plan.lr.base_lr),
        converted, steps=6 * UPDATES, iters_per_epoch=1)
    assert worst <= 1e-9 and made["epochs"] == 6 and isinstance(scheduler, TimmTEXP)
    # timm's multistep applies milestone m at epoch m - 1 (bisect_right(decay_t, t + 1) in timm's MultiStepLRScheduler)
    assert plan.lr.milestones == (1 * UPDATES, 3 * UPDATES)


WSD_SCHED = "sched: wsd\nlr_decay_fn: cosine\nwarmup_prefix: true\ndecay_epochs: 3\nmin_lr: 0.002\ncooldown_epochs: 1\n"
RSQRT_SCHED = "sched: rsqrt\nsched_on_updates: true\ndecay_epochs: 0.4\nmin_lr: 0.001\ncooldown_epochs: 0\n"
WSD_ORIGINALS = {  # the args, and WSDLRScheduler's closed form of them (tests/configs/test_timm.py)
    "wsd per epoch": (ORIGINAL.replace("sched: multistep\n", WSD_SCHED).replace("warmup_epochs: 0", "warmup_epochs: 1\n"
                                                                                  "warmup_lr: 0.01"),
                      False, 1 + 6 + 1, dict(lr=0.1, warmup_t=1, warmup_lr=0.01, t_sched=6, decay_t=3, lr_min=0.002,
                                             anneal="cosine")),
    "rsqrt per update": (ORIGINAL.replace("sched: multistep\n", RSQRT_SCHED).replace("warmup_epochs: 0",
                                                                                       "warmup_epochs: 1\nwarmup_lr: 0"),
                         True, 6, dict(lr=0.1, warmup_t=UPDATES, warmup_lr=0.0, t_sched=5 * UPDATES, decay_t=20,
                                       lr_min=0.001, anneal="linear", timescale=UPDATES)),
}


@pytest.mark.parametrize("name", WSD_ORIGINALS)
def test_wsd_and_rsqrt_converted_runs_train_as_timms_schedule(tmp_path, name):
    """float64: the weight-decay run under timm's WSD LR (its closed form, as train.py steps it) and the TEXP run that
    create_scheduler builds from the converted args give the same network."""
    text, on_updates, epochs, shape = WSD_ORIGINALS[name]
    args = converted_args(tmp_path, text)
    lrs = timm_train_lrs(lambda t: wsd_get_lr(t, **shape), epochs, UPDATES, on_updates)
    assert plan_of(args, UPDATES).total_iters == len(lrs) == epochs * UPDATES
    made: dict = {}
    converted = converted_side(args, made)

    worst, scheduler = compare_runs(
        lambda model: timm_sgd(model, args),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lrs[min(i, len(lrs) - 1)] / 0.1),
        converted, steps=len(lrs), iters_per_epoch=1)
    assert worst <= 1e-9 and made["epochs"] == epochs and isinstance(scheduler, TimmTEXP)


def test_args_without_the_explr_key_are_refused(tmp_path):
    args = timm_args(ORIGINAL)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="exactly one of si"):
        create_scheduler(timm_sgd(model, args), model, args, UPDATES)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_native_scaler_skipped_updates_move_the_lr_as_timms_num_updates_does(tmp_path, monkeypatch):
    """timm train.py: loss_scaler(loss, optimizer) (NativeScaler: scale, backward, GradScaler.step, update), then
    num_updates += 1 and lr_scheduler.step_update(num_updates) whether or not the GradScaler skipped the step."""
    args = converted_args(tmp_path)
    plan, made = plan_of(args, UPDATES), {}

    def original_side(model):
        optimizer = timm_sgd(model, args)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: plan.lr.lr_at(i) / plan.lr.base_lr)
        return Side(optimizer, after=lambda i: scheduler.step())

    def converted_side(model):
        optimizer = timm_sgd(model, args)
        scheduler = made["scheduler"] = create_scheduler(optimizer, model, args, UPDATES)[0]
        return Side(optimizer, after=lambda i: scheduler.step_update(num_updates=i + 1))

    skips = {0, 3, 9, 10, 11, 29, 30, 45}
    assert compare_amp_runs(original_side, converted_side, 5 * UPDATES, skips) <= 1e-12
    assert made["scheduler"].texp.skipped_steps == sorted(skips)
    monkeypatch.setattr(explr.TEXP, "catch_up", lambda self, index, most: None)  # the optimizer hook alone lags
    assert compare_amp_runs(original_side, converted_side, 5 * UPDATES, skips) > 1e-6


def test_step_update_past_the_updates_seen_is_a_clear_error(tmp_path):
    """train.py resuming with sched_on_updates calls step_update(start_epoch * updates_per_epoch): without
    the scheduler's state TEXP would start over; that is refused, not trained on a wrong LR."""
    args = converted_args(tmp_path)
    model = fixture_model()
    scheduler, _ = create_scheduler(timm_sgd(model, args), model, args, UPDATES)
    with pytest.raises(ConfigError, match="resumed without its state"):
        scheduler.step_update(num_updates=2 * UPDATES)
