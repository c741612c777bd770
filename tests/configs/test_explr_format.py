"""explr's own format: read (values + locations), schedule vs the engine, texp section written, bad keys."""
from __future__ import annotations

import math

import pytest
import torch

from explr.configs.adapter import ReadOptions
from explr.configs.api import convert
from explr.configs.explr_format import ADAPTER, plan_document
from explr.configs.rewrite import render
from explr.configs.source import ConfigSource
from explr.configs.timm import ADAPTER as TIMM
from explr.configs.write import converted_output
from explr.errors import ConfigError
from explr.integrations import build
from explr.schedule.phantom import SGDHyper, converted_lrs
from tests.conftest import FIXTURES
from tests.configs.texp_harness import batches, diff_lines, fixture_model, loss_step

DIR = FIXTURES / "configs" / "explr"


def read(name, **options):
    return ADAPTER.read(ConfigSource.load(DIR / name), ReadOptions(**options))


def test_cifar_plan_and_locations():
    plan = read("cifar_resnet_step.yaml")
    assert plan.iters_per_epoch == 391 and plan.total_iters == 200 * 391
    assert plan.lr.milestones == (100 * 391, 150 * 391) and plan.lr.step_every == 1
    assert str(plan.where("lr")).endswith("cifar_resnet_step.yaml:5")
    assert str(plan.where("milestones")).endswith(":11")


def test_imagenet_warmup_and_norm_policy():
    plan = read("imagenet_warmup_step.yaml")
    ipe = 1_281_167 // 256
    assert plan.iters_per_epoch == ipe and plan.lr.warmup_iters == 5 * ipe
    assert plan.decay.for_kind("norm") == 0.0 and plan.decay.for_kind("bias") == 1e-4
    # linear warmup per iteration from 0.1x, then x0.1 at epochs 30/60/80
    assert plan.lr.lr_at(0) == pytest.approx(0.01) and plan.lr.lr_at(5 * ipe) == 0.1
    assert plan.lr.lr_at(30 * ipe) == pytest.approx(0.01) and plan.lr.lr_at(80 * ipe) == pytest.approx(1e-4)


def test_cosine_values():
    plan = read("cosine.yaml")
    assert plan.lr.lr_at(1500) == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_plan_document_round_trips_through_the_reader(tmp_path):
    plan = read("imagenet_warmup_step.yaml")
    path = tmp_path / "p.yaml"
    path.write_text("\n".join(render(plan_document(plan), 0)) + "\n")
    again = ADAPTER.read(ConfigSource.load(path), ReadOptions())
    assert again.lr == plan.lr and again.decay == plan.decay and again.iters_per_epoch == plan.iters_per_epoch


@pytest.mark.parametrize("name", ["rsqrt_timescale_exp", "wsd_power_accum"])
def test_timm_wsd_plan_document_round_trips_through_the_reader(tmp_path, name):
    """decay wsd keeps its stable timescale, anneal length and shape (and power) in the explr format."""
    plan = TIMM.read(ConfigSource.load(FIXTURES / f"configs/timm/variants/{name}.yaml"), ReadOptions(num_devices=1))
    path = tmp_path / "p.yaml"
    path.write_text("\n".join(render(plan_document(plan), 0)) + "\n")
    again = ADAPTER.read(ConfigSource.load(path), ReadOptions())
    assert again.lr == plan.lr and plan.lr.decay == "wsd" and plan.lr.anneal_iters > 0


def test_convert_appends_only_the_texp_section():
    path = DIR / "cifar_resnet_step.yaml"
    text = converted_output(convert(str(path), si=["conv1.weight"])).text
    removed, added = diff_lines(path.read_text(), text)
    assert removed == [] and added == ["texp:", "  si: names", "  params: [conv1.weight]", "  exact: true"]


def test_build_trains_with_the_converted_schedule(tmp_path):
    out = tmp_path / "plan.yaml"
    text = converted_output(convert(str(DIR / "cosine.yaml"), si=["conv1.weight", "conv2.weight"])).text
    out.write_text(text)
    model = fixture_model()
    optimizer, scheduler = build(model, str(out))
    for batch in batches(3):
        loss_step(model, optimizer, batch)
    si = [g for g in optimizer.param_groups if g["explr_si"]]
    assert len(si) == 1 and si[0]["weight_decay"] == 0.0 and len(si[0]["params"]) == 2
    plan = read("cosine.yaml")
    engine = [lr for lr, _ in converted_lrs(plan.lr.lr_at, SGDHyper(0.9, 0.0, 5e-4), 4)]
    assert si[0]["lr"] == pytest.approx(engine[3], rel=1e-12)
    assert isinstance(optimizer, torch.optim.SGD)


BAD = {
    "unknown section": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter}\ntraining: {iters: 10}\nfoo: 1\n",
                        r":5: unknown section 'foo'"),
    "unknown key": ("explr: 1\noptimizer: {lr: 0.1, momentun: 0.9}\nschedule: {unit: iter}\ntraining: {iters: 10}\n",
                    r":2: unknown key optimizer.momentun"),
    "missing lr": ("explr: 1\noptimizer: {momentum: 0.9}\nschedule: {unit: iter}\ntraining: {iters: 10}\n",
                   r":2: optimizer.lr is missing"),
    "wrong type": ("explr: 1\noptimizer: {lr: fast}\nschedule: {unit: iter}\ntraining: {iters: 10}\n",
                   r":2: optimizer.lr='fast' must be float"),
    "no length": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter}\ntraining: {iters_per_epoch: 4}\n",
                  r"set training.epochs or training.iters"),
    "contradictory length": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter}\n"
                             "training: {epochs: 3, iters: 10, iters_per_epoch: 2}\n",
                             r":4: training.iters=10 contradicts training.epochs=3"),
    "contradictory iters per epoch": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter}\ntraining: "
                                      "{iters: 10, iters_per_epoch: 2, dataset: cifar10, batch_size: 100}\n",
                                      r":4: training.iters_per_epoch=2 contradicts dataset / batch size \(500\)"),
    "wsd anneal longer than its decay": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter, decay: wsd, "
                                         "decay_length: 6, anneal: 8}\ntraining: {iters: 10}\n",
                                         r"wsd decay needs 0 < anneal_iters=8 <= decay_iters=6"),
    "wsd anneal shape": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter, decay: wsd, decay_length: 6, "
                         "anneal: 2, anneal_shape: sqrt}\ntraining: {iters: 10}\n", r"anneal_shape='sqrt' must be one of"),
    "anneal without wsd": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter, decay: cosine, anneal: 2}\n"
                           "training: {iters: 10}\n", r"anneal_iters and anneal_shape apply to decay 'wsd' only"),
    "already converted": ("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: iter}\ntraining: {iters: 10, "
                          "iters_per_epoch: 2}\ntexp: {si: audit}\n", r":5: this plan is already converted"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(tmp_path, case):
    text, message = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        flags = {} if case == "contradictory iters per epoch" else {"iters_per_epoch": 2}
        converted_output(convert(str(path), **flags))
    assert path.read_text() == text


def test_dataset_size_in_the_file_and_flags_override(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("explr: 1\noptimizer: {lr: 0.1}\nschedule: {unit: epoch}\n"
                    "training: {epochs: 2, dataset_size: 1000, batch_size: 64, drop_last: true}\n")
    assert ADAPTER.read(ConfigSource.load(path), ReadOptions()).iters_per_epoch == 1000 // 64
    assert ADAPTER.read(ConfigSource.load(path), ReadOptions(batch_size=100)).iters_per_epoch == 10
    assert ADAPTER.read(ConfigSource.load(path), ReadOptions(iters_per_epoch=7)).total_iters == 14


def test_milestone_past_the_end_is_ignored_as_torch_ignores_it(tmp_path):
    path = tmp_path / "late.yaml"
    path.write_text("explr: 1\noptimizer: {lr: 0.1, momentum: 0.9, weight_decay: 5.0e-4}\n"
                    "schedule: {unit: epoch, milestones: [5, 10, 12]}\ntraining: {epochs: 10, iters_per_epoch: 4}\n")
    converted = convert(str(path))
    assert converted.plan.lr.milestones == (20,) and converted.plan.ignored_milestones == (40, 48)
    (late,) = [f for f in converted.findings if f.code == "EXP209"]
    assert late.severity.value == "info" and str(late.location) == f"{path}:3" and "40, 48" in late.message
