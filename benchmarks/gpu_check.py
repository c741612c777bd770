"""Run `explr check` on a GPU end to end in one go and print device, dtype, deviation and noise floor.

For a machine with an accelerator: audit (once) -> check per dtype on CUDA. On a GPU every dtype gets
a measured noise floor (non-deterministic kernels, TF32), so the tolerance is k x that floor.
Usage: python benchmarks/gpu_check.py [--model preresnet32] [--steps 100] [--batch 32]
                                      [--dtypes float32,float64,bfloat16] [--device cuda]
Exit status: 0 when every dtype passed, 1 otherwise, 2 when CUDA is absent (use --device cpu to try it here).
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="preresnet32")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtypes", default="float32,float64,bfloat16")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
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
    print(f"{'dtype':9} {'passed':6} {'max_rel_dev':>11} {'noise_floor':>11} {'tolerance':>10} {'wall_s':>7}")
    all_passed = True
    for dtype in args.dtypes.split(","):
        start = time.perf_counter()
        result = check(spec, args.config, si=report, options=CheckOptions(
            steps=args.steps, batch_size=args.batch, device=args.device, dtype=dtype))
        floor = f"{result.noise_floor:.2e}" if result.noise_floor is not None else "—"
        print(f"{result.dtype:9} {str(result.passed):6} {result.max_rel_deviation:11.2e} {floor:>11} "
              f"{result.tolerance:10.2e} {time.perf_counter() - start:7.1f}")
        if result.diagnosis is not None:
            for line in result.diagnosis.lines():
                print(f"  {line}")
        all_passed &= result.passed
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
