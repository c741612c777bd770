"""`explr check` on a GPU in one go: PreResNet-32 in float32, under bf16 autocast, under fp16 autocast + GradScaler.

For a machine with an accelerator (about 2-4 minutes on one GPU at the defaults): audit once, then one check per
precision. Every GPU check measures a noise floor (the original run against itself started one ulp away:
non-deterministic kernels, TF32, autocast rounding), and the tolerance is k x that floor; the table puts the
measured deviation, the noise floor and the tolerance side by side, and says when a precision is too chaotic
for any check to be conclusive (tolerance above 1e-2).
The same code path runs on CPU: `--device cpu --steps 8 --batch 4` (CPU autocast supports bfloat16 and float16).
Usage: python benchmarks/gpu_check.py [--model preresnet32] [--steps 100] [--batch 32]
                                      [--modes float32,bf16,fp16] [--device cuda]
Exit status: 0 when every mode passed, 1 otherwise, 2 when CUDA is absent (use --device cpu to try it here).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import torch

from explr.audit.api import audit
from explr.check.api import CheckOptions, check
from explr.load import load_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "fixtures" / "configs" / "demo" / "cifar10_step.yaml")
MODES = {  # name -> (master weight dtype, autocast dtype or None)
    "float64": ("float64", None),
    "float32": ("float32", None),
    "bf16": ("float32", "bfloat16"),
    "fp16": ("float32", "float16"),  # with a GradScaler, as torch AMP does for float16
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="preresnet32")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--modes", default="float32,bf16,fp16")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    unknown = [m for m in args.modes.split(",") if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    return args


def run_mode(spec: str, config: str, report, mode: str, args: argparse.Namespace):
    dtype, amp = MODES[mode]
    start = time.perf_counter()
    result = check(spec, config, si=report, options=CheckOptions(
        steps=args.steps, batch_size=args.batch, device=args.device, dtype=dtype, amp=amp))
    floor = f"{result.noise_floor:.2e}" if result.noise_floor is not None else "—"
    ratio = (f"{result.max_rel_deviation / result.noise_floor:9.2g}" if result.noise_floor
             else f"{'—':>9}")
    verdict = result.outcome.upper()
    print(f"{mode:8} {verdict:12} {result.max_rel_deviation:11.2e} {floor:>11} {ratio} {result.tolerance:10.2e} "
          f"{time.perf_counter() - start:7.1f}")
    if result.noise_jump_step is not None:
        print(f"  1-ulp twin jumped at step {result.noise_jump_step} to {result.noise_jump_max:.1e} (discrete event); "
              "noise floor measured before it")
    for note in result.notes:
        if note.startswith("GradScaler"):
            print(f"  {note}")
    if result.diagnosis is not None:
        for line in result.diagnosis.lines():
            print(f"  {line}")
    return result


def main() -> int:
    args = parse()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch; run on a GPU machine or pass --device cpu", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"device {args.device} ({name}), torch {torch.__version__}, model {args.model}, "
          f"{args.steps} steps, batch {args.batch}")
    spec = str(ROOT / "fixtures" / "models" / f"{args.model}.py")
    loaded = load_model(spec)
    report = audit(loaded.model, loaded.example_inputs)
    print(f"audit: {report.summary()}")
    print(f"{'mode':8} {'verdict':12} {'max_rel_dev':>11} {'noise_floor':>11} {'dev/noise':>9} {'tolerance':>10} "
          f"{'wall_s':>7}")
    results = [run_mode(spec, args.config, report, mode, args) for mode in args.modes.split(",")]
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
