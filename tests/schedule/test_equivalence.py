"""Trajectory equivalence (docs/theory.md §3): weight decay + schedule vs TEXP, same init and data, float64."""
import warnings

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR

import explr
from explr.lr_schedule import LRSchedule
from tests.schedule.nets import SI_NAMES, batches, max_rel_diff, train, twins

STEPS, LR, WD = 60, 0.1, 5e-4
STEP_DECAY = LRSchedule(LR, STEPS, milestones=(20, 40))
WARMUP_COSINE = LRSchedule(LR, STEPS, decay="cosine", warmup_iters=10, warmup_factor=0.0)


def run_pair(schedule, eps, *, momentum=0.9, dampening=0.0, nesterov=False, texp_schedule=None, approximate=False):
    """Return (original outputs, converted outputs, converted net) on identical init and data."""
    original, converted = twins(eps)
    data = batches(STEPS)
    hyper = dict(lr=LR, momentum=momentum, dampening=dampening, nesterov=nesterov)
    opt = torch.optim.SGD(original.parameters(), weight_decay=WD, **hyper)
    ref = train(original, opt, LambdaLR(opt, lambda i: schedule.lr_at(i) / LR), data)
    opt2 = torch.optim.SGD(explr.param_groups(converted, SI_NAMES, weight_decay=WD), **hyper)
    sched = explr.TEXP(opt2, texp_schedule or schedule, approximate=approximate)
    return ref, train(converted, opt2, sched, data), converted


@pytest.mark.parametrize("schedule", [STEP_DECAY, WARMUP_COSINE], ids=["step", "warmup-cosine"])
def test_exact_with_tiny_bn_eps(schedule):
    ref, conv, _ = run_pair(schedule, eps=1e-20)
    assert max_rel_diff(ref, conv) <= 1e-12


def test_exact_up_to_eps_with_default_bn_eps():
    ref, conv, _ = run_pair(STEP_DECAY, eps=1e-5)
    assert max_rel_diff(ref, conv) <= 1e-6


def test_dampening():
    ref, conv, _ = run_pair(STEP_DECAY, eps=1e-20, dampening=0.3)
    assert max_rel_diff(ref, conv) <= 1e-12


def test_torch_scheduler_factory_gives_the_same_trajectory():
    ref, conv, _ = run_pair(STEP_DECAY, eps=1e-20, texp_schedule=lambda opt: MultiStepLR(opt, [20, 40], 0.1))
    assert max_rel_diff(ref, conv) <= 1e-12


def test_converted_weights_are_original_over_phantom_scale():
    _, _, net = run_pair(STEP_DECAY, eps=1e-20)
    original, _ = twins(1e-20)
    opt = torch.optim.SGD(original.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
    train(original, opt, MultiStepLR(opt, [20, 40], 0.1), batches(STEPS))
    s = explr.schedule.converted_lrs(STEP_DECAY.lr_at, explr.schedule.SGDHyper(0.9, 0.0, WD), STEPS)
    s_T = list(s)[-1][1]
    orig, conv = dict(original.named_parameters()), dict(net.named_parameters())
    torch.testing.assert_close(conv["stem.weight"] * s_T, orig["stem.weight"], rtol=1e-10, atol=0)
    torch.testing.assert_close(conv["head.weight"], orig["head.weight"], rtol=1e-10, atol=0)  # head untouched


def test_without_conversion_the_runs_differ():
    """Guard against a vacuous comparison: dropping weight decay without TEXP must change the outputs."""
    original, plain = twins(1e-20)
    data = batches(STEPS)
    opt = torch.optim.SGD(original.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
    ref = train(original, opt, MultiStepLR(opt, [20, 40], 0.1), data)
    opt2 = torch.optim.SGD(explr.param_groups(plain, SI_NAMES, weight_decay=WD), lr=LR, momentum=0.9)
    assert max_rel_diff(ref, train(plain, opt2, MultiStepLR(opt2, [20, 40], 0.1), data)) > 1e-6


def test_nesterov_approximate_deviates_measurably():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref, conv, _ = run_pair(STEP_DECAY, eps=1e-20, nesterov=True, approximate=True)
    assert any("Nesterov" in str(w.message) for w in caught)
    assert max_rel_diff(ref, conv) > 1e-6
