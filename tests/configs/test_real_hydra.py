"""Real public Hydra configs (fixtures/configs/hydra/real, SOURCES.md): explr's reading equals what Hydra
composes and `hydra.utils.instantiate` builds, stepped the way each project's training code steps it; what
explr refuses, it refuses for the reason the config really has; a converted config instantiated by Hydra
trains exactly like the original (float64, BatchNorm eps 1e-30)."""
from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from explr.configs.api import convert
from explr.configs.hydra_compose import composed
from explr.configs.source import ConfigSource
from explr.configs.write import converted_output
from explr.errors import ConfigError, UnsupportedError
from tests.conftest import FIXTURES
from tests.configs.hydra_oracle import PROJECTS, hydra_schedule, load
from tests.configs.lightning_oracle import TinyNet

DIR = FIXTURES / "configs" / "hydra" / "real"
IPE = 3
MBLS, RHO = DIR / "mbls" / "defaults.yaml", DIR / "rho_loss" / "standard_training.yaml"


@pytest.mark.parametrize("path,project,flags", [
    (MBLS, "mbls", {"epochs": 200}),  # the length lives in train.max_epoch, a key explr does not know
    (RHO, "rho_loss", {}),
    # hungdinhxuan/Lightning-hydra src/models/base/base_module.py: the same partial calls as the template,
    # interval "epoch"; the length lives in trainer/ (not in this group file): 10 epochs given here
    (DIR / "hdx_model_xlsr_conformertcm_mbct_lora.yaml", "lht", {"epochs": 10}),
])
def test_reading_equals_hydra_instantiate(path, project, flags):
    plan = convert(str(path), iters_per_epoch=IPE, approximate=True, **flags).plan
    oracle = hydra_schedule(load(path), PROJECTS[project], IPE)
    assert plan.total_iters == oracle.total_iters
    assert [plan.lr.lr_at(i) for i in range(plan.total_iters)] == pytest.approx(oracle.lrs, rel=1e-12, abs=0)
    (group,) = oracle.groups
    assert (plan.lr.base_lr, plan.weight_decay) == (group["initial_lr"], group["weight_decay"])
    if plan.optimizer == "sgd":
        assert (plan.momentum, plan.dampening, plan.nesterov) == \
            (group["momentum"], group["dampening"], group["nesterov"])


def test_mbls_length_flags_clipping_and_late_milestone():
    with pytest.raises(ConfigError, match="length of training is unknown.*--epochs N or --total-iters N"):
        convert(str(MBLS), iters_per_epoch=IPE)
    with pytest.raises(UnsupportedError, match=r"`train.clip_grad_norm` .*\[EXP203\]"):  # clip_grad_norm_(..., 2)
        convert(str(MBLS), iters_per_epoch=IPE, epochs=200)
    converted = convert(str(MBLS), iters_per_epoch=IPE, epochs=200, approximate=True)
    (late,) = [f for f in converted.findings if f.code == "EXP209"]  # milestone 250 of a 200-epoch run
    assert late.severity.value == "info" and str(250 * IPE) in late.message
    assert converted.plan.lr.milestones == (150 * IPE,)


def test_cfg_job_output_resolves_interpolations_and_refuses_what_torch_refuses():
    """The README's `--cfg job` print: `${optim.lr}` etc. resolve; `verbose` is gone from torch's MultiStepLR."""
    path = DIR / "mbls_cfg_job.yaml"
    with pytest.raises(InstantiationException, match="verbose"):  # Hydra cannot build it either
        PROJECTS["mbls"].build_scheduler(OmegaConf.load(path), torch.optim.SGD([torch.nn.Parameter(torch.ones(1))]))
    with pytest.raises(ConfigError, match=r"mbls_cfg_job.yaml:\d+: 'verbose' is not an argument of MultiStepLR"):
        convert(str(path), iters_per_epoch=IPE, epochs=200, approximate=True)
    trimmed = path.read_text().replace("    verbose: true\n", "")
    assert convert_text(trimmed, epochs=200, approximate=True).plan.momentum == 0.9  # ${optim.momentum}


def convert_text(text: str, **options):
    import tempfile
    import pathlib

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "job.yaml"
        path.write_text(text)
        return convert(str(path), iters_per_epoch=IPE, **options)


def test_cals_timm_scheduler_is_refused_not_read_as_constant():
    cfg = load(DIR / "cals" / "defaults.yaml")
    assert cfg.lr_scheduler.object._target_.startswith("timm.scheduler")
    with pytest.raises(ConfigError, match=r"scheduler timm.scheduler.cosine_lr.CosineLRScheduler is not a "
                                          r"torch.optim.lr_scheduler class"):
        convert(str(DIR / "cals" / "defaults.yaml"), iters_per_epoch=IPE, approximate=True)


def test_lightning_hydra_template_reduce_on_plateau_is_refused():
    cfg = OmegaConf.load(DIR / "lht_model_mnist.yaml")
    project = PROJECTS["lht"]
    scheduler = project.build_scheduler(cfg, project.build_optimizer(cfg, [torch.nn.Parameter(torch.ones(1))]))
    assert type(scheduler).__name__ == "ReduceLROnPlateau"  # what the template really trains with
    for approximate in (False, True):  # its LR follows a metric: no schedule to convert, even approximately
        with pytest.raises(ConfigError, match=r"lht_model_mnist.yaml:10: scheduler ReduceLROnPlateau decays when "
                                              r"a monitored metric stops improving"):
            convert(str(DIR / "lht_model_mnist.yaml"), iters_per_epoch=IPE, epochs=10, approximate=approximate)


@pytest.mark.parametrize("text,message", [
    ("optimizer: {_target_: torch.optim.SGD, lr: '${nope.lr}'}\nepochs: 3\n",
     r"c.yaml:1: optimizer.lr: cannot resolve '\$\{nope.lr\}': Interpolation key 'nope.lr' not found"),
    ("optimizer: {_target_: torch.optim.SGD, lr: '${sesemi:lr}'}\nepochs: 3\n",
     r"optimizer.lr: cannot resolve .*Unsupported interpolation type sesemi: a custom resolver"),
    ("optimizer:\n  _target_: torch.optim.SGD\n  lr: ???\nepochs: 3\n",
     r"c.yaml:3: optimizer.lr: cannot resolve '\?\?\?': is \?\?\? \(a mandatory value"),
    ("trainer: {max_epochs: '${x.y}'}\noptimizer: {_target_: torch.optim.SGD, lr: 0.1}\n",
     r"c.yaml:1: trainer.max_epochs: cannot resolve"),
])
def test_unresolvable_interpolation_is_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        convert(str(path), iters_per_epoch=IPE)


def test_unresolvable_value_explr_does_not_read_is_no_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_dir: ${now:%Y-%m-%d}\noptim: {lr: 0.1, m: 0.9}\noptimizer:\n  _target_: torch.optim.SGD\n"
                    "  lr: ${optim.lr}\n  momentum: ${optim.m}\ntrainer: {max_epochs: 4}\n")
    plan = convert(str(path), iters_per_epoch=IPE).plan
    assert (plan.lr.base_lr, plan.momentum, plan.total_iters) == (0.1, 0.9, 4 * IPE)


def test_compose_error_is_one_line(tmp_path):
    (tmp_path / "main.yaml").write_text("defaults:\n  - optim: sgd\n  - _self_\n")
    with pytest.raises(ConfigError, match=r"main.yaml: Hydra cannot compose this config: .*optim"):
        convert(str(tmp_path / "main.yaml"), iters_per_epoch=IPE)


def test_composed_config_is_written_whole_not_in_place(tmp_path):
    converted = convert(str(RHO), iters_per_epoch=IPE)
    with pytest.raises(ConfigError, match="write it with -o FILE"):
        converted_output(converted, in_place=True)
    text = converted_output(converted).text
    assert text.startswith(f"# composed by Hydra (compose API) from {RHO}")
    assert OmegaConf.create(text).scheduler._target_ == "explr.integrations.hydra.TEXPScheduler"


def _train(model, optimizer, scheduler, steps: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(4)
    data = [(torch.randn(4, 3, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (4,), generator=g))
            for _ in range(IPE)]
    probe = torch.randn(3, 3, 6, 6, generator=g, dtype=torch.float64)
    outputs = []
    for step in range(steps):
        x, y = data[step % IPE]
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if (step + 1) % IPE == 0:
            scheduler.step()  # the project's loop: once per epoch
        with torch.no_grad():
            outputs.append(model(probe))
    return outputs


def test_converted_config_instantiated_by_hydra_trains_exactly_like_the_original():
    converted = convert(str(RHO), iters_per_epoch=IPE)
    assert converted.exact
    project, steps = PROJECTS["rho_loss"], 10 * IPE
    original_cfg, written_cfg = load(RHO), OmegaConf.create(converted_output(converted).text)
    runs = []
    for cfg in (original_cfg, written_cfg):
        model = TinyNet().double()
        optimizer = project.build_optimizer(cfg, list(model.parameters()))
        scheduler = project.build_scheduler(cfg, optimizer)
        if hasattr(scheduler, "bind"):
            scheduler.bind(model, torch.randn(2, 3, 6, 6, dtype=torch.float64))  # si: audit, on example inputs
        runs.append(_train(model, optimizer, scheduler, steps))
    worst = max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(*runs))
    assert worst <= 1e-9


def test_template_primary_composes_without_its_logging_plugin_and_plateau_is_refused():
    """ashleve/lightning-hydra-template configs/train.yaml: hydra/default.yaml overrides job_logging and
    hydra_logging with hydra-colorlog's configs; without that plugin Hydra composes the same job config when
    those two groups are set to default, which only changes the hydra.* node."""
    path = DIR / "lht" / "train.yaml"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(path.parent), version_base=None):
        with pytest.raises(MissingConfigException, match="hydra/job_logging/colorlog"):
            compose(config_name="train")
        job = compose(config_name="train", overrides=["hydra/job_logging=default", "hydra/hydra_logging=default"])
    GlobalHydra.instance().clear()
    source = composed(ConfigSource.load(path))
    assert source.data["model"] == OmegaConf.to_container(job.model)
    assert source.data["trainer"]["max_epochs"] == job.trainer.max_epochs == 10
    assert "# composed with hydra/job_logging=default: its plugin is not installed" in source.text
    with pytest.raises(ConfigError, match=r"scheduler ReduceLROnPlateau decays when a monitored metric stops improving"):
        convert(str(path), iters_per_epoch=IPE, approximate=True)


def test_experiment_override_alone_is_refused_with_how_to_compose_it():
    """An `# @package _global_` experiment overrides groups of the primary config: Hydra cannot compose it alone."""
    path = DIR / "hdx_experiment_21th_xlsr_conformertcm_mdt.yaml"
    with pytest.raises(ConfigError, match=r"Hydra cannot compose this config: .*Could not override 'data'.*"
                                          r"python train.py experiment=NAME --cfg job"):
        convert(str(path), iters_per_epoch=IPE, approximate=True)
