"""Wall time of `explr check` vs one plain training run of the same steps, and of `explr demo`.

Goal: check / plain <= 2.0x (two runs are the floor; the deviation is read off the next training forward,
so only norms, one last probe forward and the eval-mode comparison add to it).
The audit is done once beforehand and passed in, so the ratio measures the trajectory check itself.
Times are process CPU seconds (robust to other jobs sharing the cores), best of --repeat interleaved runs.
Usage: python benchmarks/bench_check.py [--steps 40] [--batch 16] [--model preresnet32] [--skip-demo]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import pathlib
import time

import torch

from explr.audit.api import audit
from explr.check.api import CheckOptions, check
from explr.check.compress import compress
from explr.check.data import synthetic_batches
from explr.check.runner import train_step
from explr.check.setups import original_run
from explr.configs.convert import convert
from explr.load import load_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "fixtures" / "configs" / "demo" / "cifar10_step.yaml")


def plain_training(model: torch.nn.Module, inputs: tuple, steps: int, batch: int) -> float:
    """The check's original run alone (same config, compressed schedule, batches and step code): the baseline."""
    plan = convert(CONFIG).plan
    schedule = compress(plan.lr, steps).schedule
    run = original_run("plain", model.double().train(), plan, schedule)
    stream = synthetic_batches(model, tuple(x.double() for x in inputs), batch, seed=0)()
    batches = [next(stream).to(torch.device("cpu"), torch.float64) for _ in range(steps)]
    start = time.process_time()
    for t, b in enumerate(batches, 1):
        train_step(run, b, seed=t, clip_norm=None)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="preresnet32")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default); 1 keeps idle "
                        "OpenMP threads from spinning into the CPU time on a shared machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = str(ROOT / "fixtures" / "models" / f"{args.model}.py")
    loaded = load_model(spec)
    report = audit(loaded.model, loaded.example_inputs, verify=False)
    plain, checked = [], []
    for _ in range(args.repeat):
        plain.append(plain_training(copy.deepcopy(loaded.model), loaded.example_inputs, args.steps, args.batch))
        start = time.process_time()
        result = check(spec, CONFIG, si=report,
                       options=CheckOptions(steps=args.steps, batch_size=args.batch, device="cpu"))
        checked.append(time.process_time() - start)
    plain, checked = min(plain), min(checked)
    print(f"model {args.model}, {args.steps} steps, batch {args.batch}, float64, {torch.get_num_threads()} threads")
    print(f"plain training run   {plain:8.2f} s CPU")
    print(f"explr check          {checked:8.2f} s CPU   ratio {checked / plain:.2f}x (goal <= 2.0x)  "
          f"passed={result.passed} max_dev={result.max_rel_deviation:.1e}")
    if not args.skip_demo:
        from explr.demo import run_demo
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            demo = run_demo()
        print(f"explr demo           {time.process_time() - cpu:8.2f} s CPU, {time.perf_counter() - wall:.2f} s wall "
              f"(goal ~60 s wall on 2 idle cores) passed={demo.passed}")


if __name__ == "__main__":
    main()
