"""Compare explr's reading of every timm fixture with timm's own scheduler, LR per update and per epoch.

Not part of the test suite: timm needs torchvision, whose wheels are built against another torch than CI's.
Run in a venv with torch + torchvision + timm (and explr's runtime deps typer rich ruamel.yaml pyyaml):

    PYTHONPATH=$PWD/src /path/to/venv/bin/python benchmarks/frameworks/timm_oracle.py [--world-size 2]

For each fixture the oracle does what timm's train.py does (huggingface/pytorch-image-models, train.py main()):
- the YAML sets the argparse defaults (train.py _parse_args: parser.set_defaults(**yaml.safe_load(f)));
- `if not args.lr`: global_batch_size = batch_size * world_size * grad_accum_steps, batch_ratio scaled
  linearly or by sqrt ('ada'/'lamb' optimizers unless lr_base_scale is set), args.lr = lr_base * batch_ratio;
- updates_per_epoch = (len(loader_train) + grad_accum_steps - 1) // grad_accum_steps, the train loader
  dropping the last partial batch of each process's ceil(N / world_size) samples (DistributedSampler);
- lr_scheduler, num_epochs = create_scheduler_v2(optimizer, **scheduler_kwargs(args), updates_per_epoch=...);
- train_one_epoch: after each update num_updates += 1; lr_scheduler.step_update(num_updates);
  after each epoch: lr_scheduler.step(epoch + 1).
The LR the optimizer holds during each update is compared with explr's plan.lr.lr_at(i).
Exit status 1 when any fixture differs by more than the tolerance or its length differs.
"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys
from types import SimpleNamespace

import torch
import yaml
from timm.scheduler.scheduler_factory import create_scheduler_v2, scheduler_kwargs

from explr.configs.adapter import DATASET_SIZES, ReadOptions
from explr.configs.source import ConfigSource
from explr.configs.timm import ADAPTER
from explr.errors import ExplrError

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "configs" / "timm"
REL_TOL = 1e-12
# train.py argparse defaults of the arguments the schedule reads (timm 1.0.x train.py); a fixture that leaves a
# version-dependent one unset is refused by explr, so these only fill stable keys.
TRAIN_PY_DEFAULTS = dict(
    sched="cosine", epochs=300, decay_epochs=90, decay_milestones=[90, 180, 270], warmup_epochs=5,
    cooldown_epochs=0, patience_epochs=10, decay_rate=0.1, min_lr=0.0, warmup_lr=1e-5, warmup_prefix=False,
    lr_noise=None, lr_noise_pct=0.67, lr_noise_std=1.0, seed=42, lr_cycle_mul=1.0, lr_cycle_decay=0.5,
    lr_cycle_limit=1, lr_k_decay=1.0, sched_on_updates=False, lr=None, lr_base=0.1, lr_base_size=256,
    lr_base_scale="", opt="sgd", batch_size=128, grad_accum_steps=1, eval_metric="top1", lr_decay_fn=None,
    lr_stable_timescale=None,
)
# type=float/int arguments: argparse converts a string default (PyYAML reads "5e-4" as a string) with that type;
# lr is one though its default is None.
NUMERIC = {k for k, v in TRAIN_PY_DEFAULTS.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} | {"lr"}
UNKNOWN_DATASET_SIZE = 10_000  # given to both sides (explr: --dataset-size) for datasets outside the table


def train_py_args(path: pathlib.Path) -> SimpleNamespace:
    cfg = yaml.safe_load(path.read_text())
    args = {**TRAIN_PY_DEFAULTS, **cfg}
    for key in NUMERIC & cfg.keys():  # argparse applies `type=float/int` to string defaults ("1e-4")
        if isinstance(args[key], str):
            args[key] = float(args[key]) if "." in args[key] or "e" in args[key].lower() else int(args[key])
    return SimpleNamespace(**args)


def dataset_size(args: SimpleNamespace) -> tuple[int, bool]:
    name = str(getattr(args, "dataset", "") or "").rsplit("/", 1)[-1].lower()
    return (DATASET_SIZES[name], True) if name in DATASET_SIZES else (UNKNOWN_DATASET_SIZE, False)


def timm_lrs(args: SimpleNamespace, world_size: int) -> tuple[list[float], int, int]:
    """LR of every optimizer update as train.py runs it, the updates per epoch, and num_epochs."""
    if not args.lr:
        global_batch_size = args.batch_size * world_size * args.grad_accum_steps
        batch_ratio = global_batch_size / args.lr_base_size
        if not args.lr_base_scale:
            on = args.opt.lower()
            args.lr_base_scale = "sqrt" if any(o in on for o in ("ada", "lamb")) else "linear"
        if args.lr_base_scale == "sqrt":
            batch_ratio = batch_ratio ** 0.5
        args.lr = args.lr_base * batch_ratio
    size, _ = dataset_size(args)
    loader_len = math.ceil(size / world_size) // args.batch_size  # drop_last=True for training
    updates_per_epoch = (loader_len + args.grad_accum_steps - 1) // args.grad_accum_steps
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=args.lr)
    scheduler, num_epochs = create_scheduler_v2(optimizer, **scheduler_kwargs(args),
                                                updates_per_epoch=updates_per_epoch)
    lrs, num_updates = [], 0
    for epoch in range(num_epochs):
        for _ in range(updates_per_epoch):
            lrs.append(optimizer.param_groups[0]["lr"])
            num_updates += 1
            scheduler.step_update(num_updates=num_updates)
        scheduler.step(epoch + 1)
    return lrs, updates_per_epoch, num_epochs


def compare(path: pathlib.Path, world_size: int) -> tuple[str, float]:
    args = train_py_args(path)
    _, known = dataset_size(args)
    options = ReadOptions(num_devices=world_size, dataset_size=None if known else UNKNOWN_DATASET_SIZE)
    try:
        plan = ADAPTER.read(ConfigSource.load(path), options)
    except ExplrError as exc:
        return f"refused: {exc}", 0.0
    lrs, updates, num_epochs = timm_lrs(args, world_size)
    if (plan.iters_per_epoch, plan.total_iters) != (updates, len(lrs)):
        return (f"LENGTH DIFFERS: explr {plan.iters_per_epoch} updates/epoch x {plan.epochs} epochs, timm {updates} x "
                f"{num_epochs}"), math.inf
    worst = max(abs(plan.lr.lr_at(i) - lr) for i, lr in enumerate(lrs))
    # Tolerance relative to the peak LR: near min_lr the cosine's 1 + cos(...) cancels, so an ulp of difference in
    # the argument (timm computes pi * t / T in scheduler steps, explr pi * (i / n) in iterations) is not relative.
    scale = max(lrs)
    bad = [i for i, lr in enumerate(lrs) if abs(plan.lr.lr_at(i) - lr) > REL_TOL * scale]
    per_epoch = [lrs[e * updates] for e in range(num_epochs)]
    head = (f"{len(lrs)} updates ({num_epochs} epochs x {updates}), {len(set(per_epoch))} distinct epoch LRs, "
            f"max |diff| {worst:.3g}")
    if bad:
        i = bad[0]
        return f"DIFFERS at {len(bad)} updates, first {i}: explr {plan.lr.lr_at(i)!r} timm {lrs[i]!r}; {head}", worst
    return f"equal; {head}", worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2, help="processes (explr --num-devices; lr_base scaling)")
    parser.add_argument("files", nargs="*", type=pathlib.Path, help="timm configs (default: every timm fixture)")
    ns = parser.parse_args()
    files = ns.files or sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".yaml", ".yml"))
    counts = {"equal": 0, "refused": 0, "differ": 0}
    worst = 0.0
    for path in files:
        verdict, diff = compare(path, ns.world_size)
        kind = "equal" if verdict.startswith("equal") else "refused" if verdict.startswith("refused") else "differ"
        counts[kind] += 1
        worst = max(worst, diff) if kind != "refused" else worst
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {verdict}")
    print(f"torch {torch.__version__} | {counts['equal']} equal, {counts['differ']} differ, "
          f"{counts['refused']} refused by explr, of {len(files)}; max |explr - timm| LR {worst:.3g} "
          f"(tolerance {REL_TOL:g} x peak LR)")
    return 1 if counts["differ"] else 0


if __name__ == "__main__":
    sys.exit(main())
