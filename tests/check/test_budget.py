"""--budget: steps (and the synthetic batch) chosen from a timed step so the whole check fits."""
import pytest

from explr.check.api import CheckOptions, check
from explr.check.budget import END_STEPS, MIN_BATCH, MIN_SIDE, MIN_STEPS, SAFETY, DataSize, StepPlan, data_sizes, plan_steps
from tests.check.helpers import DEMO_CONFIG, audited


def test_the_most_steps_that_fit_at_the_requested_batch():
    plan = plan_steps(budget=90, spent=10, runs=2, max_steps=200, sizes=data_sizes(16, False, None),
                      timed=DataSize(16), timed_seconds=0.5)
    assert plan.batch_size == 16
    assert plan.steps == int(80 * SAFETY / (0.5 * 2) - END_STEPS)
    assert plan.fits and plan.estimate_seconds <= 90


def test_capped_at_max_steps():
    plan = plan_steps(90, 0, 2, 200, data_sizes(16, False, None), DataSize(16), 0.001)
    assert plan.steps == 200 and plan.fits


def test_the_batch_halves_until_the_minimum_steps_fit():
    # 10 s a step at batch 16 (a ResNet-18 at 224x224 in float64 on 2 cores): 16 steps would not fit in 80 s
    plan = plan_steps(90, 10, 2, 200, data_sizes(16, False, None), DataSize(2), 10 / 8)
    assert plan.batch_size < 16 and plan.steps >= MIN_STEPS and plan.fits
    assert plan.step_seconds == pytest.approx(10 / 8 * plan.batch_size / 2)


def test_when_nothing_fits_the_fewest_useful_steps_run_and_the_plan_says_over():
    plan = plan_steps(30, 25, 3, 200, data_sizes(16, False, None), DataSize(2), 5.0)
    assert plan.batch_size == MIN_BATCH and plan.steps == MIN_STEPS and not plan.fits
    assert "OVER" in plan.describe()


def test_user_data_keeps_its_batch_size():
    plan = plan_steps(90, 0, 2, 200, data_sizes(32, True, 224), DataSize(32), 2.0)
    assert plan.batch_size == 32 and plan.steps == MIN_STEPS and not plan.fits


def test_then_synthetic_images_shrink_down_to_the_minimum_side():
    sizes = data_sizes(16, False, 224)
    assert [s.batch for s in sizes] == [16, 8, 4, 2, 2, 2] and [s.shrink for s in sizes] == [1, 1, 1, 1, 2, 4]
    assert 224 // sizes[-1].shrink >= MIN_SIDE
    # ResNet-18 at 224x224 in float64: ~6 s a step at batch 2 on 2 cores; 80 s left of the budget
    plan = plan_steps(90, 10, 2, 200, sizes, DataSize(2), 6.0)
    assert plan.shrink > 1 and plan.steps >= MIN_STEPS and plan.fits and "1/" in plan.describe()


def test_describe_states_plan_and_estimate():
    text = StepPlan(40, 8, 0.5, 2, 12.0, 90.0).describe()
    assert text.startswith("plan: 40 steps x 2 runs at batch 8") and "estimate 54 s" in text and "within" in text


def test_a_budgeted_check_logs_its_plan_first_and_runs_the_planned_steps():
    spec, report = audited("resnet_cifar")
    lines = []
    result = check(spec, DEMO_CONFIG, si=report, log=lines.append,
                   options=CheckOptions(budget=6.0, batch_size=8, device="cpu"))
    plan_line = lines[0]
    assert plan_line.startswith("plan: ") and f"plan: {result.steps} steps x 2 runs" in plan_line
    assert plan_line in result.notes and result.passed
    assert MIN_STEPS <= result.steps <= 200


def test_a_slow_step_makes_the_budget_choose_fewer_steps_and_say_it_is_over(monkeypatch):
    monkeypatch.setattr("explr.check.api.time_step", lambda step, size: 1.0)  # 1 s a step, whatever the size
    spec, report = audited("resnet_cifar")
    lines = []
    result = check(spec, DEMO_CONFIG, si=report, log=lines.append,
                   options=CheckOptions(budget=6.0, batch_size=8, device="cpu"))
    assert result.steps == MIN_STEPS and "at batch 2" in lines[0] and "OVER" in lines[0]


def test_given_steps_are_run_as_given_without_timing():
    spec, report = audited("resnet_cifar")
    lines = []
    result = check(spec, DEMO_CONFIG, si=report, log=lines.append,
                   options=CheckOptions(steps=5, batch_size=4, device="cpu"))
    assert result.steps == 5 and not any(line.startswith("plan:") for line in lines)
