"""pycls YAML -> TrainingPlan, checked against a re-implementation of pycls/core/optimizer.py get_epoch_lr."""
import math

import pytest

from explr.configs.adapter import ReadOptions
from explr.configs.detectron2 import ADAPTER as DETECTRON2
from explr.configs.pycls import ADAPTER as PYCLS
from explr.configs.source import ConfigSource
from explr.configs.timm import ADAPTER as TIMM
from explr.errors import ConfigError
from explr.rules.config import config_findings


def pycls_epoch_lr(e, *, base_lr, policy, max_epoch, steps=(), lr_mult=0.1, min_lr=0.0, warmup_epochs=0,
                   warmup_factor=0.1):
    """get_epoch_lr of pycls/core/optimizer.py (lr_fun_steps/cos/lin/exp, linear warmup factor)."""
    if policy == "steps":
        factor = lr_mult ** [i for i, s in enumerate(steps) if e >= s][-1]
    elif policy == "exp":
        factor = min_lr ** (e / max_epoch)
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * e / max_epoch)) if policy == "cos" else 1.0 - e / max_epoch
        factor = (1.0 - min_lr) * shape + min_lr
    lr = factor * base_lr
    if e < warmup_epochs:
        alpha = e / warmup_epochs
        lr *= warmup_factor * (1.0 - alpha) + alpha
    return lr


def read(path, **options):
    return PYCLS.read(ConfigSource.load(path), ReadOptions(**options))


def assert_per_epoch(plan, reference, epochs):
    """pycls sets the LR once per epoch: every iteration of epoch e has get_epoch_lr(e)."""
    ipe = plan.iters_per_epoch
    for e in range(epochs):
        for i in (e * ipe, e * ipe + ipe // 3, (e + 1) * ipe - 1):
            assert plan.lr.lr_at(i) == pytest.approx(reference(e), rel=1e-12), (e, i)


def test_cifar_resnet56_steps_is_nesterov_with_bn_decay(fixtures_dir):
    plan = read(fixtures_dir / "configs/pycls/cifar_resnet56_steps.yaml")
    assert (plan.format, plan.optimizer, plan.nesterov, plan.momentum, plan.dampening) == ("pycls", "sgd", True, 0.9, 0)
    assert "nesterov" not in plan.locations  # pycls's default OPTIM.NESTEROV: True
    assert (plan.decay.other, plan.decay.norm, plan.decay.for_kind("bias")) == (1e-4, 0.0, 1e-4)
    assert (plan.iters_per_epoch, plan.epochs, plan.scheduler_interval) == (50_000 // 128, 160, "epoch")
    assert plan.lr.milestones == (80 * 390, 120 * 390) and plan.lr.step_every == 390
    lines = {fact: loc.line for fact, loc in plan.locations.items()}
    assert lines == {"weight_decay_norm": 10, "lr": 12, "schedule": 13, "milestones": 14, "gamma": 15, "epochs": 16,
                     "momentum": 17, "weight_decay": 18, "dataset": 20, "batch_size": 22, "num_devices": 23}
    assert_per_epoch(plan, lambda e: pycls_epoch_lr(e, base_lr=0.1, policy="steps", max_epoch=160,
                                                    steps=[0, 80, 120]), 160)


def test_imagenet_cos_warmup_over_eight_gpus(fixtures_dir):
    plan = read(fixtures_dir / "configs/pycls/imagenet_regnet_cos_warmup.yaml")
    ipe = 1_281_167 // 1024  # 8 GPUs x 128 images, last partial batch dropped
    assert (plan.iters_per_epoch, plan.total_iters, plan.precision) == (ipe, 100 * ipe, "16-mixed")
    assert (plan.decay.other, plan.decay.norm, plan.nesterov) == (5e-5, None, True)
    assert plan.where("warmup_iters").line == 19 and plan.where("nesterov").line == 17
    assert_per_epoch(plan, lambda e: pycls_epoch_lr(e, base_lr=0.8, policy="cos", max_epoch=100, warmup_epochs=5,
                                                    warmup_factor=0.1), 100)


@pytest.mark.parametrize("policy", ["lin", "exp", "cos"])
def test_min_lr_policies(tmp_path, policy):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"OPTIM:\n  LR_POLICY: {policy}\n  BASE_LR: 0.4\n  MIN_LR: 0.01\n  MAX_EPOCH: 20\n"
                    "  WARMUP_EPOCHS: 3\n  NESTEROV: False\nTRAIN:\n  BATCH_SIZE: 10\n")
    plan = read(path, dataset_size=100)
    assert plan.nesterov is False and plan.where("nesterov").line == 7
    assert_per_epoch(plan, lambda e: pycls_epoch_lr(e, base_lr=0.4, policy=policy, max_epoch=20, min_lr=0.01,
                                                    warmup_epochs=3), 20)


def test_detection_is_pycls_only(fixtures_dir):
    for path in sorted((fixtures_dir / "configs/pycls").glob("*.yaml")):
        source = ConfigSource.load(path)
        assert "OPTIM." in PYCLS.detect(source)
        assert DETECTRON2.detect(source) is None and TIMM.detect(source) is None
    assert PYCLS.detect(ConfigSource.load(fixtures_dir / "configs/detectron2/Base-RCNN-FPN.yaml")) is None


GOOD = "OPTIM:\n  LR_POLICY: steps\n  STEPS: [0, 3, 6]\n  MAX_EPOCH: 8\nTRAIN:\n  DATASET: cifar10\n  BATCH_SIZE: 100\n"


@pytest.mark.parametrize("edit, match", [
    (("[0, 3, 6]", "[3, 6]"), r"cfg.yaml:3: OPTIM.STEPS is \[3, 6\]; the 'steps' policy needs a list starting at 0"),
    (("[0, 3, 6]", "[0, 6, 3]"), r"cfg.yaml:3: OPTIM.STEPS .* strictly increasing"),
    (("LR_POLICY: steps", "LR_POLICY: poly"), r"cfg.yaml:2: OPTIM.LR_POLICY is 'poly'; pycls defines"),
    (("LR_POLICY: steps", "LR_POLICY: exp"), r"cfg.yaml:2: LR_POLICY 'exp' changed meaning .* set OPTIM.MIN_LR"),
    (("LR_POLICY: steps", "LR_POLICY: exp\n  MIN_LR: 0.0"), r"cfg.yaml:3: OPTIM.MIN_LR is 0.0; the 'exp' policy needs"),
    (("LR_POLICY: steps", "OPTIMIZER: lamb"), r"cfg.yaml:2: OPTIM.OPTIMIZER is 'lamb'"),
    (("DATASET: cifar10", "DATASET: mydata"), r"cfg.yaml: cannot tell iterations per epoch"),
    (("BATCH_SIZE: 100", "BATCH_SIZE: 100\nNUM_GPUS: 3"), r"cfg.yaml:7: TRAIN.BATCH_SIZE is 100; .*NUM_GPUS=3"),
    (("MAX_EPOCH: 8", "MAX_EPOCH: 0"), r"cfg.yaml:4: OPTIM.MAX_EPOCH is 0"),
])
def test_bad_input_names_file_line_and_fix(tmp_path, edit, match):
    ok = tmp_path / "ok.yaml"
    ok.write_text(GOOD)
    assert read(ok).total_iters == 8 * 500
    path = tmp_path / "cfg.yaml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ConfigError, match=match):
        read(path)


def test_steps_at_or_past_max_epoch_are_never_reached_and_reported(tmp_path):
    """lr_fun_steps only looks at epochs < MAX_EPOCH: a later step is ignored, and EXP209 says so."""
    path = tmp_path / "cfg.yaml"
    path.write_text(GOOD.replace("[0, 3, 6]", "[0, 3, 8, 9]"))
    plan = PYCLS.read(ConfigSource.load(path), ReadOptions())
    assert plan.lr.milestones == (3 * 500,) and plan.ignored_milestones == (8 * 500, 9 * 500)
    assert [f.code for f in config_findings(plan)].count("EXP209") == 1
