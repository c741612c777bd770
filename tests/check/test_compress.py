"""Schedule compression: every phase boundary lands inside the horizon, LR values unchanged."""
from __future__ import annotations

import pytest

from explr.check.compress import MIN_GAP, compress, schedule_events
from explr.lr_schedule import LRSchedule

IPE = 391
CIFAR = LRSchedule(0.1, 160 * IPE, milestones=(80 * IPE, 120 * IPE), gamma=0.1)


def test_step_decay_milestones_map_proportionally_and_keep_lr_values():
    comp = compress(CIFAR, 200)
    s = comp.schedule
    assert comp.compressed and s.total_iters == 200 and s.milestones == (100, 150)
    assert [s.lr_at(i) for i in (0, 99, 100, 149, 150, 199)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3])
    assert comp.phases_hit == comp.phases_total == 3
    lines = comp.describe(IPE)
    assert "62,560 iterations -> 200 steps" in lines[0]
    assert "milestone 1: iteration 31,280 (epoch 80) -> step 100" in lines[1]


def test_warmup_and_cosine_are_both_exercised():
    sched = LRSchedule(0.4, 90 * 1000, decay="cosine", warmup_iters=5 * 1000, warmup_factor=0.1,
                       decay_start=5 * 1000, eta_min=0.0)
    comp = compress(sched, 100)
    s = comp.schedule
    assert s.warmup_iters == s.decay_start >= MIN_GAP  # one event: warmup end == decay start
    assert s.lr_at(0) == pytest.approx(0.04)  # warmup starts at factor x base
    assert s.lr_at(s.warmup_iters) == pytest.approx(0.4)  # peak right after warmup
    assert s.lr_at(99) < 0.01  # cosine reaches (almost) its floor inside the horizon
    assert [b.label for b in comp.boundaries] == ["warmup end", "decay start"]


def test_a_tiny_warmup_still_gets_steps_and_phases_stay_ordered():
    sched = LRSchedule(0.1, 100_000, milestones=(10, 20, 99_990), warmup_iters=1)
    comp = compress(sched, 40)
    points = [b.step for b in comp.boundaries]
    assert points == sorted(points) and len(set(points)) == len(points)
    assert all(b - a >= MIN_GAP for a, b in zip(points, points[1:])) and points[0] >= MIN_GAP
    assert points[-1] <= 40 - MIN_GAP


def test_per_epoch_stepping_is_rescaled_but_never_below_one():
    sched = LRSchedule(0.1, 160 * IPE, milestones=(80 * IPE,), step_every=IPE)
    assert compress(sched, 200).schedule.step_every == 1
    assert compress(sched, 40 * IPE).schedule.step_every == round(IPE * 40 * IPE / (160 * IPE))


def test_no_compress_runs_the_literal_first_steps_and_says_what_is_not_reached():
    comp = compress(CIFAR, 200, enabled=False)
    assert not comp.compressed and comp.schedule is CIFAR and comp.steps == 200
    assert all(b.step is None for b in comp.boundaries) and comp.phases_hit == 1
    assert "not reached" in comp.describe(IPE)[1]


def test_a_horizon_longer_than_the_schedule_runs_it_whole():
    short = LRSchedule(0.1, 50, milestones=(20, 40))
    comp = compress(short, 200)
    assert comp.steps == 50 and comp.schedule is short and [b.step for b in comp.boundaries] == [20, 40]


def test_too_few_steps_for_the_phases_is_an_error_naming_the_minimum():
    with pytest.raises(ValueError, match="at least"):
        compress(CIFAR, 2)
    with pytest.raises(ValueError, match="must be > 0"):
        compress(CIFAR, 0)


def test_events_cover_linear_decay_end():
    sched = LRSchedule(1.0, 1000, decay="linear", decay_start=100, decay_iters=500)
    assert schedule_events(sched) == [("decay start", 100), ("decay end", 600)]
    s = compress(sched, 100).schedule
    assert s.decay_start == 10 and s.decay_start + s.decay_iters == 60 and s.lr_at(70) == pytest.approx(0.0)
