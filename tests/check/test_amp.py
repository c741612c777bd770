"""--amp: the check's runs under torch.autocast (bf16), and fp16 with a real GradScaler that skips overflowed
steps — the same code path benchmarks/gpu_check.py runs on a GPU, here on CPU."""
from __future__ import annotations

import pytest
import torch

from explr.check.api import AMPS, CheckOptions, check, resolve_amp
from explr.check.data import Batch
from explr.check.runner import train_step
from explr.check.setups import converted_run, original_run
from explr.cli import main
from explr.errors import ExplrError
from explr.lr_schedule import LRSchedule
from tests.check.helpers import DEMO_CONFIG, audited, plan


@pytest.mark.parametrize("amp", ["bfloat16", "float16"])
def test_a_check_under_autocast_measures_a_noise_floor_and_judges_against_it(amp):
    spec, report = audited("resnet_cifar")
    result = check(spec, DEMO_CONFIG, si=report,
                   options=CheckOptions(steps=4, batch_size=4, dtype="float32", amp=amp, device="cpu"))
    assert result.dtype.startswith(f"float32 + autocast {amp}")
    assert ("GradScaler" in result.dtype) == (amp == "float16")
    assert result.noise_floor is not None and result.tolerance == max(10 * result.noise_floor, 1e-6)
    assert result.passed == (result.max_rel_deviation <= result.tolerance <= 1e-2)
    assert f"autocast {amp}" in result.tolerance_reason


def _runs(amp_name):
    spec, report = audited("resnet_cifar")
    from explr.load import load_model

    model = load_model(spec).model.float()
    schedule = LRSchedule(0.1, 20, milestones=(10,))
    amp = AMPS[amp_name]
    original = original_run("original", model, plan(lr=schedule), schedule, amp)
    twin = load_model(spec).model.float()
    twin.load_state_dict(model.state_dict())
    converted, _ = converted_run(twin, plan(lr=schedule), list(report.si_names), schedule, False, amp)
    return original, converted


def _batch():
    g = torch.Generator().manual_seed(0)
    return Batch((torch.randn(4, 3, 32, 32, generator=g),), torch.randint(0, 10, (4,), generator=g))


def test_the_forward_really_runs_in_the_autocast_dtype():
    original, _ = _runs("bfloat16")
    assert train_step(original, _batch(), seed=1, clip_norm=None).output.dtype == torch.bfloat16


def test_an_overflowed_fp16_step_is_skipped_by_the_real_grad_scaler_in_both_runs():
    original, converted = _runs("float16")
    for run in (original, converted):
        run.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 120)  # fp16 gradients overflow at once
        before = [p.detach().clone() for p in run.model.parameters()]
        train_step(run, _batch(), seed=1, clip_norm=None)
        assert run.skipped == 1 and all(torch.equal(a, b) for a, b in zip(before, run.model.parameters()))
    assert original.scheduler.i == 1  # the original LR index moved on, as torch schedulers do
    assert converted.scheduler.skipped_steps == [0] and converted.scheduler.last_epoch == 1
    # no step was taken: the phantom holds s_1 of the step to come (LR index 1), not s_2
    assert converted.scheduler.scales[0] == 1.0 - 0.1 * 5e-4


def test_amp_needs_float32_master_weights():
    with pytest.raises(ExplrError, match="--dtype float32"):
        resolve_amp("float16", torch.float64)
    with pytest.raises(ExplrError, match="not one of"):
        resolve_amp("float8", torch.float32)


def test_cli_amp_with_float64_is_one_line_exit_2(capsys):
    spec, _ = audited("resnet_cifar")
    code = main(["check", spec, DEMO_CONFIG, "--steps", "2", "--amp", "bfloat16"])
    err = capsys.readouterr().err
    assert code == 2 and "--dtype float32" in err and len(err.strip().splitlines()) == 1


def test_the_twin_is_moved_by_one_ulp_of_the_dtype_the_forward_computes_in():
    from explr.check.setups import perturbed_copy
    from explr.load import load_model

    model = load_model(audited("resnet_cifar")[0]).model.float()
    pairs = list(zip(model.parameters(), perturbed_copy(model).parameters()))
    assert all(torch.equal(q, torch.nextafter(p, torch.full_like(p, float("inf")))) for p, q in pairs)
    moved = sum(int((p.bfloat16() != q.bfloat16()).sum()) for p, q in pairs)
    assert moved < 1e-3 * sum(p.numel() for p, _ in pairs)  # a float32 ulp: (almost) invisible to bf16
    for p, q in zip(model.parameters(), perturbed_copy(model, torch.bfloat16).parameters()):
        seen = p.bfloat16()  # what the autocast forward computes with: one bf16 ulp up
        assert torch.equal(q.bfloat16(), torch.nextafter(seen, torch.full_like(seen, float("inf"))))


def test_an_inconclusive_bf16_check_says_to_drop_amp_and_why(capsys):
    """bf16 keeps 8 significant bits: within 4 steps the 1-ulp twin is off by ~0.5, far past any tolerance that
    could tell a real deviation from noise. The advice names what resolves that: a run without --amp."""
    spec, _ = audited("resnet_cifar")
    code = main(["check", spec, DEMO_CONFIG, "--steps", "4", "--check-batch-size", "4", "--device", "cpu",
                 "--dtype", "float32", "--amp", "bfloat16"])
    out = " ".join(capsys.readouterr().out.split())  # the summary table wraps long lines
    assert "INCONCLUSIVE" in out and code != 0
    assert "drop --amp bfloat16 and check in float32 (--dtype float32) or float64 (the default --dtype)" in out
    assert "autocast runs matmuls and convolutions in bfloat16 (8 significant bits" in out
    assert "rerun with --dtype" not in out
