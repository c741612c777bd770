"""Hydra `_target_` configs: TrainingPlan read, LR vs what hydra.utils.instantiate builds, written config trains
exactly under a real Lightning Trainer with the hydra-instantiated explr callback."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch import Trainer

from explr.configs.adapter import ReadOptions
from explr.configs.api import convert
from explr.configs.hydra import ADAPTER
from explr.configs.source import ConfigSource
from explr.configs.write import converted_output
from explr.errors import ConfigError
from tests.conftest import FIXTURES
from tests.configs.lightning_oracle import ProbeOutputs, TinyData, TinyNet
from tests.configs.texp_harness import diff_lines, load_yaml

DIR = FIXTURES / "configs" / "hydra"


def read(name: str, **options):
    return ADAPTER.read(ConfigSource.load(DIR / name), ReadOptions(**options))


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
    """The ImageNet fixture with its per-iteration counts / 1000 (same structure, a quick replay)."""
    path = tmp_path / "imagenet_small.yaml"
    path.write_text((DIR / "imagenet_warmup_step.yaml").read_text().replace("25020", "25"))
    return path


@pytest.mark.parametrize("name,ipe", [("cifar_resnet_step.yaml", 2), ("imagenet_small", 5), ("cosine.yaml", 3)])
def test_lr_matches_what_hydra_instantiates(tmp_path, name, ipe):
    path = _scaled_imagenet(tmp_path) if name == "imagenet_small" else DIR / name
    plan = ADAPTER.read(ConfigSource.load(path), ReadOptions(iters_per_epoch=ipe))
    cfg = load_yaml(path.read_text())
    node = cfg.get("model", cfg)
    optimizer = instantiate(node["optimizer"])(params=[torch.nn.Parameter(torch.zeros(1))])
    scheduler = instantiate(node["scheduler"])(optimizer=optimizer)  # the template's configure_optimizers
    lrs = []
    for i in range(plan.total_iters):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if (i + 1) % plan.lr.step_every == 0:
            scheduler.step()
    assert [plan.lr.lr_at(i) for i in range(plan.total_iters)] == pytest.approx(lrs, rel=1e-12, abs=1e-15)


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


class _TemplateModule(TinyNet):
    """lightning-hydra-template's LitModule: configure_optimizers calls the hydra partials it was given."""

    def __init__(self, optimizer, scheduler) -> None:
        super().__init__()
        self.make_optimizer, self.make_scheduler = optimizer, scheduler

    def configure_optimizers(self):
        optimizer = self.make_optimizer(params=self.parameters())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.make_scheduler(optimizer=optimizer),
                                                         "interval": "epoch"}}


def _fit_template(cfg: dict, epochs: int) -> tuple[list, list]:
    probe = ProbeOutputs(torch.randn(3, 3, 6, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c["_target_"].startswith("explr.")]
    model = _TemplateModule(instantiate(cfg["model"]["optimizer"]), instantiate(cfg["model"]["scheduler"]))
    trainer = Trainer(max_epochs=epochs, precision="64-true", accelerator="cpu", devices=1, barebones=True,
                      callbacks=[*callbacks, probe])
    trainer.fit(model, datamodule=TinyData(batches=1))
    return probe.outputs, trainer.optimizers[0].param_groups


def test_written_config_trains_exactly_like_the_original_under_a_lightning_trainer():
    converted = convert(str(DIR / "cifar_resnet_step.yaml"), iters_per_epoch=1)
    written, original = load_yaml(converted_output(converted).text), load_yaml(
        (DIR / "cifar_resnet_step.yaml").read_text())
    (before, _), (after, groups) = _fit_template(original, 103), _fit_template(written, 103)  # across epoch 100
    assert max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(before, after)) <= 1e-9
    assert any(g["explr_si"] and g["weight_decay"] == 0.0 for g in groups)


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


def test_sequential_lr_is_refused_because_hydra_cannot_instantiate_it(tmp_path):
    text = ("optimizer: {_target_: torch.optim.SGD, _partial_: true, lr: 0.1}\ntrainer: {max_epochs: 9}\n"
            "scheduler:\n  _target_: torch.optim.lr_scheduler.SequentialLR\n  _partial_: true\n  schedulers:\n"
            "    - {_target_: torch.optim.lr_scheduler.LinearLR, total_iters: 2}\n"
            "    - {_target_: torch.optim.lr_scheduler.StepLR, step_size: 3}\n  milestones: [2]\n")
    cfg = load_yaml(text)
    optimizer = instantiate(cfg["optimizer"])(params=[torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(Exception, match="optimizer"):  # hydra builds the children first, without the optimizer
        instantiate(cfg["scheduler"])(optimizer=optimizer)
    path = tmp_path / "seq.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"seq.yaml:4: SequentialLR cannot be built from a config"):
        convert(str(path), iters_per_epoch=3)
