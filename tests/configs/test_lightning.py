"""Lightning CLI configs: TrainingPlan read, LR vs the real torch schedulers, written config trains exactly."""
from __future__ import annotations

import math

import pytest
import torch

from explr.configs.adapter import ReadOptions
from explr.configs.api import convert
from explr.configs.lightning import ADAPTER
from explr.configs.source import ConfigSource
from explr.configs.write import converted_output
from explr.errors import ConfigError, UnsupportedError
from explr.schedule.phantom import SGDHyper, converted_lrs
from tests.conftest import FIXTURES
from tests.configs.lightning_oracle import lightning_fit, lightning_schedule
from tests.configs.texp_harness import diff_lines, import_string, load_yaml, trainer_stub

DIR = FIXTURES / "configs" / "lightning"


def read(name: str, **options):
    return ADAPTER.read(ConfigSource.load(DIR / name), ReadOptions(**options))


def test_cifar_step_plan_values_and_locations():
    plan = read("cifar_resnet_step.yaml")
    assert (plan.optimizer, plan.momentum, plan.weight_decay, plan.nesterov) == ("sgd", 0.9, 5e-4, False)
    assert plan.iters_per_epoch == math.ceil(50_000 / 128) == 391  # CIFAR10DataModule, batch 128, 1 device
    assert plan.total_iters == 200 * 391 and plan.scheduler_interval == "epoch"
    assert plan.lr.milestones == (100 * 391, 150 * 391) and plan.lr.step_every == 391
    where = {k: str(v).rsplit(":", 1)[1] for k, v in plan.locations.items()}
    assert where["lr"] == "21" and where["weight_decay"] == "23" and where["milestones"] == "27"
    assert where["max_epochs"] == "4" and where["batch_size"] == "16"


def test_imagenet_reads_devices_and_drop_last():
    plan = read("imagenet_warmup_step.yaml")
    assert plan.iters_per_epoch == 1_281_167 // (32 * 8)  # drop_last: floor
    assert plan.lr.milestones == tuple(e * plan.iters_per_epoch for e in (30, 60, 80))
    assert plan.precision == "bf16-mixed"


SEQUENTIAL = """trainer: {max_epochs: 90}
model: {}
optimizer:
  class_path: torch.optim.SGD
  init_args: {lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
lr_scheduler:
  class_path: torch.optim.lr_scheduler.SequentialLR
  init_args:
    schedulers:
      - class_path: torch.optim.lr_scheduler.LinearLR
        init_args: {start_factor: 0.1, total_iters: 5}
      - class_path: torch.optim.lr_scheduler.MultiStepLR
        init_args: {milestones: [25, 55, 75]}
    milestones: [5]
"""


def test_sequential_lr_is_refused_because_lightningcli_cannot_build_it(tmp_path, capsys):
    with pytest.raises(SystemExit):  # jsonargparse refuses the config ...
        lightning_schedule(SEQUENTIAL, 3)
    assert "the following arguments are required: optimizer" in capsys.readouterr().err  # ... for this reason
    path = tmp_path / "seq.yaml"
    path.write_text(SEQUENTIAL)
    with pytest.raises(ConfigError, match=r"seq.yaml:7: SequentialLR cannot be built from a config: its inner "
                                          r"schedulers need the optimizer"):
        convert(str(path), iters_per_epoch=3, approximate=True)


@pytest.mark.parametrize("name", ["cifar_resnet_step.yaml", "imagenet_warmup_step.yaml", "cosine.yaml"])
def test_lr_matches_the_real_lightningcli_every_iteration(name):
    ipe = 3
    plan = read(name, iters_per_epoch=ipe)
    oracle = lightning_schedule((DIR / name).read_text(), ipe)
    assert plan.total_iters == oracle.total_iters
    assert [plan.lr.lr_at(i) for i in range(plan.total_iters)] == pytest.approx(oracle.lrs, rel=1e-12, abs=1e-15)
    assert (plan.momentum, plan.dampening, plan.weight_decay) == tuple(oracle.groups[0][k] for k in
                                                                      ("momentum", "dampening", "weight_decay"))


def test_written_config_diff_shows_only_the_conversion():
    path = DIR / "cifar_resnet_step.yaml"
    original = path.read_text()
    text = converted_output(convert(str(path))).text
    removed, added = diff_lines(original, text)
    # only the scheduler's class and arguments go (comments elsewhere stay, byte for byte) ...
    assert removed == ["  class_path: torch.optim.lr_scheduler.MultiStepLR",
                       "    milestones: [100, 150]  # epochs: LightningCLI steps the scheduler once per epoch",
                       "    gamma: 0.1"]
    # ... and only explr's scheduler, its exact schedule and the callback come in
    assert added[0] == "    - class_path: explr.integrations.lightning.ExplrCallback"
    assert added[1] == "# epochs: LightningCLI steps the scheduler once per epoch"  # kept, above the block
    assert added[2] == "  class_path: explr.integrations.lightning.TEXPScheduler"
    assert added[3:] == ["    schedule:", "      base_lr: 0.1", f"      total_iters: {200 * 391}",
                         f"      milestones: [{100 * 391}, {150 * 391}]", "      step_every: 391", "    si: audit"]
    assert load_yaml(text)["optimizer"] == load_yaml(original)["optimizer"]  # others exactly as before


def _instantiate(node, *args):
    """class_path(*args, **init_args), for the binding unit tests below (the fit tests above run LightningCLI)."""
    return import_string(node["class_path"])(*args, **dict(node.get("init_args") or {}))


@pytest.mark.parametrize("name,si", [("cifar_resnet_step.yaml", None), ("imagenet_warmup_step.yaml", ["net.0.weight"])])
def test_written_config_fits_exactly_like_the_original_under_lightningcli(name, si):
    epochs = 101 if si is None else 31  # across the first decay (epoch 100 / 30)
    converted = convert(str(DIR / name), iters_per_epoch=1, si=si)
    original = lightning_fit((DIR / name).read_text(), epochs, 1)
    texp = lightning_fit(converted_output(converted).text, epochs, 1)
    worst = max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(original.outputs, texp.outputs))
    assert len(texp.outputs) == epochs and worst <= 1e-9
    si_groups = [g for g in texp.groups if g["explr_si"]]
    assert [len(g["params"]) for g in si_groups] == [1] and si_groups[0]["weight_decay"] == 0.0
    assert all(g["weight_decay"] == converted.plan.weight_decay for g in texp.groups if not g["explr_si"])
    plan = converted.plan
    engine = [lr for lr, _ in converted_lrs(plan.lr.lr_at, SGDHyper(0.9, 0.0, plan.weight_decay), epochs + 1)]
    assert si_groups[0]["lr"] == pytest.approx(engine[epochs], rel=1e-12)  # the LR of the next step, from the engine
    assert [g for g in texp.groups if not g["explr_si"]][0]["lr"] == pytest.approx(plan.lr.lr_at(epochs), rel=1e-12)


def test_unbound_scheduler_refuses_to_step():
    converted = convert(str(DIR / "cosine.yaml"), iters_per_epoch=2)
    with pytest.raises(ConfigError, match="ExplrCallback"):  # the explr callback left out of the trainer
        lightning_fit(converted_output(converted).text, 1, 2, callbacks=False)


BAD = {
    "unknown scheduler": ("lr_scheduler:\n  class_path: torch.optim.lr_scheduler.NoSuchLR\n", "unknown LR scheduler"),
    "unconvertible scheduler": ("lr_scheduler:\n  class_path: torch.optim.lr_scheduler.ExponentialLR\n"
                                "  init_args: {gamma: 0.9}\n", "ExponentialLR has no exact"),
    "unknown optimizer": ("", "unknown optimizer class 'my.fancy.Opt'"),
    "typo in init_args": ("lr_scheduler:\n  class_path: torch.optim.lr_scheduler.StepLR\n"
                          "  init_args: {step_sise: 3}\n", "'step_sise' is not an argument of StepLR"),
    "cosine shorter than training": ("lr_scheduler:\n  class_path: torch.optim.lr_scheduler.CosineAnnealingLR\n"
                                     "  init_args: {T_max: 4}\n", "T_max=4 ends before training"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_line_and_fix(tmp_path, case):
    extra, message = BAD[case]
    optimizer = "my.fancy.Opt" if case == "unknown optimizer" else "torch.optim.SGD"
    path = tmp_path / "bad.yaml"
    path.write_text(f"trainer:\n  max_epochs: 10\ndata:\n  init_args: {{batch_size: 10, dataset: cifar10}}\n"
                    f"optimizer:\n  class_path: {optimizer}\n  init_args: {{lr: 0.1}}\n{extra}")
    with pytest.raises(ConfigError, match=message) as info:
        convert(str(path))
    assert str(info.value).startswith(f"{path}:")


def test_iters_per_epoch_unknown_says_which_flag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {max_epochs: 3}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
                    "  init_args: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match="--iters-per-epoch"):
        convert(str(path))


def test_devices_auto_needs_num_devices(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {max_epochs: 3, devices: auto}\ndata: {init_args: {batch_size: 8, dataset: mnist}}\n"
                    "optimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match="--num-devices"):
        convert(str(path))
    assert convert(str(path), num_devices=2).plan.iters_per_epoch == math.ceil(60_000 / 16)


def test_accumulate_grad_batches_counts_optimizer_steps(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {max_epochs: 3, accumulate_grad_batches: 4}\ndata: {init_args: {batch_size: 100, "
                    "dataset: cifar10}}\noptimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n")
    assert convert(str(path)).plan.iters_per_epoch == math.ceil(500 / 4)


@pytest.mark.parametrize("init_args,reason", [("{lr: 0.1, momentum: 0.9, nesterov: true}", "Nesterov"),
                                               ("{lr: 0.001}", "adamw")])
def test_non_exact_refused_unless_approximate(tmp_path, init_args, reason):
    cls = "torch.optim.AdamW" if reason == "adamw" else "torch.optim.SGD"
    path = tmp_path / "c.yaml"
    path.write_text(f"trainer: {{max_epochs: 3}}\nmodel: {{}}\noptimizer:\n  class_path: {cls}\n"
                    f"  init_args: {init_args}\n")
    with pytest.raises(UnsupportedError, match=f"{reason}.*--approximate"):
        convert(str(path), iters_per_epoch=5)
    converted = convert(str(path), iters_per_epoch=5, approximate=True)
    assert not converted.exact and reason in converted.not_exact_because[0]
    assert "approximate: true" in converted_output(converted).text


class _LitLike(torch.nn.Module):
    """A LightningModule-shaped wrapper: the audited network lives at `.net`."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _lock_for(model, tmp_path):
    from explr.audit.api import audit
    from explr.lock import write_lock
    from tests.configs.texp_harness import batches

    return write_lock(audit(model, (batches(1)[0][0],)), model, tmp_path / "explr.lock.json")


def test_lock_names_bind_to_the_wrapped_network(tmp_path):
    from tests.configs.texp_harness import batches, fixture_model, loss_step

    net = fixture_model()
    lock = _lock_for(net, tmp_path)
    converted = convert(str(DIR / "cosine.yaml"), iters_per_epoch=2, lock=str(lock.path))
    written = load_yaml(converted_output(converted).text)
    assert written["lr_scheduler"]["init_args"]["lock"] == str(lock.path)
    module = _LitLike(net)
    optimizer = _instantiate(written["optimizer"], module.parameters())
    scheduler = _instantiate(written["lr_scheduler"], optimizer)
    callback = _instantiate(written["trainer"]["callbacks"][-1])
    batch = batches(1)[0]
    callback.on_train_batch_start(trainer_stub(optimizer), module, batch, 0)
    loss_step(module, optimizer, batch)
    names = {id(p): n for n, p in module.named_parameters()}
    si = {names[id(p)] for g in optimizer.param_groups if g["explr_si"] for p in g["params"]}
    assert si == {f"net.{n}" for n in lock.si} and "net.fc.weight" not in si
    assert scheduler.bound


def test_stale_lock_is_refused(tmp_path):
    from explr.errors import ExplrError
    from explr.load import load_model
    from tests.configs.texp_harness import MODEL, fixture_model

    other = load_model(f"{MODEL}:ConvBiasBN", kwargs={"num_classes": 5}).model.double()  # same names, fc differs
    lock = _lock_for(other, tmp_path)
    converted = convert(str(DIR / "cosine.yaml"), iters_per_epoch=2, lock=str(lock.path))
    written = load_yaml(converted_output(converted).text)
    model = fixture_model()
    optimizer = _instantiate(written["optimizer"], model.parameters())
    scheduler = _instantiate(written["lr_scheduler"], optimizer)
    with pytest.raises(ExplrError, match="does not match this lock file"):
        scheduler.bind(model)
    assert not scheduler.bound


def test_no_scheduler_means_constant_lr_and_a_scheduler_is_added(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer:\n  max_epochs: 4\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
                    "  init_args: {lr: 0.1, momentum: 0.9, weight_decay: 1.0e-3}\n")
    converted = convert(str(path), iters_per_epoch=5)
    assert converted.plan.lr.decay == "constant" and converted.plan.total_iters == 20
    written = load_yaml(converted_output(converted).text)
    assert written["lr_scheduler"]["class_path"].endswith("TEXPScheduler")
    assert written["trainer"]["callbacks"] == [{"class_path": "explr.integrations.lightning.ExplrCallback"}]


def test_max_steps_shorter_than_epochs_wins(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {max_epochs: 10, max_steps: 35}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
                    "  init_args: {lr: 0.1}\n")
    assert convert(str(path), iters_per_epoch=5).plan.total_iters == 35


def test_averaging_callback_is_not_exact_and_converting_twice_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer:\n  max_epochs: 4\n  callbacks:\n    - class_path: lightning.pytorch.callbacks."
                    "StochasticWeightAveraging\n      init_args: {swa_lrs: 0.01}\nmodel: {}\noptimizer:\n"
                    "  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n")
    with pytest.raises(UnsupportedError, match="EMA/SWA"):
        convert(str(path), iters_per_epoch=5)
    once = tmp_path / "once.yaml"
    once.write_text(converted_output(convert(str(path), iters_per_epoch=5, approximate=True)).text)
    with pytest.raises(ConfigError, match=r"once.yaml:\d+: this config is already converted"):
        convert(str(once), iters_per_epoch=5, approximate=True)


def test_max_epochs_minus_one_means_until_max_steps(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {max_epochs: -1, max_steps: 40}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
                    "  init_args: {lr: 0.1}\n")
    assert convert(str(path), iters_per_epoch=7).plan.total_iters == 40


def test_interpolated_callbacks_list_gets_the_callback(tmp_path):
    path = tmp_path / "c.yaml"  # trainer.callbacks is a plain list after interpolation: written out resolved
    path.write_text("base_callbacks:\n  - class_path: lightning.pytorch.callbacks.LearningRateMonitor\n"
                    "trainer:\n  max_epochs: 4\n  callbacks: ${base_callbacks}\n"
                    "model: {}\noptimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n")
    written = load_yaml(converted_output(convert(str(path), iters_per_epoch=5)).text)
    assert written["trainer"] == {"max_epochs": 4, "callbacks": [
        {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor"},
        {"class_path": "explr.integrations.lightning.ExplrCallback"}]}


def test_interpolated_trainer_gets_the_callback(tmp_path):
    path = tmp_path / "c.yaml"  # trainer is a plain dict after interpolation: written out resolved
    path.write_text("base_trainer:\n  max_epochs: 4\ntrainer: ${base_trainer}\n"
                    "model: {}\noptimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n")
    written = load_yaml(converted_output(convert(str(path), iters_per_epoch=5)).text)
    assert written["trainer"] == {"max_epochs": 4,
                                  "callbacks": [{"class_path": "explr.integrations.lightning.ExplrCallback"}]}


def test_interpolated_trainer_with_callbacks_says_which_key_to_write_out(tmp_path):
    path = tmp_path / "c.yaml"  # the callbacks list lives in another key: nothing in the file to edit
    path.write_text("base_trainer:\n  max_epochs: 4\n  callbacks:\n"
                    "  - class_path: lightning.pytorch.callbacks.LearningRateMonitor\n"
                    "trainer: ${base_trainer}\n"
                    "model: {}\noptimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"cannot locate trainer\.callbacks .*write that key out in this file"):
        converted_output(convert(str(path), iters_per_epoch=5))


POLY = """trainer:
  max_epochs: 7
optimizer:
  class_path: torch.optim.SGD
  init_args: {lr: 0.2, momentum: 0.9, weight_decay: 5e-3}
lr_scheduler:
  class_path: torch.optim.lr_scheduler.PolynomialLR
  init_args: {total_iters: 4, power: 2.0}  # the LR reaches 0 at epoch 4 and stays there
"""


def read_like_lightningcli(path, text, iters):
    """Convert `text` at 2 iterations per epoch: exact, and every LR equal to the real LightningCLI's."""
    path.write_text(text)
    converted = convert(str(path), iters_per_epoch=2)
    oracle = lightning_schedule(text, 2)
    plan = converted.plan
    assert converted.exact and plan.total_iters == oracle.total_iters == iters
    assert [plan.lr.lr_at(i) for i in range(iters)] == pytest.approx(oracle.lrs, rel=1e-12, abs=1e-15)
    return converted, oracle


def test_polynomial_lr_reads_and_converts_like_lightningcli(tmp_path):
    converted, oracle = read_like_lightningcli(tmp_path / "poly.yaml", POLY, 14)
    assert oracle.lrs[7] > 0 and oracle.lrs[8:] == [0.0] * 6
    original = lightning_fit(POLY, 7, 2)
    texp = lightning_fit(converted_output(converted).text, 7, 2)
    assert max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(original.outputs, texp.outputs)) <= 1e-9


@pytest.mark.parametrize("init_args", ["{T_0: 3}", "{T_0: 1, T_mult: 2, eta_min: 0.001}", "{T_0: 2, T_mult: 3}"])
def test_warm_restarts_read_like_lightningcli_and_convert_exactly(tmp_path, init_args):
    text = POLY.replace("max_epochs: 7", "max_epochs: 40").replace("PolynomialLR", "CosineAnnealingWarmRestarts") \
        .replace("{total_iters: 4, power: 2.0}  # the LR reaches 0 at epoch 4 and stays there", init_args)
    converted, _ = read_like_lightningcli(tmp_path / "restarts.yaml", text, 80)
    if init_args == "{T_0: 3}":  # the LR rises at each restart: the converted run follows it
        original = lightning_fit(text, 8, 2)
        texp = lightning_fit(converted_output(converted).text, 8, 2)
        assert max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(original.outputs, texp.outputs)) \
            <= 1e-9
