"""Closed forms against the exact engine, the TEXP phase table and input validation."""
import math

import pytest

from explr.lr_schedule import LRSchedule, schedule_from_epochs
from explr.schedule.closed_form import (
    alpha,
    growth_per_epoch,
    growth_per_step,
    log_inverse_scale_estimate,
    momentum_free_converted_lr,
    momentum_free_scale,
    phase_table,
)
from explr.schedule.phantom import SGDHyper, converted_lrs, trace

BLOG = SGDHyper(momentum=0.9, weight_decay=5e-4)


def test_blog_alpha_and_growth_per_epoch():
    assert alpha(0.1, BLOG) == pytest.approx(0.99949773, abs=5e-9)
    assert growth_per_epoch(0.1, BLOG, 391) == pytest.approx(1.4812, abs=5e-5)
    assert growth_per_step(0.1, BLOG) ** 391 == pytest.approx(growth_per_epoch(0.1, BLOG, 391), rel=1e-12)


@pytest.mark.parametrize("hyper", [BLOG, SGDHyper(0.9, 0.3, 5e-4), SGDHyper(0.5, 0.0, 1e-2)])
def test_engine_converges_to_the_closed_form_growth(hyper):
    lrs = [lr for lr, _ in converted_lrs(lambda i: 0.1, hyper, 3000)]
    assert lrs[-1] / lrs[-2] == pytest.approx(growth_per_step(0.1, hyper), rel=1e-12)


def test_momentum_zero_closed_forms_match_the_engine():
    hyper = SGDHyper(0.0, 0.7, 5e-4)  # torch ignores dampening without momentum
    assert alpha(0.1, hyper) == pytest.approx(1 - 0.1 * 5e-4, rel=1e-15)
    for t, (lr_tilde, s) in enumerate(converted_lrs(lambda i: 0.1, hyper, 200), start=1):
        assert s == pytest.approx(momentum_free_scale(0.1, 5e-4, t), rel=1e-13)
        assert lr_tilde == pytest.approx(momentum_free_converted_lr(0.1, 5e-4, t), rel=1e-13)


def test_step_decay_phase_table():
    schedule = schedule_from_epochs(0.1, 391, 160, (80, 120))
    run = trace(schedule.lr_at, BLOG, schedule.total_iters)
    phases = phase_table(schedule, BLOG, 391, run)
    assert [(p.start_iter, p.end_iter) for p in phases] == [(0, 31280), (31280, 46920), (46920, 62560)]
    assert [p.base_lr for p in phases] == pytest.approx([0.1, 0.01, 0.001])
    assert [p.growth_per_epoch for p in phases] == pytest.approx(
        [growth_per_epoch(lr, BLOG, 391) for lr in (0.1, 0.01, 0.001)])
    assert phases[1].converted_lr_start == run.converted[31280]
    assert phases[0].converted_lr_end == run.converted[31279]
    assert phases[1].converted_lr_start < phases[0].converted_lr_end  # the LR drop survives conversion
    # inside a phase the exact schedule grows at the closed-form rate once the transient has passed
    epoch_growth = run.converted[46919] / run.converted[46919 - 391]
    assert epoch_growth == pytest.approx(phases[1].growth_per_epoch, rel=1e-3)


def test_warmup_and_cosine_phases_have_no_constant_growth():
    schedule = LRSchedule(0.1, 1000, decay="cosine", warmup_iters=100)
    phases = phase_table(schedule, BLOG, 100, trace(schedule.lr_at, BLOG, 1000))
    assert [p.kind for p in phases] == ["warmup", "decay"] and phases[0].converted_lr_start == 0.0
    assert all(p.growth_per_epoch is None for p in phases)


@pytest.mark.parametrize("timescale, kinds", [(None, ["warmup", "constant", "decay", "constant"]),
                                               (50.0, ["warmup", "decay", "decay", "constant"])])
def test_wsd_phases_constant_while_stable_and_after_the_anneal(timescale, kinds):
    """timm WSD: warmup, stable LR (constant unless rsqrt), anneal to eta_min, then eta_min held (cooldown)."""
    schedule = LRSchedule(0.1, 1000, decay="wsd", warmup_iters=100, warmup_blend="ramp_to_base", decay_start=100,
                          decay_iters=800, anneal_iters=200, eta_min=1e-3, stable_timescale=timescale)
    schedule.validate()
    run = trace(schedule.lr_at, BLOG, 1000)
    phases = phase_table(schedule, BLOG, 100, run)
    assert [(p.kind, p.start_iter, p.end_iter) for p in phases] == list(zip(kinds, (0, 100, 700, 900),
                                                                              (100, 700, 900, 1000)))
    for phase in phases:
        lrs = set(run.lrs[phase.start_iter:phase.end_iter])
        assert (len(lrs) == 1) == (phase.kind == "constant"), phase  # "constant" exactly where the LR is
        assert (phase.growth_per_epoch is not None) == (phase.kind == "constant")


def test_wsd_cooldown_at_lr_zero_is_constant_without_growth():
    schedule = LRSchedule(0.1, 1000, decay="wsd", decay_iters=800, anneal_iters=200)
    run = trace(schedule.lr_at, BLOG, 1000)
    phases = phase_table(schedule, BLOG, 100, run)
    assert [(p.kind, p.base_lr, p.growth_per_epoch is None) for p in phases] == [
        ("constant", 0.1, False), ("decay", 0.1, True), ("constant", 0.0, True)]
    assert run.converted[-1] == 0.0


def test_log_inverse_scale_estimate_is_close_to_exact():
    schedule = schedule_from_epochs(0.1, 391, 200, (100, 150))
    run = trace(schedule.lr_at, BLOG, schedule.total_iters)
    assert log_inverse_scale_estimate(run.lrs, BLOG) == pytest.approx(-math.log(run.s_final), rel=1e-2)
    assert run.s_final == pytest.approx(1e-9, rel=0.3)  # docs/theory.md §4: ~1e-9 for CIFAR-10, 200 epochs


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0.0), "lr=0.0 must be a finite number > 0"),
    (dict(lr=-1.0), "lr=-1.0"),
    (dict(iters_per_epoch=0), "iters_per_epoch=0 must be an integer > 0"),
    (dict(milestones=(120, 80)), r"milestones=\[120, 80\] must be strictly increasing epochs inside \(0, 160\)"),
    (dict(milestones=(80, 200)), r"inside \(0, 160\)"),
    (dict(epochs=0), "epochs=0"),
    (dict(warmup_epochs=160), r"warmup_epochs=160 must be in \[0, 160\)"),
])
def test_schedule_from_epochs_validation(kwargs, message):
    args = dict(lr=0.1, iters_per_epoch=391, epochs=160, milestones=(80, 120)) | kwargs
    with pytest.raises(ValueError, match=message):
        schedule_from_epochs(**args)


@pytest.mark.parametrize("hyper, message", [
    (SGDHyper(momentum=1.0, weight_decay=5e-4), r"momentum=1.0 is outside the allowed range \[0, 1\)"),
    (SGDHyper(momentum=-0.5), "momentum=-0.5"),
    (SGDHyper(weight_decay=-1e-4), "weight_decay=-0.0001 must be finite and >= 0"),
    (SGDHyper(momentum=0.9, weight_decay=5.0), "too large for momentum=0.9"),
])
def test_alpha_validation(hyper, message):
    with pytest.raises(ValueError, match=message):
        alpha(0.1, hyper)
