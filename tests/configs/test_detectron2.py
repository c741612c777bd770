"""detectron2 YAML -> TrainingPlan, checked against a re-implementation of detectron2's LRMultiplier + fvcore."""
import bisect
import math

import pytest

from explr.configs.adapter import ReadOptions
from explr.configs.detectron2 import ADAPTER as DETECTRON2
from explr.configs.formats import entry_for
from explr.configs.pycls import ADAPTER as PYCLS
from explr.configs.source import ConfigSource
from explr.configs.timm import ADAPTER as TIMM
from explr.errors import ConfigError, UnsupportedError

EPS = 1e-6  # fvcore ParamScheduler.WHERE_EPSILON


def d2_lr(i, *, base_lr, max_iter, warmup_iters, warmup_factor, main, method="linear"):
    """BASE_LR * WarmupParamScheduler(main)(i / MAX_ITER) (detectron2/solver/lr_scheduler.py, fvcore composite)."""
    where, warmup_len = i / max_iter, min(warmup_iters / max_iter, 1.0)
    if where + EPS > warmup_len:  # CompositeParamScheduler moves on to the "fixed" main scheduler
        return base_lr * main(where)
    start, end = warmup_factor * main(0.0), main(warmup_len)
    if method == "constant":
        return base_lr * start
    scaled = where / warmup_len  # "rescaled" interval of the LinearParamScheduler
    return base_lr * (end * scaled + start * (1 - scaled))


def multistep(steps, gamma, max_iter):
    return lambda where: gamma ** bisect.bisect_right(steps, int((where + EPS) * max_iter))


def cosine(end_value):
    return lambda where: end_value + 0.5 * (1 - end_value) * (1 + math.cos(math.pi * where))


def read(path, **options):
    return DETECTRON2.read(ConfigSource.load(path), ReadOptions(**options))


def test_base_inheritance_tuple_steps_and_locations(fixtures_dir):
    d2 = fixtures_dir / "configs/detectron2"
    plan = read(d2 / "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    assert (plan.format, plan.optimizer, plan.nesterov, plan.momentum) == ("detectron2", "sgd", False, 0.9)
    assert plan.lr.base_lr == 0.01 and plan.lr.milestones == (60000, 80000) and plan.total_iters == 90000
    assert (plan.lr.warmup_iters, plan.lr.warmup_factor, plan.lr.step_every) == (1000, 0.001, 1)
    assert plan.decay.other == 1e-4 and plan.decay.for_kind("norm") == 0 and plan.decay.for_kind("bias") == 1e-4
    assert plan.iters_per_epoch == math.ceil(118_287 / 8)  # IMS_PER_BATCH (global) from the child file
    where = {fact: (loc.path.rsplit("/", 1)[-1], loc.line) for fact, loc in plan.locations.items()}
    assert where["lr"] == ("faster_rcnn_R_50_FPN_1x.yaml", 10)
    assert where["batch_size"] == ("faster_rcnn_R_50_FPN_1x.yaml", 9)
    assert where["milestones"] == ("Base-RCNN-FPN.yaml", 13) and where["total_iters"] == ("Base-RCNN-FPN.yaml", 14)
    assert where["dataset"] == ("Base-RCNN-FPN.yaml", 8)
    assert where["warmup_iters"] == ("faster_rcnn_R_50_FPN_1x.yaml", 12)
    assert "warmup_factor" not in where  # detectron2's default: no location


def test_multistep_lr_matches_detectron2_every_iteration(fixtures_dir):
    plan = read(fixtures_dir / "configs/detectron2/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    main = multistep([60000, 80000], 0.1, 90000)
    for i in range(0, 90000):
        want = d2_lr(i, base_lr=0.01, max_iter=90000, warmup_iters=1000, warmup_factor=0.001, main=main)
        assert plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12), i


def test_cosine_warmup_ramps_to_the_cosine_value(fixtures_dir):
    plan = read(fixtures_dir / "configs/detectron2/COCO-Detection/retinanet_cosine.yaml")
    assert (plan.lr.decay, plan.lr.eta_min, plan.nesterov, plan.precision, plan.grad_clip_norm) == (
        "cosine", 1e-4, True, "16-mixed", 1.0)
    assert (plan.decay.other, plan.decay.norm, plan.decay.bias) == (5e-5, 0.0, 0.0)
    main = cosine(1e-4 / 0.01)
    for i in range(5000):
        want = d2_lr(i, base_lr=0.01, max_iter=5000, warmup_iters=500, warmup_factor=0.01, main=main)
        assert plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12), i
    # the ramp ends at the cosine value, not at BASE_LR (what a multiplied warmup would give)
    assert plan.lr.lr_at(499) < 0.01 * main(499 / 5000)


def test_iters_per_epoch_unknown_is_none_not_an_error(tmp_path):
    path = tmp_path / "solver.yaml"
    path.write_text("SOLVER:\n  BASE_LR: 0.02\n  STEPS: (600, 800)\n  MAX_ITER: 900\n  WARMUP_ITERS: 0\n")
    plan = read(path)
    assert plan.iters_per_epoch is None and plan.epochs is None and plan.total_iters == 900
    assert plan.lr.lr_at(0) == 0.02 and plan.lr.lr_at(800) == pytest.approx(0.0002)
    assert read(path, iters_per_epoch=90).epochs == 10
    with pytest.raises(ConfigError, match="--iters-per-epoch=0 must be > 0"):
        read(path, iters_per_epoch=0)
    both = tmp_path / "two.yaml"
    both.write_text('DATASETS:\n  TRAIN: ("coco_2017_train", "cifar10")\n' + path.read_text())
    assert read(both, batch_size=4, num_devices=2).iters_per_epoch == math.ceil((118_287 + 50_000) / 8)


def test_detection_and_registration(fixtures_dir):
    for path in sorted((fixtures_dir / "configs/detectron2").rglob("*.yaml")):
        source = ConfigSource.load(path)
        assert DETECTRON2.detect(source) and TIMM.detect(source) is None and PYCLS.detect(source) is None
    base = ConfigSource.load(fixtures_dir / "configs/detectron2/Base-RCNN-FPN.yaml")
    assert "SOLVER.BASE_LR" in DETECTRON2.detect(base)
    for name, adapter in (("detectron2", DETECTRON2), ("pycls", PYCLS), ("timm", TIMM)):
        entry = entry_for(name)
        assert entry.adapter() is adapter and entry.writer is not None  # framework-idiomatic output


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_missing_and_cyclic_base(tmp_path):
    missing = write(tmp_path, "cfgs/child.yaml", "_BASE_: ../nowhere/base.yaml\nSOLVER:\n  BASE_LR: 0.1\n")
    with pytest.raises(ConfigError, match=r"child.yaml:1: _BASE_ file .*nowhere/base.yaml does not exist"):
        read(missing)
    write(tmp_path, "a.yaml", "_BASE_: b.yaml\nSOLVER:\n  BASE_LR: 0.1\n")
    cyclic = write(tmp_path, "b.yaml", "SOLVER:\n  MAX_ITER: 10\n_BASE_: a.yaml\n")
    cycle = r"b.yaml:3: _BASE_ 'a.yaml' makes an inheritance cycle \(.*a.yaml -> .*b.yaml -> .*a.yaml\)"
    with pytest.raises(ConfigError, match=cycle):
        read(tmp_path / "a.yaml")
    assert cyclic.exists()


GOOD = "SOLVER:\n  BASE_LR: 0.02\n  STEPS: (600, 800)\n  MAX_ITER: 900\n  WARMUP_ITERS: 100\n"


@pytest.mark.parametrize("edit, error, match", [
    (("(600, 800)", "(600, 900)"), ConfigError, r"cfg.yaml:3: SOLVER.STEPS has 900 = MAX_ITER, which detectron2's "
                                              r"MultiStepParamScheduler rejects"),
    (("(600, 800)", "(800, 600)"), ConfigError, r"cfg.yaml:3: SOLVER.STEPS .* strictly increasing"),
    (("(600, 800)", "sixty"), ConfigError, r"cfg.yaml:3: SOLVER.STEPS is 'sixty'; it must be a list of numbers"),
    (("MAX_ITER: 900", "MAX_ITER: 900\n  WARMUP_METHOD: cosine"), ConfigError, r"cfg.yaml:5: SOLVER.WARMUP_METHOD is 'cosine'"),
    (("WARMUP_ITERS: 100", "WARMUP_ITERS: -5"), ConfigError, r"cfg.yaml:5: SOLVER.WARMUP_ITERS is -5; it must be >= 0"),
    (("MAX_ITER: 900", "MAX_ITER: 900\n  LR_SCHEDULER_NAME: WarmupCyclicLR"), ConfigError,
     r"cfg.yaml:5: SOLVER.LR_SCHEDULER_NAME is 'WarmupCyclicLR'; explr converts"),
    (("MAX_ITER: 900", "MAX_ITER: 900\n  WEIGHT_DECAY_BIAS: 0.0001"), UnsupportedError,
     r"cfg.yaml:5: WEIGHT_DECAY_BIAS=0.0001 also applies to norm-layer biases"),
    (("MAX_ITER: 900", "MAX_ITER: 900\n  BIAS_LR_FACTOR: 2.0"), UnsupportedError, r"cfg.yaml:5: SOLVER.BIAS_LR_FACTOR"),
    (("MAX_ITER: 900", "MAX_ITER: 900\n  CLIP_GRADIENTS:\n    ENABLED: true"), UnsupportedError,
     r"CLIP_TYPE='value'"),
    (("BASE_LR: 0.02", "BASE_LR: null"), ConfigError, r"cfg.yaml:2: SOLVER.BASE_LR is null"),
    (("BASE_LR: 0.02", "BASE_LR: 0.02\n  OPTIMIZER: ADAMW"), UnsupportedError, r"cfg.yaml:3: SOLVER.OPTIMIZER='ADAMW'"),
])
def test_bad_input_names_file_line_and_fix(tmp_path, edit, error, match):
    assert read(write(tmp_path, "ok.yaml", GOOD)).total_iters == 900
    with pytest.raises(error, match=match):
        read(write(tmp_path, "cfg.yaml", GOOD.replace(*edit)))
