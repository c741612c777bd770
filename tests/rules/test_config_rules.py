"""Each config rule: one plan that triggers it and one that does not (plans built directly)."""
import dataclasses
import math

import pytest

from explr.findings import Location
from explr.lr_schedule import LRSchedule
from explr.plan import DecayPolicy, TrainingPlan
from explr.rules.config import CONFIG_CHECKS, config_findings
from explr.rules.registry import RULES
from explr.schedule.phantom import SGDHyper, trace

IPE = 391  # CIFAR-10 at batch 128


def plan(epochs=10, lr=0.1, wd=5e-4, **overrides) -> TrainingPlan:
    total = epochs * IPE
    schedule = LRSchedule(base_lr=lr, total_iters=total, milestones=(total // 2,))
    fields = dict(format="explr", path="train.yaml", optimizer="sgd", momentum=0.9, dampening=0.0, nesterov=False,
                  decay=DecayPolicy(wd), lr=schedule, iters_per_epoch=IPE, epochs=epochs,
                  locations={"nesterov": Location("train.yaml", 4), "optimizer": Location("train.yaml", 2),
                             "weight_decay": Location("train.yaml", 5), "precision": Location("train.yaml", 9)})
    fields.update(overrides)
    return TrainingPlan(**fields)


def codes(p):
    return [f.code for f in config_findings(p)]


def test_every_config_rule_has_a_check():
    assert sorted(CONFIG_CHECKS.by_code) == sorted(c for c in RULES if c.startswith("EXP2"))


def test_plain_sgd_step_decay_is_clean():
    assert codes(plan()) == []


@pytest.mark.parametrize("code, overrides, line", [
    ("EXP201", dict(nesterov=True), 4),
    ("EXP202", dict(optimizer="adamw"), 2),
    ("EXP203", dict(grad_clip_norm=1.0), None),
    ("EXP204", dict(ema=True), None),
    ("EXP207", dict(scheduler_interval="epoch"), None),
    ("EXP208", dict(decay=DecayPolicy(0.0, norm=0.0)), 5),
    ("EXP209", dict(ignored_milestones=(10 * IPE,)), None),
    ("EXP210", dict(class_notes=(("optimizer", "read as torch.optim.SGD"),)), 2),
])
def test_flag_rules_fire_at_their_config_line(code, overrides, line):
    (f,) = [f for f in config_findings(plan(**overrides)) if f.code == code]
    assert f.location == Location("train.yaml", line)  # the file alone when the reader did not locate the key


def test_flag_rules_stay_quiet_on_neighbouring_values():
    assert codes(plan(grad_clip_norm=0.0)) == []  # 0 disables clipping (Lightning's convention)
    assert codes(plan(decay=DecayPolicy(5e-4, norm=0.0, bias=0.0))) == []  # decay on weights: conversion matters
    assert codes(plan(scheduler_interval="step")) == []


def test_exp205_fp16_underflow_step_matches_the_engine():
    p = plan(epochs=200, precision="16-mixed")
    (f,) = [f for f in config_findings(p) if f.code == "EXP205"]
    # the first step where ln(1/s_t) passes ln(grad / fp16 smallest subnormal) with grad = 1e-4
    scales = trace(p.lr.lr_at, SGDHyper(0.9, 0.0, 5e-4), p.total_iters).scales
    threshold = math.log(1e-4 / 2.0 ** -24)
    expected = next(t for t, s in enumerate(scales, 1) if -math.log(s) >= threshold)
    assert f"step {expected} (epoch {expected / IPE:.1f})" in f.message
    assert f.location == Location("train.yaml", 9)


def test_exp205_quiet_for_bf16_and_short_fp16_runs():
    assert "EXP205" not in codes(plan(epochs=200, precision="bf16-mixed"))
    assert "EXP205" not in codes(plan(epochs=2, precision="16-mixed"))
    assert codes(plan(epochs=200, precision="16-mixed", optimizer="adamw")) == ["EXP202"]


def test_exp206_float32_overflow_only_inside_the_run():
    # constant LR 0.1, wd 5e-4, momentum 0.9: ln(1/s) grows ~5e-4 per step, ln(3.4e38) ~ 88.7 -> ~177k steps
    long = plan(epochs=600, lr=0.1)
    long = dataclasses.replace(long, lr=LRSchedule(base_lr=0.1, total_iters=600 * IPE, decay="constant"))
    (f,) = [f for f in config_findings(long) if f.code == "EXP206"]
    step = int(f.message.split("at step ")[1].split()[0])
    assert 170_000 < step < 185_000
    assert "EXP206" not in codes(plan(epochs=200))
    assert "EXP206" not in codes(dataclasses.replace(long, precision="64"))


def test_impossible_schedule_gives_no_horizon_findings():
    # lr*wd so large that the original run shrinks weights through zero: convert reports it, not the rules
    assert codes(plan(epochs=2, lr=5.0, wd=0.5, precision="16-mixed")) == []


def test_exp201_is_for_sgd_only_other_optimizers_get_exp202():
    assert codes(plan(nesterov=True, optimizer="adamw")) == ["EXP202"]
