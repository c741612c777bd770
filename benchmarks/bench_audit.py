"""Audit benchmark: prints measured figures and ratios side by side (not a test; run it by hand).

    python benchmarks/bench_audit.py            # everything (~3 min at 1 thread; the naive baseline is ~1000 forwards)
    python benchmarks/bench_audit.py --quick    # naive baseline on a sample of parameters, extrapolated

Per model (a ResNet-50-sized CNN, a 24-layer pre-LN transformer and a VGG-11-BN-sized CNN whose
weights are mostly one big classifier, benchmarks/models/):
  * degree analysis alone (degrees + constraints + solve) vs graph capture      goal <= 0.5x
  * full audit (capture + analysis + solve + numeric confirmation) vs the naive alternative,
    "scale each parameter tensor and run the model twice" (float64, train mode)   goal >= 10x faster
  * what the confirmation cost: float64 copies of the model and float64 forward passes
    (budget: at most 1 copy and 6 forwards)
And the peak RSS of `explr audit --device meta` on a 1.3B-parameter definition (goal < 2 GB),
measured on that one child process (see child_peak_rss_mb).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import torch

from explr.audit import numeric
from explr.audit.api import analyse_capture, audit
from explr.audit.capture import capture
from explr.load import load_model

HERE = Path(__file__).resolve().parent
MODELS = {
    "ResNet-50 (bottleneck [3,4,6,3], width 64)": str(HERE / "models" / "resnet50.py"),
    "24-layer pre-LN transformer (d=256)": str(HERE / "models" / "transformer.py"),
    "VGG-11-BN (ImageNet classifier, 132.9M parameters)": str(HERE / "models" / "vgg11_bn.py"),
}
BILLION_SPEC = str(HERE / "models" / "transformer.py:build_1b")
NAIVE_FACTOR = 2.9
T = TypeVar("T")


@dataclass(frozen=True)
class Took:
    """Process CPU time (robust to other jobs on a shared machine: waiting for a core is not counted)
    and wall-clock time."""
    cpu: float
    wall: float

    def __truediv__(self, other: "Took") -> float:  # ratios use CPU time
        return self.cpu / other.cpu

    def scaled(self, factor: float) -> "Took":
        return Took(self.cpu * factor, self.wall * factor)

    def __str__(self) -> str:
        return f"{self.cpu:8.3f} s CPU ({self.wall:.3f} s wall)"


def timed(fn: Callable[[], T]) -> tuple[T, Took]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, Took(time.process_time() - cpu, time.perf_counter() - wall)


def best_of(fn: Callable[[], object], repeat: int) -> Took:
    return min((timed(fn)[1] for _ in range(repeat)), key=lambda t: t.cpu)


def capture_and_degree_times(model: torch.nn.Module, inputs: tuple, repeat: int) -> tuple[Took, Took]:
    """Graph capture, and the degree analysis (degrees + constraints + solve) on its graph, each timed
    alone (best of `repeat`). capture() wants a private train-mode copy, made before the clock starts."""
    copies = [copy.deepcopy(model).train() for _ in range(repeat)]
    captures = [timed(lambda private=private: capture(private, inputs)) for private in copies]
    captured = captures[0][0]
    capture_time = min((t for _, t in captures), key=lambda t: t.cpu)
    params = list(captured.root.named_parameters())
    return capture_time, best_of(lambda: analyse_capture(captured, params), repeat)


def naive_scaling_time(model: torch.nn.Module, inputs: tuple, sample: int | None) -> tuple[Took, int, int]:
    """Per parameter tensor: one forward, scale it, a second forward, compare (float64, train mode).

    With `sample`, about that many tensors (evenly spread) are timed and the total is extrapolated
    linearly: every tensor costs the same two forward passes. Returns (time, tensors, timed).
    """
    probe = copy.deepcopy(model).double().train()
    xs = tuple(x.double() if x.is_floating_point() else x for x in inputs)
    params = list(probe.parameters())
    chosen = params if sample is None else params[:: max(1, len(params) // sample)]

    def scale_each():
        with torch.no_grad():
            for p in chosen:
                base = probe(*xs)
                p.mul_(NAIVE_FACTOR)
                scaled = probe(*xs)
                p.div_(NAIVE_FACTOR)
                torch.allclose(base, scaled, rtol=1e-9)

    took = timed(scale_each)[1]
    return took.scaled(len(params) / len(chosen)), len(params), len(chosen)


@contextlib.contextmanager
def counting_confirmation():
    """Count the float64 copies and forward passes the numeric confirmation makes."""
    cost = {"copies": 0, "forwards": 0}
    copy_fn, forward_fn = numeric.float64_copy, numeric.ScalingProbe._forward

    def counted_copy(*args, **kwargs):
        cost["copies"] += 1
        return copy_fn(*args, **kwargs)

    def counted_forward(probe):
        cost["forwards"] += 1
        return forward_fn(probe)

    numeric.float64_copy, numeric.ScalingProbe._forward = counted_copy, counted_forward
    try:
        yield cost
    finally:
        numeric.float64_copy, numeric.ScalingProbe._forward = copy_fn, forward_fn


def bench_model(label: str, spec: str, args: argparse.Namespace) -> None:
    loaded = load_model(spec)
    model, inputs = loaded.model, loaded.example_inputs
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n{label}: {n_params / 1e6:.1f}M parameters, inputs {loaded.inputs_note}", flush=True)
    capture_t, degrees_t = capture_and_degree_times(model, inputs, args.repeat)
    print(f"  graph capture              {capture_t}")
    print(f"  degree analysis + solve    {degrees_t}   ratio {degrees_t / capture_t:.2f}x  (goal <= 0.5x)")
    def full_audit():
        return audit(model, inputs, verify=True, model_name=label, inputs_note=loaded.inputs_note)

    full_audit()  # warm-up: lazy imports and first-call costs, as the best-of timings above exclude them
    with counting_confirmation() as cost:
        report, audit_t = timed(full_audit)
    print(f"  full audit (verify on)     {audit_t}   {report.summary()}; "
          f"verification {report.verification.status}")
    print(f"  confirmation cost          {cost['copies']} float64 cop{'y' if cost['copies'] == 1 else 'ies'}, "
          f"{cost['forwards']} float64 forward passes  (budget: 1 copy, 6 forwards)")
    naive_t, n_tensors, n_timed = naive_scaling_time(model, inputs, args.naive_sample)
    note = f"   (extrapolated from {n_timed} tensors)" if n_timed < n_tensors else ""
    print(f"  naive, {n_tensors} tensors x 2 runs {naive_t}{note}")
    print(f"  audit speed-up             {naive_t / audit_t:8.1f}x  (goal >= 10x)", flush=True)


# A forked child's ru_maxrss starts at its parent's RSS (Linux copies the high-water mark across
# fork+exec), and this process holds two models. A tiny launcher process forks the measured command,
# so the figure is that command's own peak; the launcher writes it to the file named by argv[1].
_LAUNCHER = """import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def child_peak_rss_mb(command: list[str]) -> tuple[float, str]:
    """Run `command` and return its own peak RSS in MB and its stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file, out_file = Path(tmp, "rss"), Path(tmp, "out")
        with out_file.open("w") as out:
            done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(rss_file), *command],
                                  stdout=out, stderr=subprocess.PIPE, text=True)
        max_rss_kib, code = map(int, rss_file.read_text().split())
        if done.returncode != 0 or code != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
        return max_rss_kib / 1024, out_file.read_text()  # Linux reports KiB


def bench_meta(spec: str) -> None:
    rss_mb, out = child_peak_rss_mb([sys.executable, "-m", "explr", "audit", spec, "--device", "meta",
                                     "--format", "json", "--fail-on", "never"])
    baseline_mb, _ = child_peak_rss_mb([sys.executable, "-c", "import torch, explr.audit.api"])
    doc = json.loads(out)
    n = sum(p["numel"] for p in doc["parameters"])
    n_si = sum(p["si"] for p in doc["parameters"])
    print(f"\n--device meta audit of {n / 1e9:.2f}B parameters ({len(doc['parameters'])} tensors, {n_si} SI): "
          f"peak RSS {rss_mb:.0f} MB  (goal < 2048 MB; Python + torch import alone {baseline_mb:.0f} MB; "
          f"float32 weights would be {4 * n / 2**20:.0f} MB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="time the naive baseline on ~20 tensors and extrapolate")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for capture and degree timings")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: CPU time equals compute time; ratios barely depend on it)")
    parser.add_argument("--only", default="", help="only the models whose label contains this text (skips the meta run)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.naive_sample = 20 if args.quick else None
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; ratios use process CPU time")
    for label, spec in MODELS.items():
        if args.only.lower() in label.lower():
            bench_model(label, spec, args)
    if not args.only:
        bench_meta(BILLION_SPEC)


if __name__ == "__main__":
    main()
