"""Horizons: where converted weights overflow and gradients underflow, from the schedule alone."""
import math

import pytest
import torch

from explr.lr_schedule import LRSchedule, schedule_from_epochs
from explr.schedule.horizons import GROWTH_LIMIT, Assumptions, growth_warning, horizons
from explr.schedule.phantom import SGDHyper, trace

HYPER = SGDHyper(0.9, 0.0, 5e-4)
CIFAR = schedule_from_epochs(0.1, 391, 160, (80, 120))


def test_fp16_gradient_underflow_inside_the_run_is_the_first_crossing():
    run = trace(CIFAR.lr_at, HYPER, CIFAR.total_iters)
    a = Assumptions(grad_magnitude=1e-4)
    h = horizons(run, HYPER, a)["grads_underflow_float16"]
    tiny = 2.0 ** -24
    assert torch.tensor(tiny, dtype=torch.float16).item() == tiny  # the threshold is the smallest fp16 subnormal
    assert h.within_run
    t = h.step  # 1-based: s_t is run.scales[t-1]
    assert run.scales[t - 1] * a.grad_magnitude < tiny <= run.scales[t - 2] * a.grad_magnitude
    assert 20 < t / 391 < 80  # docs/theory.md §4: "a matter of tens of epochs" at lr 0.1


def test_loss_scale_delays_underflow_by_its_log():
    run = trace(CIFAR.lr_at, HYPER, CIFAR.total_iters)
    found = horizons(run, HYPER, Assumptions(loss_scale=1024.0))
    plain, scaled = found["grads_underflow_float16"], found["grads_underflow_float16_loss_scaled"]
    assert scaled.threshold_log_inv_scale - plain.threshold_log_inv_scale == pytest.approx(math.log(1024.0))
    assert scaled.step > plain.step


def test_overflow_past_the_end_is_extrapolated_with_the_last_lr():
    schedule = LRSchedule(0.1, 1000)  # constant LR: s_t -> A·α^t, so the extrapolation is accurate
    run = trace(schedule.lr_at, HYPER, 1000)
    h = horizons(run, HYPER)["weights_overflow_float32"]
    assert not h.within_run
    assert h.threshold_log_inv_scale == pytest.approx(math.log(torch.finfo(torch.float32).max))
    longer = trace(schedule.lr_at, HYPER, h.step)
    assert -math.log(longer.s_final) == pytest.approx(h.threshold_log_inv_scale, abs=2e-3)


def test_bfloat16_keeps_float32_range():
    run = trace(CIFAR.lr_at, HYPER, CIFAR.total_iters)
    found = horizons(run, HYPER)
    assert found["weights_overflow_bfloat16"].step == pytest.approx(found["weights_overflow_float32"].step, rel=1e-3)


def test_lr_ending_at_zero_never_reaches_a_horizon_past_the_end():
    run = trace(lambda i: 0.1 if i < 250 else 0.0, HYPER, 500)
    h = horizons(run, HYPER)["weights_overflow_float32"]
    assert h.step is None and not h.within_run


def test_assumptions_are_validated():
    run = trace(CIFAR.lr_at, HYPER, 10)
    with pytest.raises(ValueError, match="grad_magnitude=0.0 must be a finite number > 0"):
        horizons(run, HYPER, Assumptions(grad_magnitude=0.0))


def test_growth_warning_only_when_the_numbers_leave_float32_and_it_names_the_fix():
    hyper = SGDHyper(momentum=0.9, weight_decay=5e-4)
    cifar = LRSchedule(0.1, 391 * 200, milestones=(391 * 100, 391 * 150))
    assert growth_warning(trace(cifar.lr_at, hyper, cifar.total_iters)) is None  # 1/s_T ~ 1e9: fine
    long_run = LRSchedule(0.1, 391 * 430)
    run = trace(long_run.lr_at, hyper, long_run.total_iters)
    warning = growth_warning(run)
    assert 1 / run.s_final > GROWTH_LIMIT and warning is not None
    assert f"grow by {1 / run.s_final:.2g}" in warning and "renormalize=(low, high)" in warning
