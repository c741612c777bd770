"""detectron2 configs read by explr vs the same configs loaded by fvcore and scheduled by fvcore, every iteration.

detectron2 itself does not install beside CPU torch, so the oracle is built from the pieces it is made of:
fvcore's real CfgNode (`merge_from_file` resolves `_BASE_` and decodes values the way detectron2's
CfgNode, a subclass, does) over detectron2's documented defaults, and fvcore's real ParamScheduler
classes assembled exactly as detectron2/solver/build.py build_lr_scheduler and
detectron2/solver/lr_scheduler.py WarmupParamScheduler / LRMultiplier do (facebookresearch/detectron2 @02b5c4e).
"""
import math
import pathlib

import pytest
import torch
from fvcore.common.config import CfgNode
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    CosineParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    StepWithFixedGammaParamScheduler,
)

from explr.configs.adapter import ReadOptions
from explr.configs.detectron2 import ADAPTER
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError

REAL = pathlib.Path(__file__).resolve().parents[2] / "fixtures/configs/detectron2/real"
REL = 1e-12


def detectron2_defaults() -> CfgNode:
    """detectron2/config/defaults.py: the SOLVER section verbatim, and DATASETS; other sections are free-form."""
    cfg = CfgNode(new_allowed=True)
    cfg.SOLVER = CfgNode({
        "LR_SCHEDULER_NAME": "WarmupMultiStepLR", "MAX_ITER": 40000, "BASE_LR": 0.001, "BASE_LR_END": 0.0,
        "MOMENTUM": 0.9, "NESTEROV": False, "WEIGHT_DECAY": 0.0001, "WEIGHT_DECAY_NORM": 0.0, "GAMMA": 0.1,
        "STEPS": (30000,), "NUM_DECAYS": 3, "WARMUP_FACTOR": 1.0 / 1000, "WARMUP_ITERS": 1000,
        "WARMUP_METHOD": "linear", "RESCALE_INTERVAL": False, "CHECKPOINT_PERIOD": 5000, "IMS_PER_BATCH": 16,
        "REFERENCE_WORLD_SIZE": 0, "BIAS_LR_FACTOR": 1.0, "WEIGHT_DECAY_BIAS": None,
        "CLIP_GRADIENTS": CfgNode({"ENABLED": False, "CLIP_TYPE": "value", "CLIP_VALUE": 1.0, "NORM_TYPE": 2.0}),
        "AMP": CfgNode({"ENABLED": False}),
    })
    cfg.DATASETS = CfgNode({"TRAIN": (), "PROPOSAL_FILES_TRAIN": (), "PRECOMPUTED_PROPOSAL_TOPK_TRAIN": 2000,
                            "TEST": (), "PROPOSAL_FILES_TEST": (), "PRECOMPUTED_PROPOSAL_TOPK_TEST": 1000})
    cfg.TEST = CfgNode({"EVAL_PERIOD": 0}, new_allowed=True)
    return cfg


def add_densepose_dataset_keys(cfg: CfgNode) -> None:
    """projects/DensePose/densepose/config.py add_dataset_category_config: the DATASETS keys DensePose adds."""
    for key in ("CATEGORY_MAPS", "WHITELISTED_CATEGORIES", "CLASS_TO_MESH_NAME_MAPPING"):
        cfg.DATASETS[key] = CfgNode(new_allowed=True)


def load(path: pathlib.Path) -> CfgNode:
    cfg = detectron2_defaults()
    if "DensePose" in path.parts:  # DensePose's train_net.py adds its keys before merging
        add_densepose_dataset_keys(cfg)
    if "DeepLab" in path.parts:  # projects/DeepLab/deeplab/config.py add_deeplab_config (its SOLVER keys)
        cfg.SOLVER.POLY_LR_POWER, cfg.SOLVER.POLY_LR_CONSTANT_ENDING = 0.9, 0.0
    cfg.merge_from_file(str(path), allow_unsafe=True)  # detectron2's CfgNode.merge_from_file passes allow_unsafe
    return cfg


def auto_scale_workers(cfg: CfgNode, num_workers: int) -> CfgNode:
    """detectron2/engine/defaults.py DefaultTrainer.auto_scale_workers."""
    old_world_size = cfg.SOLVER.REFERENCE_WORLD_SIZE
    if old_world_size == 0 or old_world_size == num_workers:
        return cfg
    cfg = cfg.clone()
    assert cfg.SOLVER.IMS_PER_BATCH % old_world_size == 0
    scale = num_workers / old_world_size
    cfg.SOLVER.IMS_PER_BATCH = int(round(cfg.SOLVER.IMS_PER_BATCH * scale))
    cfg.SOLVER.BASE_LR = cfg.SOLVER.BASE_LR * scale
    cfg.SOLVER.MAX_ITER = int(round(cfg.SOLVER.MAX_ITER / scale))
    cfg.SOLVER.WARMUP_ITERS = int(round(cfg.SOLVER.WARMUP_ITERS / scale))
    cfg.SOLVER.STEPS = tuple(int(round(s / scale)) for s in cfg.SOLVER.STEPS)
    return cfg


def warmup_param_scheduler(scheduler, warmup_factor, warmup_length, warmup_method="linear", rescale_interval=False):
    """detectron2/solver/lr_scheduler.py WarmupParamScheduler.__init__ (a CompositeParamScheduler)."""
    end_value = scheduler(0.0) if rescale_interval else scheduler(warmup_length)
    start_value = warmup_factor * scheduler(0.0)
    if warmup_method == "constant":
        warmup = ConstantParamScheduler(start_value)
    elif warmup_method == "linear":
        warmup = LinearParamScheduler(start_value, end_value)
    else:
        raise ValueError(f"Unknown warmup method: {warmup_method}")
    return CompositeParamScheduler([warmup, scheduler], interval_scaling=["rescaled", "rescaled" if rescale_interval
                                                                          else "fixed"],
                                   lengths=[warmup_length, 1 - warmup_length])


def build_lr_multiplier(cfg: CfgNode):
    """detectron2/solver/build.py build_lr_scheduler: the multiplier LRMultiplier applies at i / MAX_ITER."""
    name = cfg.SOLVER.LR_SCHEDULER_NAME
    if name == "WarmupMultiStepLR":
        steps = [x for x in cfg.SOLVER.STEPS if x <= cfg.SOLVER.MAX_ITER]
        sched = MultiStepParamScheduler(values=[cfg.SOLVER.GAMMA ** k for k in range(len(steps) + 1)],
                                        milestones=steps, num_updates=cfg.SOLVER.MAX_ITER)
    elif name == "WarmupCosineLR":
        end_value = cfg.SOLVER.BASE_LR_END / cfg.SOLVER.BASE_LR
        assert 0.0 <= end_value <= 1.0, end_value
        sched = CosineParamScheduler(1, end_value)
    elif name == "WarmupStepWithFixedGammaLR":
        sched = StepWithFixedGammaParamScheduler(base_value=1.0, gamma=cfg.SOLVER.GAMMA,
                                                 num_decays=cfg.SOLVER.NUM_DECAYS, num_updates=cfg.SOLVER.MAX_ITER)
    else:
        raise ValueError(f"Unknown LR scheduler: {name}")
    warmup_length = min(cfg.SOLVER.WARMUP_ITERS / cfg.SOLVER.MAX_ITER, 1.0)
    return warmup_param_scheduler(sched, cfg.SOLVER.WARMUP_FACTOR, warmup_length, cfg.SOLVER.WARMUP_METHOD,
                                  cfg.SOLVER.RESCALE_INTERVAL)


class WarmupPolyLR(torch.optim.lr_scheduler.LRScheduler):
    """projects/DeepLab/deeplab/lr_scheduler.py WarmupPolyLR.get_lr with detectron2/solver/lr_scheduler.py
    _get_warmup_factor_at_iter (facebookresearch/detectron2 @02b5c4e), line for line."""

    def __init__(self, optimizer, max_iters, warmup_factor, warmup_iters, warmup_method, power, constant_ending):
        self.max_iters, self.warmup_factor, self.warmup_iters = max_iters, warmup_factor, warmup_iters
        self.warmup_method, self.power, self.constant_ending = warmup_method, power, constant_ending
        super().__init__(optimizer)

    def _warmup_factor_at_iter(self, it: int) -> float:
        if it >= self.warmup_iters:
            return 1.0
        if self.warmup_method == "constant":
            return self.warmup_factor
        alpha = it / self.warmup_iters
        return self.warmup_factor * (1 - alpha) + alpha

    def get_lr(self) -> list[float]:
        warmup_factor = self._warmup_factor_at_iter(self.last_epoch)
        if self.constant_ending > 0 and warmup_factor == 1.0:
            if math.pow((1.0 - self.last_epoch / self.max_iters), self.power) < self.constant_ending:
                return [base_lr * self.constant_ending for base_lr in self.base_lrs]
        return [base_lr * warmup_factor * math.pow((1.0 - self.last_epoch / self.max_iters), self.power)
                for base_lr in self.base_lrs]


def deeplab_poly_lrs(cfg: CfgNode) -> list[float]:
    """projects/DeepLab/deeplab/build_solver.py build_lr_scheduler, stepped once per iteration by the trainer."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    scheduler = WarmupPolyLR(optimizer, cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_FACTOR, cfg.SOLVER.WARMUP_ITERS,
                             cfg.SOLVER.WARMUP_METHOD, cfg.SOLVER.POLY_LR_POWER, cfg.SOLVER.POLY_LR_CONSTANT_ENDING)
    lrs = []
    for _ in range(cfg.SOLVER.MAX_ITER):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def detectron2_lrs(cfg: CfgNode) -> list[float]:
    """LRMultiplier.get_lr: base_lr * multiplier(last_epoch / max_iter); last_epoch is the iteration index."""
    if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupPolyLR":
        return deeplab_poly_lrs(cfg)
    multiplier, max_iter = build_lr_multiplier(cfg), cfg.SOLVER.MAX_ITER
    return [cfg.SOLVER.BASE_LR * multiplier(i / max_iter) for i in range(max_iter)]


def detectron2_weight_decays(cfg: CfgNode) -> dict[str, float]:
    """detectron2/solver/build.py get_default_optimizer_params on a conv+bias, a BatchNorm, a Linear+bias."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2), torch.nn.Linear(2, 2))
    overrides = {"bias": {"weight_decay": cfg.SOLVER.WEIGHT_DECAY_BIAS}} if cfg.SOLVER.WEIGHT_DECAY_BIAS is not None \
        else {}
    decays = {}
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            hyper = {"weight_decay": cfg.SOLVER.WEIGHT_DECAY}
            if isinstance(module, torch.nn.BatchNorm2d) and cfg.SOLVER.WEIGHT_DECAY_NORM is not None:
                hyper["weight_decay"] = cfg.SOLVER.WEIGHT_DECAY_NORM
            hyper.update(overrides.get(param_name, {}))
            decays[f"{module_name}.{param_name}"] = hyper["weight_decay"]
    return decays


REAL_CONFIGS = sorted(p for p in REAL.rglob("*.yaml") if "Panoptic-DeepLab" not in str(p))  # ADAM: refused


@pytest.mark.parametrize("path", REAL_CONFIGS, ids=lambda p: str(p.relative_to(REAL)))
def test_real_config_reads_as_detectron2_runs_it(path):
    cfg = load(path)
    plan = ADAPTER.read(ConfigSource.load(path), ReadOptions())
    lrs = detectron2_lrs(cfg)
    assert plan.total_iters == len(lrs) == cfg.SOLVER.MAX_ITER
    bad = [i for i, lr in enumerate(lrs) if abs(plan.lr.lr_at(i) - lr) > REL * lr]
    assert not bad, f"first differing iteration {bad[0]}: explr {plan.lr.lr_at(bad[0])!r}, fvcore {lrs[bad[0]]!r}"
    assert (plan.momentum, plan.nesterov, plan.dampening) == (cfg.SOLVER.MOMENTUM, cfg.SOLVER.NESTEROV, 0.0)
    kinds = {"0.weight": "other", "0.bias": "bias", "1.weight": "norm", "1.bias": "norm", "2.weight": "other",
             "2.bias": "bias"}
    assert {name: plan.decay.for_kind(kind) for name, kind in kinds.items()} == detectron2_weight_decays(cfg)
    sizes = {"coco_2017_train": 118_287}
    train = list(cfg.DATASETS.TRAIN)
    known = bool(train) and all(name in sizes for name in train)
    expected = -(-sum(sizes[n] for n in train) // cfg.SOLVER.IMS_PER_BATCH) if known else None
    assert plan.iters_per_epoch == expected  # unknown datasets (VOC, Cityscapes, DensePose, coco_2017_val_100)


SOLVER_VARIANTS = {
    "cosine": "LR_SCHEDULER_NAME: WarmupCosineLR\n  BASE_LR_END: 0.0002",
    "cosine_rescaled": "LR_SCHEDULER_NAME: WarmupCosineLR\n  BASE_LR_END: 0.0002\n  RESCALE_INTERVAL: true",
    "multistep_rescaled": "RESCALE_INTERVAL: true\n  STEPS: (300, 700)",
    "fixed_gamma": "LR_SCHEDULER_NAME: WarmupStepWithFixedGammaLR\n  NUM_DECAYS: 4\n  GAMMA: 0.5",
    "constant_warmup": "WARMUP_METHOD: constant\n  WARMUP_FACTOR: 0.25",
    "steps_past_max_iter": "STEPS: (300, 999, 5000, 90000)",
    "warmup_longer_than_run": "WARMUP_ITERS: 2000\n  STEPS: (500,)",
    "no_warmup": "WARMUP_ITERS: 0\n  STEPS: (1, 2, 998)",
    "reference_world_size": "REFERENCE_WORLD_SIZE: 4\n  IMS_PER_BATCH: 16\n  STEPS: (301, 703)\n  WARMUP_ITERS: 77",
}


@pytest.mark.parametrize("variant", SOLVER_VARIANTS)
def test_solver_options_match_fvcore_every_iteration(tmp_path, variant):
    (tmp_path / "Base.yaml").write_text((REAL / "configs/Base-RCNN-FPN.yaml").read_text())
    config = tmp_path / "cfg.yaml"
    lines = SOLVER_VARIANTS[variant].split("\n  ")
    given = {line.split(":")[0] for line in lines}
    defaults = ("MAX_ITER: 1000", "BASE_LR: 0.02", "WARMUP_ITERS: 100")
    lines += [line for line in defaults if line.split(":")[0] not in given]
    config.write_text("_BASE_: Base.yaml\nSOLVER:\n" + "".join(f"  {line}\n" for line in lines))
    cfg = auto_scale_workers(load(config), num_workers=8)
    plan = ADAPTER.read(ConfigSource.load(config), ReadOptions(num_devices=8))
    lrs = detectron2_lrs(cfg)
    assert plan.total_iters == len(lrs)
    bad = [i for i, lr in enumerate(lrs) if abs(plan.lr.lr_at(i) - lr) > REL * lr]
    assert not bad, f"first differing iteration {bad[0]}: explr {plan.lr.lr_at(bad[0])!r}, fvcore {lrs[bad[0]]!r}"


def test_steps_past_max_iter_are_dropped_and_reported(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("SOLVER:\n  MAX_ITER: 1000\n  STEPS: (300, 999, 5000, 90000)\n")
    plan = ADAPTER.read(ConfigSource.load(config), ReadOptions())
    assert plan.lr.milestones == (300, 999) and plan.ignored_milestones == (5000, 90000)  # build_lr_scheduler warns


def test_reference_world_size_needs_the_number_of_devices(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("SOLVER:\n  REFERENCE_WORLD_SIZE: 8\n  IMS_PER_BATCH: 16\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:2: REFERENCE_WORLD_SIZE=8 .* pass --num-devices N"):
        ADAPTER.read(ConfigSource.load(config), ReadOptions())


@pytest.mark.parametrize("solver, error, match", [
    ("STEPS: (500, 1000)", ConfigError, r"SOLVER.STEPS has 1000 = MAX_ITER, which detectron2's Multi"),
    ("BIAS_LR_FACTOR: 2.0", UnsupportedError, r"BIAS_LR_FACTOR=2.0 gives biases their own LR"),
    ("LR_SCHEDULER_NAME: WarmupCyclicLR", ConfigError, r"LR_SCHEDULER_NAME is 'WarmupCyclicLR'; explr converts"),
    ("LR_SCHEDULER_NAME: WarmupPolyLR\n  POLY_LR_CONSTANT_ENDING: 0.1", UnsupportedError,
     r"POLY_LR_CONSTANT_ENDING=0.1: a constant ending of WarmupPolyLR is not modelled"),
])
def test_refused_with_the_reason(tmp_path, solver, error, match):
    config = tmp_path / "cfg.yaml"
    config.write_text(f"SOLVER:\n  MAX_ITER: 1000\n  {solver}\n")
    with pytest.raises(error, match=match):
        ADAPTER.read(ConfigSource.load(config), ReadOptions())


@pytest.mark.parametrize("solver", ["WARMUP_ITERS: 100\n  POLY_LR_POWER: 2.0",
                                    "WARMUP_METHOD: constant\n  WARMUP_FACTOR: 0.25\n  WARMUP_ITERS: 77",
                                    "WARMUP_ITERS: 0\n  POLY_LR_POWER: 0.5"])
def test_deeplab_poly_options_match_the_project_scheduler_every_iteration(tmp_path, solver):
    config = tmp_path / "DeepLab" / "cfg.yaml"  # a DeepLab project config: its trainer builds WarmupPolyLR
    config.parent.mkdir()
    config.write_text(f"SOLVER:\n  LR_SCHEDULER_NAME: WarmupPolyLR\n  MAX_ITER: 1000\n  BASE_LR: 0.02\n  {solver}\n")
    cfg = load(config)
    plan = ADAPTER.read(ConfigSource.load(config), ReadOptions())
    lrs = detectron2_lrs(cfg)
    assert plan.total_iters == len(lrs) == 1000
    bad = [i for i, lr in enumerate(lrs) if abs(plan.lr.lr_at(i) - lr) > REL * lr]
    assert not bad, f"first differing iteration {bad[0]}: explr {plan.lr.lr_at(bad[0])!r}, DeepLab {lrs[bad[0]]!r}"


def test_base_list_merges_in_order_like_fvcore(tmp_path):
    """fvcore load_yaml_with_base: `_BASE_: [a, b]` merges b over a (with its own bases), the child over both."""
    (tmp_path / "root.yaml").write_text("SOLVER:\n  BASE_LR: 0.5\n  GAMMA: 0.5\n  MAX_ITER: 800\n")
    (tmp_path / "a.yaml").write_text("SOLVER:\n  BASE_LR: 0.1\n  STEPS: (100,)\n  WARMUP_ITERS: 10\n")
    (tmp_path / "b.yaml").write_text("_BASE_: root.yaml\nSOLVER:\n  STEPS: (200, 300)\n")
    config = tmp_path / "cfg.yaml"
    config.write_text("_BASE_: [a.yaml, b.yaml]\nSOLVER:\n  WARMUP_ITERS: 20\n")
    cfg = load(config)
    plan = ADAPTER.read(ConfigSource.load(config), ReadOptions())
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.STEPS, cfg.SOLVER.WARMUP_ITERS) == (0.5, (200, 300), 20)  # fvcore decides
    lrs = detectron2_lrs(cfg)
    assert plan.total_iters == len(lrs) == 800
    assert all(abs(plan.lr.lr_at(i) - lr) <= REL * lr for i, lr in enumerate(lrs))


MASKRCNN_BENCHMARK = REAL.parent / "maskrcnn-benchmark/configs"


@pytest.mark.parametrize("name, line, key", [
    ("e2e_mask_rcnn_R_50_FPN_1x.yaml", 5, "MODEL.BACKBONE.CONV_BODY"),
    ("pascal_voc/e2e_faster_rcnn_R_50_C4_1x_1_gpu_voc.yaml", 9, "MODEL.ROI_BOX_HEAD.NUM_CLASSES"),
    ("gn_baselines/scratch_e2e_mask_rcnn_R_50_FPN_3x_gn.yaml", 10, "MODEL.BACKBONE.CONV_BODY"),
    ("retinanet/retinanet_R-50-FPN_1x.yaml", 7, "MODEL.BACKBONE.CONV_BODY"),
])
def test_maskrcnn_benchmark_config_is_refused_naming_its_key(name, line, key):
    """Same SOLVER names, other defaults (BIAS_LR_FACTOR 2, WEIGHT_DECAY_BIAS 0, warmup 1/3 over 500 iterations):
    read with detectron2's defaults its schedule would be wrong, and detectron2 itself rejects the file."""
    with pytest.raises(ConfigError, match=rf"{name.rsplit('/', 1)[-1]}:{line}: {key} is a maskrcnn-benchmark key"):
        ADAPTER.read(ConfigSource.load(MASKRCNN_BENCHMARK / name), ReadOptions())


MASK2FORMER = REAL.parent / "mask2former/configs"


@pytest.mark.parametrize("name, base, line", [
    ("coco/instance-segmentation/maskformer2_R50_bs16_50ep.yaml", "Base-COCO-InstanceSegmentation.yaml", 27),
    ("cityscapes/semantic-segmentation/maskformer2_R50_bs16_90k.yaml", "Base-Cityscapes-SemanticSegmentation.yaml", 26),
])
def test_mask2former_adamw_solver_is_refused_naming_its_base_line(name, base, line):
    """Mask2Former's train_net.py builds AdamW from SOLVER.OPTIMIZER (with BACKBONE_MULTIPLIER, full-model
    clipping): no exact conversion, and not detectron2's SGD."""
    with pytest.raises(UnsupportedError, match=rf"{base}:{line}: SOLVER.OPTIMIZER='ADAMW' is not detectron2's"):
        ADAPTER.read(ConfigSource.load(MASK2FORMER / name), ReadOptions())
