"""Hydra `_target_` configs: TrainingPlan read, LR vs the real torch schedulers, written config trains exactly."""
from __future__ import annotations

import functools

import pytest

from explr.configs.adapter import ReadOptions
from explr.configs.api import convert
from explr.configs.hydra import ADAPTER
from explr.configs.source import ConfigSource
from explr.configs.write import converted_output
from explr.errors import ConfigError
from tests.conftest import FIXTURES
from tests.configs.texp_harness import (compare_runs, diff_lines, import_string, load_yaml, torch_lrs,
                                        torch_scheduler, trainer_stub)

DIR = FIXTURES / "configs" / "hydra"


def read(name: str, **options):
    return ADAPTER.read(ConfigSource.load(DIR / name), ReadOptions(**options))


def instantiate(node, **call):
    """hydra.utils.instantiate for the cases used here: `_target_`, `_partial_`, keyword arguments."""
    node = dict(node)
    target = import_string(node.pop("_target_"))
    partial = node.pop("_partial_", False)
    args = {k: v for k, v in node.items() if not k.startswith("_")}
    return functools.partial(target, **args) if partial else target(**args, **call)


def _args(node):
    return {k: v for k, v in node.items() if not k.startswith("_")}


def _nested(child):
    return child["_target_"], _args(child)


def test_cifar_plan_values_and_locations():
    plan = read("cifar_resnet_step.yaml")
    assert (plan.lr.base_lr, plan.momentum, plan.weight_decay, plan.iters_per_epoch) == (0.1, 0.9, 5e-4, 391)
    assert plan.scheduler_interval == "epoch"  # the Lightning+Hydra template returns interval "epoch"
    assert plan.lr.milestones == (100 * 391, 150 * 391) and plan.total_iters == 200 * 391
    where = {k: int(str(v).rsplit(":", 1)[1]) for k, v in plan.locations.items()}
    assert (where["lr"], where["milestones"], where["max_epochs"], where["batch_size"]) == (11, 17, 25, 21)


def test_interval_key_and_flag():
    assert read("imagenet_warmup_step.yaml").scheduler_interval == "step"  # `interval: step` beside it
    plan = read("cifar_resnet_step.yaml", scheduler_interval="step", iters_per_epoch=10)
    assert plan.lr.step_every == 1 and plan.lr.milestones == (100, 150)  # now counted in iterations


def _scaled_imagenet(tmp_path):
    """The ImageNet fixture with its per-iteration counts / 1000 (same structure, a quick torch replay)."""
    text = (DIR / "imagenet_warmup_step.yaml").read_text()
    for big in ("25020", "125100", "275220", "375300"):
        text = text.replace(big, str(int(big) // 1000))
    path = tmp_path / "imagenet_small.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,ipe", [("cifar_resnet_step.yaml", 2), ("imagenet_small", 5), ("cosine.yaml", 3)])
def test_lr_matches_real_torch_scheduler(tmp_path, name, ipe):
    path = _scaled_imagenet(tmp_path) if name == "imagenet_small" else DIR / name
    plan = ADAPTER.read(ConfigSource.load(path), ReadOptions(iters_per_epoch=ipe))
    cfg = load_yaml(path.read_text())
    spec = cfg.get("scheduler") or cfg["model"]["scheduler"]
    every = plan.lr.step_every
    expected = torch_lrs(plan.lr.base_lr, lambda opt: torch_scheduler(opt, spec["_target_"], _args(spec), _nested),
                         plan.total_iters // every)
    got = [plan.lr.lr_at(i) for i in range(plan.total_iters)]
    assert got == pytest.approx([expected[i // every] for i in range(plan.total_iters)], rel=1e-12, abs=1e-15)


def test_diff_shows_only_the_conversion():
    path = DIR / "cifar_resnet_step.yaml"
    text = converted_output(convert(str(path))).text
    removed, added = diff_lines(path.read_text(), text)
    assert removed == ["    _target_: torch.optim.lr_scheduler.MultiStepLR",
                       "    milestones: [100, 150]  # epochs", "    gamma: 0.1"]
    assert added[0] == "  # epochs"  # the replaced line's comment stays, above the replaced block
    assert added[1] == "    _target_: explr.integrations.hydra.TEXPScheduler"
    assert added[-2:] == ["  explr_texp:", "    _target_: explr.integrations.hydra.ExplrCallback"]
    assert "    _partial_: true" not in added  # kept in place, not re-written


def test_written_config_instantiates_and_trains_exactly_like_the_original():
    ipe = 1
    converted = convert(str(DIR / "cifar_resnet_step.yaml"), iters_per_epoch=ipe)
    written, original = load_yaml(converted_output(converted).text), load_yaml(
        (DIR / "cifar_resnet_step.yaml").read_text())
    callback = instantiate(written["callbacks"]["explr_texp"])

    def user_code(model):  # LitModule.configure_optimizers of the template
        optimizer = instantiate(written["model"]["optimizer"])(params=model.parameters())
        return optimizer, instantiate(written["model"]["scheduler"])(optimizer=optimizer)

    spec = original["model"]["scheduler"]
    worst, scheduler = compare_runs(
        lambda m: instantiate(original["model"]["optimizer"])(params=m.parameters()),
        lambda opt: torch_scheduler(opt, spec["_target_"], _args(spec), _nested),
        user_code, 106, ipe,
        lambda model, opt, batch: callback.on_train_batch_start(trainer_stub(opt), model, batch, 0))
    assert worst < 1e-9
    assert any(g["explr_si"] and g["weight_decay"] == 0.0 for g in scheduler.optimizer.param_groups)


def test_manual_bind_without_callbacks_section():
    converted = convert(str(DIR / "cosine.yaml"), iters_per_epoch=2, si=["conv1.weight"])
    output = converted_output(converted)
    assert any("scheduler.bind(model" in n for n in output.notes)
    written = load_yaml(output.text)
    from tests.configs.texp_harness import batches, fixture_model, loss_step

    model = fixture_model()
    optimizer = instantiate(written["optimizer"])(params=model.parameters())
    scheduler = instantiate(written["scheduler"])(optimizer=optimizer)
    scheduler.bind(model)
    loss_step(model, optimizer, batches(1)[0])
    si = [g for g in optimizer.param_groups if g["explr_si"]]
    assert len(si) == 1 and len(si[0]["params"]) == 1 and si[0]["weight_decay"] == 0.0


def test_no_optimizer_target_is_a_clear_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scheduler:\n  _target_: torch.optim.lr_scheduler.StepLR\n  step_size: 3\n")
    with pytest.raises(ConfigError, match="no mapping with `_target_: torch.optim"):
        convert(str(path), format="hydra", iters_per_epoch=3)


def test_bad_interval(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optimizer: {_target_: torch.optim.SGD, lr: 0.1}\nscheduler:\n  _target_: "
                    "torch.optim.lr_scheduler.StepLR\n  step_size: 3\ninterval: hourly\ntrainer: {max_epochs: 9}\n")
    with pytest.raises(ConfigError, match=r"c.yaml:5: interval='hourly' must be one of epoch, step"):
        convert(str(path), iters_per_epoch=3)


def test_scheduler_accepts_omegaconf_like_containers():
    """Hydra passes nested config as DictConfig/ListConfig (a Mapping / a Sequence, not dict / list)."""
    import collections.abc
    import types

    import torch

    from explr.integrations.hydra import TEXPScheduler
    from tests.configs.texp_harness import batches, fixture_model, loss_step

    class Names(collections.abc.Sequence):
        def __init__(self, items):
            self.items = list(items)

        def __getitem__(self, i):
            return self.items[i]

        def __len__(self):
            return len(self.items)

    model = fixture_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    schedule = types.MappingProxyType({"base_lr": 0.1, "total_iters": 20, "milestones": Names([10])})
    scheduler = TEXPScheduler(optimizer=optimizer, schedule=schedule, si=Names(["conv1.weight"]))
    scheduler.bind(model)
    loss_step(model, optimizer, batches(1)[0])
    assert sum(len(g["params"]) for g in optimizer.param_groups if g["explr_si"]) == 1
