"""timm args YAML -> TrainingPlan, checked against an independent re-implementation of timm's schedulers."""
import bisect
import math

import pytest

from explr.configs.adapter import ReadOptions
from explr.configs.detectron2 import ADAPTER as DETECTRON2
from explr.configs.pycls import ADAPTER as PYCLS
from explr.configs.source import ConfigSource
from explr.configs.timm import ADAPTER as TIMM
from explr.errors import ConfigError, UnsupportedError


def timm_get_lr(sched, t, *, lr, warmup_t, warmup_lr, decay_t=None, milestones=(), rate=0.1, t_initial=None,
                lr_min=0.0):
    """_get_lr of timm/scheduler/{step_lr,multistep_lr,cosine_lr}.py (warmup_prefix=False, one cycle).

    The full set of options is checked against timm itself by benchmarks/frameworks/timm_oracle.py."""
    if t < warmup_t:
        return warmup_lr + t * (lr - warmup_lr) / warmup_t
    if sched == "step":
        return lr * rate ** (t // decay_t)
    if sched == "multistep":
        return lr * rate ** bisect.bisect_right(milestones, t + 1)  # MultiStepLRScheduler.get_curr_decay_steps
    cycle = t // t_initial
    t_curr = t - t_initial * cycle
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t_curr / t_initial)) if cycle < 1 else lr_min


def timm_train_lrs(get_lr, num_epochs, updates_per_epoch, on_updates, initial=None):
    """The LR of every optimizer update as train.py drives the scheduler (step_update / step(epoch + 1)).

    Before the first step the optimizer holds the LR the scheduler was built with (`initial`: lr, or warmup_lr)."""
    lrs, num_updates, value = [], 0, get_lr(0) if initial is None else initial
    for epoch in range(num_epochs):
        for _ in range(updates_per_epoch):
            lrs.append(value)
            num_updates += 1
            if on_updates:
                value = get_lr(num_updates)
        if not on_updates:
            value = get_lr(epoch + 1)
    return lrs


def read(path, **options):
    return TIMM.read(ConfigSource.load(path), ReadOptions(**options))


def write(tmp_path, text, name="args.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def lines(plan):
    return {fact: loc.line for fact, loc in plan.locations.items()}


def test_cifar_multistep_plan_and_locations(fixtures_dir):
    plan = read(fixtures_dir / "configs/timm/cifar10_resnet_multistep.yaml")
    assert (plan.format, plan.optimizer, plan.nesterov, plan.momentum, plan.dampening) == ("timm", "sgd", False, 0.9, 0)
    assert plan.decay.other == 5e-4 and plan.decay.for_kind("norm") == 0 and plan.decay.for_kind("bias") == 0
    assert plan.iters_per_epoch == 50_000 // 128  # timm's train loader drops the last partial batch
    assert (plan.epochs, plan.total_iters, plan.scheduler_interval) == (200, 200 * 390, "epoch")
    # timm applies milestone m at epoch m - 1 (bisect_right(decay_t, t + 1)), unlike torch's MultiStepLR
    assert plan.lr.milestones == (99 * 390, 149 * 390) and plan.lr.step_every == 390
    assert (plan.precision, plan.grad_clip_norm, plan.ema) == ("32", None, False)
    assert lines(plan) == {"dataset": 3, "batch_size": 5, "optimizer": 6, "nesterov": 6, "lr": 7, "momentum": 8,
                           "weight_decay": 9, "schedule": 10, "milestones": 11, "gamma": 12, "epochs": 13,
                           "warmup_iters": 14}
    assert all(str(loc).startswith(str(fixtures_dir)) for loc in plan.locations.values())


def test_cifar_multistep_lr_matches_timm_every_iteration(fixtures_dir):
    plan = read(fixtures_dir / "configs/timm/cifar10_resnet_multistep.yaml")
    ref = timm_train_lrs(lambda t: timm_get_lr("multistep", t, lr=0.1, warmup_t=0, warmup_lr=0,
                                               milestones=[100, 150]), 200, 390, on_updates=False)
    assert len(ref) == plan.total_iters
    assert all(plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12) for i, want in enumerate(ref))


def test_imagenet_step_with_warmup(fixtures_dir):
    plan = read(fixtures_dir / "configs/timm/imagenet_resnet50_step_warmup.yaml")
    ipe = 1_281_167 // 256
    assert (plan.optimizer, plan.nesterov) == ("sgd", True)  # timm's 'sgd' is Nesterov SGD
    assert (plan.iters_per_epoch, plan.total_iters, plan.precision, plan.ema) == (ipe, 90 * ipe, "16-mixed", True)
    assert plan.lr.warmup_iters == 5 * ipe and plan.lr.milestones == (30 * ipe, 60 * ipe)
    assert lines(plan)["warmup_factor"] == 14 and lines(plan)["milestones"] == 10
    ref_epoch = [timm_get_lr("step", e, lr=0.1, warmup_t=5, warmup_lr=1e-4, decay_t=30) for e in range(90)]
    for epoch, want in enumerate(ref_epoch):  # per-epoch stepping: constant inside each epoch
        for i in (epoch * ipe, epoch * ipe + ipe // 2, epoch * ipe + ipe - 1):
            assert plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12), (epoch, i)
    assert plan.lr.lr_at(0) == pytest.approx(1e-4)
    assert plan.lr.lr_at(4 * ipe) == pytest.approx(1e-4 + 4 * (0.1 - 1e-4) / 5)


def test_cosine_per_update_with_accumulation_cooldown_and_clipping(fixtures_dir):
    plan = read(fixtures_dir / "configs/timm/cosine_per_update.yaml")
    updates = math.ceil((50_000 // 64) / 2)  # updates_per_epoch = ceil(len(loader) / grad_accum_steps)
    assert (plan.iters_per_epoch, plan.scheduler_interval, plan.epochs) == (updates, "step", 40)
    assert (plan.grad_clip_norm, plan.precision, plan.nesterov) == (5.0, "bf16-mixed", False)
    ref = timm_train_lrs(lambda t: timm_get_lr("cosine", t, lr=0.05, warmup_t=3 * updates, warmup_lr=1e-5,
                                               t_initial=30 * updates, lr_min=1e-5), 40, updates, on_updates=True)
    assert len(ref) == plan.total_iters
    assert all(plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12) for i, want in enumerate(ref))
    assert plan.lr.lr_at(plan.total_iters - 1) == pytest.approx(1e-5)  # cooldown holds min_lr


def test_fractional_decay_epochs_follow_timm_floor_division(tmp_path):
    path = write(tmp_path, "opt: momentum\nsched: step\nlr: 0.256\nepochs: 12\ndecay_epochs: 2.4\ndecay_rate: 0.97\n"
                           "warmup_epochs: 0\nweight_decay: 1.0e-5\nbatch_size: 10\n")
    plan = read(path, dataset_size=100)
    ref = [timm_get_lr("step", e, lr=0.256, warmup_t=0, warmup_lr=0, decay_t=2.4, rate=0.97) for e in range(12)]
    assert [plan.lr.lr_at(e * 10) for e in range(12)] == pytest.approx(ref, rel=1e-12)


def test_lr_derived_from_lr_base_and_global_batch(tmp_path):
    path = write(tmp_path, "opt: sgd\nsched: step\nlr_base: 0.1\nbatch_size: 128\ngrad_accum_steps: 2\nepochs: 10\n"
                           "decay_epochs: 5\nwarmup_epochs: 0\nweight_decay: 1.0e-4\n")
    plan = read(path, num_devices=4, dataset_size=128_000)
    assert plan.lr.base_lr == pytest.approx(0.1 * 128 * 4 * 2 / 256)
    assert plan.iters_per_epoch == math.ceil(128_000 // (128 * 4) / 2)
    with pytest.raises(ConfigError, match="pass --num-devices N or set lr"):
        read(path, dataset_size=128_000)


def test_detection_is_timm_only(fixtures_dir):
    for path in sorted((fixtures_dir / "configs/timm").glob("*.yaml")):
        source = ConfigSource.load(path)
        assert "timm" in TIMM.detect(source) and "opt" in TIMM.detect(source)
        assert DETECTRON2.detect(source) is None and PYCLS.detect(source) is None
    for other in ("detectron2/Base-RCNN-FPN.yaml", "pycls/cifar_resnet56_steps.yaml"):
        assert TIMM.detect(ConfigSource.load(fixtures_dir / "configs" / other)) is None


BASE = "opt: momentum\nlr: 0.1\nweight_decay: 5.0e-4\nsched: multistep\ndecay_milestones: [3, 6]\nepochs: 8\n" \
       "warmup_epochs: 0\ndataset: cifar10\nbatch_size: 100\n"


@pytest.mark.parametrize("edit, error, match", [
    (("weight_decay: 5.0e-4\n", ""), ConfigError, r"weight_decay` is missing; timm's default changed"),
    (("sched: multistep\n", ""), ConfigError, r"`sched` is missing"),
    (("sched: multistep\n", "sched: sgdr\n"), UnsupportedError,
     r"args.yaml:4: sched='sgdr' is unknown; explr converts timm's step, multistep, cosine, poly, tanh, constant, wsd, "
     r"rsqrt schedulers"),
    (("sched: multistep\n", "sched: plateau\n"), UnsupportedError,
     r"sched='plateau' decays when the eval metric stops improving"),
    (("opt: momentum\n", "opt: lookahead_sgd\n"), ConfigError, r"args.yaml:1: opt is 'lookahead_sgd'"),
    (("[3, 6]", "[6, 3]"), ConfigError, r"args.yaml:5: decay_milestones is \[6, 3\]; write increasing whole"),
    (("dataset: cifar10\n", ""), ConfigError, r"cannot tell iterations per epoch.*--iters-per-epoch"),
    (("lr: 0.1\n", "lr: fast\n"), ConfigError, r"args.yaml:2: lr is 'fast'; it must be a number"),
    (("epochs: 8\n", "epochs: 8\nlr_noise: [0.4, 0.9]\n"), UnsupportedError,
     r"args.yaml:7: lr_noise=\[0.4, 0.9\] adds random noise to the LR .* set it to null"),
    (("epochs: 8\n", "epochs: 8\nclip_grad: 1.0\nclip_mode: agc\n"), UnsupportedError, r"clip_mode='agc'"),
    (("epochs: 8\n", "epochs: 8\nlayer_decay: 0.75\n"), UnsupportedError, r"args.yaml:7: layer_decay=0.75 scales"),
    (("sched: multistep\n", "sched: cosine\nmin_lr: 0\ncooldown_epochs: 0\nlr_cycle_mul: 0\n"), ConfigError,
     r"args.yaml:7: lr_cycle_mul / lr_cycle_decay / lr_k_decay are \[0.0, 0.5, 1.0\]; they must be > 0"),
    (("epochs: 8\n", "epochs: 8\naug_repeats: 3\n"), UnsupportedError, r"args.yaml:7: aug_repeats=3"),
    (("epochs: 8\n", "epochs: 0\n"), ConfigError, r"args.yaml:6: epochs is 0; it must be > 0"),
    (("warmup_epochs: 0\n", "warmup_epochs: 2\n"), ConfigError, r"`warmup_lr` is missing"),
])
def test_bad_input_names_file_line_and_fix(tmp_path, edit, error, match):
    path = write(tmp_path, BASE.replace(*edit))
    assert TIMM.read(ConfigSource.load(write(tmp_path, BASE, "ok.yaml")), ReadOptions()).total_iters == 8 * 500
    with pytest.raises(error, match=match):
        read(path)


def test_multistep_milestones_apply_one_epoch_early_and_late_ones_are_ignored(tmp_path):
    """timm: milestone m takes effect at epoch m - 1; one that would take effect after the last epoch never does."""
    plan = read(write(tmp_path, BASE.replace("[3, 6]", "[1, 3, 8, 9]")))
    assert plan.lr.milestones == (1 * 500, 2 * 500, 7 * 500)  # milestone 1 still waits for epoch 1 (initial LR)
    assert plan.ignored_milestones == (8 * 500,)  # milestone 9 would apply at epoch 8, after the last one (EXP209)
    assert plan.lr.lr_at(0) == 0.1 and plan.lr.lr_at(7 * 500) == pytest.approx(0.1 * 0.1 ** 3, rel=1e-15)


def test_warmup_prefix_lengthens_training_and_shifts_the_decay(tmp_path):
    text = BASE.replace("warmup_epochs: 0\n", "warmup_epochs: 2\nwarmup_lr: 0.01\nwarmup_prefix: true\n")
    plan = read(write(tmp_path, text))
    assert plan.total_iters == (8 + 2) * 500  # create_scheduler_v2: num_epochs += warmup_epochs
    assert plan.lr.milestones == ((3 - 1 + 2) * 500, (6 - 1 + 2) * 500)
    ref = timm_train_lrs(lambda t: 0.01 + t * (0.1 - 0.01) / 2 if t < 2 else
                         0.1 * 0.1 ** bisect.bisect_right([3, 6], t - 2 + 1), 10, 500, False, initial=0.01)
    assert all(plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12) for i, want in enumerate(ref))


def test_lr_from_lr_base_and_the_global_batch(tmp_path):
    text = BASE.replace("lr: 0.1\n", "lr: null\nlr_base: 0.1\nlr_base_size: 256\ngrad_accum_steps: 2\n")
    with pytest.raises(ConfigError, match=r"lr is unset, so timm derives it .* pass --num-devices N"):
        read(write(tmp_path, text))
    assert read(write(tmp_path, text), num_devices=4).lr.base_lr == pytest.approx(0.1 * 100 * 4 * 2 / 256)
    adam = text.replace("opt: momentum", "opt: adamw")  # 'ada' optimizers scale by the square root
    assert read(write(tmp_path, adam), num_devices=4).lr.base_lr == pytest.approx(0.1 * math.sqrt(100 * 4 * 2 / 256))


def test_real_plateau_config_is_refused_naming_the_metric(fixtures_dir):
    path = fixtures_dir / "configs/timm/real/pytorch-image-models/train.yaml"
    with pytest.raises(UnsupportedError, match=r"train.yaml:27: sched='plateau' decays when the eval metric"):
        read(path, dataset_size=1000)


def test_poly_schedule_is_timms_polynomial_after_the_warmup_prefix(fixtures_dir):
    """PolyLRScheduler._get_lr: lr_min + (lr - lr_min) * (1 - t / t_initial) ** power, power = decay_rate."""
    plan = read(fixtures_dir / "configs/timm/variants/poly_epochs.yaml")
    ipe = 50_000 // 128
    assert (plan.total_iters, plan.lr.decay, plan.lr.power) == (22 * ipe, "poly", 0.9)
    ref = timm_train_lrs(lambda t: 1e-4 + t * (0.1 - 1e-4) / 2 if t < 2 else 0.1 * (1 - (t - 2) / 20) ** 0.9,
                         22, ipe, False, initial=1e-4)
    assert all(plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12, abs=1e-15) for i, want in enumerate(ref))


def test_tanh_warmup_ramps_to_the_tanh_value_at_its_end(fixtures_dir):
    """TanhLRScheduler: warmup_steps aim at _get_lr(warmup_t) unless warmup_prefix; then lr_min + 0.5 * (lr - lr_min)
    * (1 - tanh(lb * (1 - t / T) + ub * t / T)) with lb, ub = -7, 3, and lr_min for cooldown_epochs after T."""
    plan = read(fixtures_dir / "configs/timm/variants/tanh_warmup.yaml")
    ipe = 50_000 // 128

    def tanh_lr(t):
        return 1e-5 + 0.5 * (0.1 - 1e-5) * (1 - math.tanh(-7 * (1 - t / 30) + 3 * t / 30)) if t < 30 else 1e-5

    ref = timm_train_lrs(lambda t: 1e-4 + t * (tanh_lr(3) - 1e-4) / 3 if t < 3 else tanh_lr(t), 35, ipe, False,
                         initial=1e-4)
    assert plan.total_iters == 35 * ipe
    assert all(plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12) for i, want in enumerate(ref))


SHI_LABS = "configs/timm/real/SHI-Labs-"


@pytest.mark.parametrize("name, options, ipe, opt, lr, warmup, warmup_lr, min_lr, line", [
    ("Compact-Transformers/cct_7-3x1_cifar10_300epochs.yml", {}, 50_000 // 128, "adamw", 55e-5, 10, 1e-5, 1e-5, 31),
    ("Compact-Transformers/cct_14-7x2_imagenet.yml", {}, 1_281_167 // 128, "adamw", 5e-4, 10, 1e-6, 1e-5, 31),
])
def test_real_cosine_configs_follow_timm_per_epoch(fixtures_dir, name, options, ipe, opt, lr, warmup, warmup_lr,
                                                   min_lr, line):
    """300 epochs of cosine after a warmup inside them (no warmup_prefix), then cooldown_epochs 10 at min_lr:
    create_scheduler_v2 runs 310 epochs, stepping once per epoch (sched_on_updates unset)."""
    plan = read(fixtures_dir / (SHI_LABS + name), **options)
    assert (plan.optimizer, plan.nesterov, plan.scheduler_interval) == (opt, opt == "sgd", "epoch")
    assert (plan.iters_per_epoch, plan.total_iters, plan.lr.warmup_iters) == (ipe, 310 * ipe, warmup * ipe)
    assert plan.decay.for_kind("norm") == 0 and plan.decay.for_kind("bias") == 0  # timm: no decay on 1-D params
    assert (plan.lr.base_lr, lines(plan)["lr"]) == (lr, line)
    for epoch in range(310):  # per-epoch stepping: constant inside each epoch
        want = timm_get_lr("cosine", epoch, lr=lr, warmup_t=warmup, warmup_lr=warmup_lr, t_initial=300, lr_min=min_lr)
        for i in (epoch * ipe, epoch * ipe + ipe // 2, epoch * ipe + ipe - 1):
            assert plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12), (epoch, i)


def test_real_config_of_a_forked_train_py_is_refused_naming_its_schedule_key(fixtures_dir, tmp_path):
    """NAT's train.py builds the cosine per iteration under `sched_epochwise: False`; timm's ignores the key."""
    path = fixtures_dir / (SHI_LABS + "Neighborhood-Attention-Transformer/nat_mini.yml")
    with pytest.raises(UnsupportedError, match=r"nat_mini.yml:\d+: `sched_epochwise` is not an argument of timm's "
                                               r"train.py"):
        read(path, dataset_size=1_281_167)
    for_timm = tmp_path / "nat_mini.yml"  # the same file for timm's own train.py: no opt, so Nesterov SGD
    for_timm.write_text(path.read_text().replace("sched_epochwise: False", ""))
    plan = read(for_timm, dataset_size=1_281_167)
    assert (plan.optimizer, plan.nesterov, plan.total_iters) == ("sgd", True, 310 * (1_281_167 // 128))


def test_real_config_without_sched_is_refused_naming_the_key(fixtures_dir):
    path = fixtures_dir / (SHI_LABS + "Compact-Transformers/cct_14-7x2_flowers102.yml")
    with pytest.raises(ConfigError, match=r"flowers102.yml: `sched` is missing; timm's default changed between "
                                          r"versions \('step', later 'cosine'\)"):
        read(path, dataset_size=1020)


WSD = "opt: momentum\nlr: 0.1\nweight_decay: 5.0e-4\nsched: rsqrt\nepochs: 8\ndecay_epochs: 2\nmin_lr: 0.001\n" \
      "cooldown_epochs: 0\nwarmup_epochs: 1\nwarmup_lr: 0.01\ndataset: cifar10\nbatch_size: 100\n"
ANNEALS = {  # WSDLRScheduler._decay with its decay_power 0.5 and decay_ratio 0.1 (create_scheduler_v2 never sets them)
    "linear": lambda f: 1 - f, "1-sqrt": lambda f: 1 - math.sqrt(f), "power": lambda f: 1 - f ** 0.5,
    "cosine": lambda f: 0.5 * (1 + math.cos(math.pi * f)), "exp": lambda f: (0.1 ** f - 0.1) / (1 - 0.1)}


def wsd_get_lr(t, *, lr, warmup_t, warmup_lr, t_sched, decay_t, lr_min, anneal, timescale=None):
    """timm 1.0.31 timm/scheduler/wsd_lr.py WSDLRScheduler._get_lr: a linear warmup, then the stable LR (rsqrt:
    lr * (1 + t_s / timescale) ** -0.5) floored at lr_min, annealed to lr_min over the last decay_t of t_sched."""
    if t < warmup_t:
        return warmup_lr + t * (lr - warmup_lr) / warmup_t
    t_s = t - warmup_t
    stable = max(lr * (1 + t_s / timescale) ** -0.5 if timescale else lr, lr_min)
    frac = min(max(t_s - (t_sched - decay_t), 0) / decay_t, 1)
    return lr_min + (stable - lr_min) * ANNEALS[anneal](frac)


# LRs recorded from real timm: `PYTHONPATH=$PWD/src /work/venv-tv/bin/python` running timm_oracle.timm_lrs (timm 1.0.31
# create_scheduler_v2 + train.py's step_update / step(epoch + 1), world size 2) on each fixture; {update: LR}.
WSD_CASES = {
    "wsd_per_update": (True, 195, 13, dict(lr=0.2, warmup_t=390, warmup_lr=1e-4, t_sched=1950, decay_t=488,
                                           lr_min=1e-5, anneal="1-sqrt"), {
        0: 0.0001, 1: 0.0006125641025641026, 389: 0.1994874358974359, 390: 0.2, 1851: 0.2, 1852: 0.2,
        1853: 0.19094687807447838, 2000: 0.0898640183384314, 2339: 0.0002150128678292322, 2340: 1e-05, 2534: 1e-05}),
    "rsqrt_timescale_exp": (False, 250, 17, dict(lr=0.05, warmup_t=0, warmup_lr=0, t_sched=16, decay_t=4,
                                                 lr_min=1e-4, anneal="exp", timescale=2.5), {
        0: 0.05, 250: 0.04225771273642583, 500: 0.037267799624996496, 2750: 0.02151657414559676,
        3000: 0.020761369963434993, 3250: 0.010364225656736743, 3750: 0.0017255856013845333, 4000: 0.0001,
        4249: 0.0001}),
    "rsqrt_min_lr_floor": (True, 50, 8, dict(lr=0.1, warmup_t=50, warmup_lr=1e-3, t_sched=300, decay_t=100,
                                             lr_min=0.02, anneal="1-sqrt", timescale=5.0), {
        0: 0.001, 49: 0.09802, 50: 0.1, 51: 0.09128709291752769, 60: 0.057735026918962574,
        149: 0.021926450482675733, 150: 0.021821789023599242, 250: 0.02, 251: 0.02, 349: 0.02, 350: 0.02, 399: 0.02}),
}


@pytest.mark.parametrize("name", WSD_CASES)
def test_wsd_and_rsqrt_follow_timms_wsd_scheduler(fixtures_dir, name):
    """The closed form of WSDLRScheduler, stepped as train.py steps it, is explr's LR at every update and real timm's
    at the recorded ones (the oracle compares every update of every fixture with timm itself)."""
    on_updates, updates, epochs, shape, recorded = WSD_CASES[name]
    plan = read(fixtures_dir / f"configs/timm/variants/{name}.yaml", num_devices=2)
    assert (plan.iters_per_epoch, plan.total_iters, plan.lr.decay) == (updates, epochs * updates, "wsd")
    ref = timm_train_lrs(lambda t: wsd_get_lr(t, **shape), epochs, updates, on_updates)
    assert [ref[i] for i in recorded] == pytest.approx(list(recorded.values()), rel=1e-12, abs=1e-15)
    assert all(plan.lr.lr_at(i) == pytest.approx(want, rel=1e-12, abs=1e-15) for i, want in enumerate(ref))


def test_wsd_without_warmup_prefix_fits_in_epochs_and_decay_epochs_null_is_a_fifth(tmp_path):
    """create_scheduler_v2: t_sched = epochs - warmup_epochs; decay_epochs None (or < 1) is a fraction of it."""
    plan = read(write(tmp_path, WSD.replace("sched: rsqrt", "sched: wsd").replace("decay_epochs: 2", "decay_epochs: null")
                      .replace("epochs: 8", "epochs: 11")))
    assert (plan.total_iters, plan.lr.decay_start, plan.lr.decay_iters) == (11 * 500, 500, 10 * 500)
    assert (plan.lr.anneal_iters, plan.lr.anneal_shape, plan.lr.stable_timescale) == (2 * 500, "1-sqrt", None)
    assert plan.lr.lr_at(9 * 500 - 1) == 0.1 and plan.lr.lr_at(10 * 500) == pytest.approx(0.001 + 0.099 * (1 - 0.5 ** 0.5))


@pytest.mark.parametrize("edit, match", [
    (("warmup_epochs: 1\n", "warmup_epochs: 0\n"), r"args.yaml: lr_stable_timescale is unset and warmup_epochs gives 0 "
                                                    r"steps; sched rsqrt needs a timescale > 0"),
    (("decay_epochs: 2", "decay_epochs: 8"), r"args.yaml:6: decay_epochs is 8.0: a decay phase of 8 scheduler steps, "
                                             r"outside \(0, 7\]"),
    (("decay_epochs: 2", "decay_epochs: 0"), r"args.yaml:6: decay_epochs is 0.0"),
    (("decay_epochs: 2", "decay_epochs: .inf"), r"args.yaml:6: decay_epochs is inf"),
    (("decay_epochs: 2\n", ""), r"`decay_epochs` is missing; timm's default changed"),
    (("min_lr: 0.001", "min_lr: 0.2"), r"args.yaml:7: min_lr is 0.2; sched rsqrt needs 0 <= min_lr <= lr \(0.1\)"),
    (("epochs: 8\n", "epochs: 8\nlr_decay_fn: step\n"), r"args.yaml:6: lr_decay_fn is 'step'; timm's WSD scheduler "
                                                        r"takes linear, 1-sqrt, cosine, power, exp"),
    (("epochs: 8\n", "epochs: 8\nlr_stable_timescale: -1\n"), r"args.yaml:6: lr_stable_timescale is -1.0 and"),
])
def test_wsd_options_timm_rejects_are_refused_in_one_line(tmp_path, edit, match):
    assert read(write(tmp_path, WSD, "ok.yaml")).lr.stable_timescale == 500  # rsqrt: the warmup's length
    with pytest.raises(ConfigError, match=match):
        read(write(tmp_path, WSD.replace(*edit)))
