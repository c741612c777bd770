"""Scheduler benchmark: prints measured figures and ratios side by side (not a test; run it by hand).

    python benchmarks/bench_scheduler.py            # ~30 s on 2 CPU cores
    python benchmarks/bench_scheduler.py --quick --threads 1

  * TEXP.step() per iteration (LRSchedule source; torch MultiStepLR factory source; with renormalization)
    vs torch.optim.lr_scheduler.MultiStepLR.step()
  * each as a share of one full training step (forward + backward + SGD step) of a small CNN on CPU
    (float32, batch 32, 32x32 inputs)                                             goal <= 1%
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import explr
from explr.lr_schedule import LRSchedule

MILESTONES = [80 * 391, 120 * 391]
SCHEDULE = LRSchedule(0.1, 160 * 391, milestones=tuple(MILESTONES))


def small_cnn() -> nn.Sequential:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                         nn.MaxPool2d(2), *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def conv_names(model: nn.Module) -> list[str]:
    """The conv weights feed BatchNorm directly: scale-invariant (the audit agrees; not re-run here)."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def make_optimizer(model: nn.Module, converted: bool) -> torch.optim.SGD:
    if not converted:
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    groups = explr.param_groups(model, conv_names(model), weight_decay=5e-4)
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


SCHEDULERS: dict[str, tuple[bool, Callable[[torch.optim.Optimizer], object]]] = {
    "torch MultiStepLR": (False, lambda opt: MultiStepLR(opt, MILESTONES, 0.1)),
    "TEXP (LRSchedule)": (True, lambda opt: explr.TEXP(opt, SCHEDULE)),
    "TEXP (MultiStepLR factory)": (True, lambda opt: explr.TEXP(opt, lambda o: MultiStepLR(o, MILESTONES, 0.1))),
    "TEXP (LRSchedule, renormalize)": (True, lambda opt: explr.TEXP(opt, SCHEDULE, renormalize=(1e-3, 1e6))),
}


def scheduler_step_seconds(model: nn.Module, name: str, n: int, repeat: int) -> float:
    """Best-of-`repeat` mean seconds of one scheduler.step() (the optimizer is stepped once beforehand)."""
    converted, build = SCHEDULERS[name]
    best = float("inf")
    for _ in range(repeat):
        opt = make_optimizer(model, converted)
        sched = build(opt)
        opt.step()
        start = time.perf_counter()
        for _ in range(n):
            sched.step()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def train_step_seconds(model: nn.Module, n: int, repeat: int) -> float:
    """Best-of-`repeat` mean seconds of forward + backward + optimizer.step() (no scheduler)."""
    opt = make_optimizer(model, converted=False)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    best = float("inf")
    F.cross_entropy(model(x), y).backward()  # warm-up: first-call allocations are not a training step
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 gives stable figures on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n_sched, n_train, repeat = (1000, 3, 2) if args.quick else (5000, 20, 3)
    torch.manual_seed(0)
    model = small_cnn()
    train = train_step_seconds(model, n_train, repeat)
    print(f"small CNN training step (batch 32, 32x32, CPU, {torch.get_num_threads()} threads): "
          f"{train * 1e3:.2f} ms")
    base = scheduler_step_seconds(model, "torch MultiStepLR", n_sched, repeat)
    print(f"{'scheduler':34} {'us/step':>9} {'vs MultiStepLR':>15} {'share of train step':>20}")
    for name in SCHEDULERS:
        t = base if name == "torch MultiStepLR" else scheduler_step_seconds(model, name, n_sched, repeat)
        print(f"{name:34} {t * 1e6:9.1f} {t / base:14.2f}x {100 * t / train:19.4f}%")
    print("goal: TEXP share of a training step <= 1%")


if __name__ == "__main__":
    main()
