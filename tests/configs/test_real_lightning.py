"""Real public LightningCLI configs (fixtures/configs/lightning/real, SOURCES.md): explr's reading equals what
the real LightningCLI builds and steps, iteration by iteration; converted configs train exactly under
`LightningCLI ... fit` (float64, BatchNorm eps 1e-30)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from explr.configs.api import convert
from explr.configs.write import converted_output
from explr.errors import ConfigError, UnsupportedError
from tests.conftest import FIXTURES
from tests.configs.lightning_oracle import lightning_fit, lightning_schedule

DIR = FIXTURES / "configs" / "lightning" / "real"
IPE = 2  # the datamodules are the projects' own (CIFAR-10, CamVid, ...): a small epoch keeps the replay quick
SGD, MULTISTEP = "torch.optim.SGD", "torch.optim.lr_scheduler.MultiStepLR"


@dataclasses.dataclass(frozen=True)
class Case:
    fixed: tuple[str | None, str | None] = (None, None)  # what the project's script gives LightningCLI
    refused: str | None = None  # why there is no exact conversion (read under --approximate)


CASES = {
    "tu_cifar10_resnet18_standard.yaml": Case(),
    "tu_tinyimagenet_resnet18_standard.yaml": Case(),
    "tu_camvid_segformer.yaml": Case(),  # no max_epochs: the Trainer's 1000 epochs
    "tu_cifar10_wideresnet28x10_standard.yaml": Case(refused="EXP201"),
    # experiments/classification/mnist/lenet.py: parser.add_optimizer_args(torch.optim.SGD)
    "tu_mnist_lenet_bayesian.yaml": Case((SGD, None), refused="EXP201"),
    # experiments/classification/cifar10/resnet.py @508c12de: add_optimizer_args(SGD),
    # add_lr_scheduler_args(MultiStepLR)
    "tu_cifar10_resnet18_standard_2024-01.yaml": Case((SGD, MULTISTEP), refused="EXP201"),
    "tu_cifar10_resnet50_packed.yaml": Case(refused="EXP201"),
    "tu_cifar100_resnet18_masked.yaml": Case(refused="EXP201"),
    "tu_mnist_lenet_ema.yaml": Case(refused="EXP201"),
    "tu_mnist_lenet_checkpoint_ensemble_cycle.yaml": Case(refused="EXP201"),  # no lr_scheduler: constant LR
    "tu_cityscapes_deeplab.yaml": Case(),  # PolynomialLR
    "tu_camvid_deeplab.yaml": Case(),  # PolynomialLR
    "tu_kitti_bts.yaml": Case(refused="EXP202"),  # AdamW
    "tu_muad_unet_standard.yaml": Case(refused="EXP202"),  # Adam
}
# The project's own scheduler classes: neither explr nor LightningCLI (without the project installed) builds them.
UNKNOWN_CLASS = {"tu_mnist_lenet_swa.yaml": r"swa.yaml:55: unknown LR scheduler class "
                                            r"'torch_uncertainty.optim_recipes.CosineSWALR'"}


def test_every_real_fixture_has_a_case():
    assert sorted(p.name for p in DIR.glob("*.yaml")) == sorted([*CASES, *UNKNOWN_CLASS])


def _convert(name: str, **options):
    case = CASES[name]
    return convert(str(DIR / name), iters_per_epoch=IPE, optimizer_class=case.fixed[0],
                   scheduler_class=case.fixed[1], **options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reading_equals_the_real_lightningcli(name):
    plan = _convert(name, approximate=True).plan
    oracle = lightning_schedule((DIR / name).read_text(), IPE, CASES[name].fixed)
    assert plan.total_iters == oracle.total_iters
    assert [plan.lr.lr_at(i) for i in range(plan.total_iters)] == pytest.approx(oracle.lrs, rel=1e-12, abs=0)
    (group,) = oracle.groups
    assert plan.weight_decay == group["weight_decay"]
    if plan.optimizer == "sgd":
        assert (plan.momentum, plan.dampening, plan.nesterov) == \
            (group["momentum"], group["dampening"], group["nesterov"])
    assert plan.lr.base_lr == group.get("initial_lr", group["lr"])  # no scheduler: no initial_lr


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.refused))
def test_refused_for_the_right_reason_then_read_under_approximate(name):
    with pytest.raises(UnsupportedError, match=rf"no exact conversion: .*\[{CASES[name].refused}\]"):
        _convert(name)
    converted = _convert(name, approximate=True)
    assert not converted.exact and CASES[name].refused in converted.not_exact_because[0]


@pytest.mark.parametrize("name", sorted(UNKNOWN_CLASS))
def test_project_scheduler_class_is_refused_naming_it(name):
    with pytest.raises(ConfigError, match=UNKNOWN_CLASS[name]):
        convert(str(DIR / name), iters_per_epoch=IPE, approximate=True)


def test_class_inferred_from_arguments_is_said_and_ambiguity_names_the_flag():
    name = "tu_cifar10_resnet18_standard_2024-01.yaml"
    with pytest.raises(ConfigError, match=r"2024-01.yaml:39: optimizer has no class_path .* \(Muon, SGD\); "
                                          r"pass --optimizer-class"):
        convert(str(DIR / name), iters_per_epoch=IPE, approximate=True)  # torch has two such optimizers
    converted = convert(str(DIR / name), iters_per_epoch=IPE, approximate=True, optimizer_class=SGD)
    (note,) = [f for f in converted.findings if f.code == "EXP210"]
    assert "read as torch.optim.lr_scheduler.MultiStepLR, the only torch LR scheduler taking milestones, gamma" \
        in note.message and note.location.line == 44
    with pytest.raises(ConfigError, match="contradicts --optimizer-class"):
        convert(str(DIR / "tu_cifar10_resnet18_standard.yaml"), iters_per_epoch=IPE, optimizer_class="torch.optim.Adam")


def _deviation(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b) and a
    return max(((x - y).abs().max() / x.abs().max()).item() for x, y in zip(a, b))


@pytest.mark.parametrize("name,epochs", [("tu_cifar10_resnet18_standard.yaml", 27),  # across the epoch-25 decay
                                         ("tu_tinyimagenet_resnet18_standard.yaml", 6),  # cosine
                                         ("tu_camvid_deeplab.yaml", 6)])  # PolynomialLR
def test_converted_config_fits_exactly_like_the_original_under_lightningcli(name, epochs):
    converted = _convert(name)
    assert converted.exact
    original = lightning_fit((DIR / name).read_text(), epochs, IPE)
    texp = lightning_fit(converted_output(converted).text, epochs, IPE)  # si: audit, bound by ExplrCallback
    assert _deviation(original.outputs, texp.outputs) <= 1e-9


def test_script_fixed_scheduler_class_fits_exactly_with_texp_fixed_in_the_script(tmp_path):
    """A real config without class_path (nesterov switched off here: Nesterov has no exact conversion)."""
    source = (DIR / "tu_cifar10_resnet18_standard_2024-01.yaml").read_text()
    source = source.replace("nesterov: true", "nesterov: false")
    path = tmp_path / "plain_momentum.yaml"
    path.write_text(source)
    converted = convert(str(path), iters_per_epoch=IPE, optimizer_class=SGD)
    written = converted_output(converted)
    assert any("parser.add_lr_scheduler_args(explr.integrations.lightning.TEXPScheduler)" in n for n in written.notes)
    original = lightning_fit(source, 27, IPE, (SGD, MULTISTEP))
    texp = lightning_fit(written.text, 27, IPE, (SGD, "explr.integrations.lightning.TEXPScheduler"))
    assert _deviation(original.outputs, texp.outputs) <= 1e-9
