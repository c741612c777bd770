"""TEXPScheduler in a user's own AMP loop (Hydra configs, explr.integrations.build): the loop steps the scheduler
where the original's was stepped — every iteration, or every epoch — and a GradScaler-skipped optimizer step
still moves the original's LR index. The converted run must match it to float64 precision."""
from __future__ import annotations

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR

import explr
from explr.lr_schedule import LRSchedule
from explr.integrations.scheduler import TEXPScheduler
from tests.configs.texp_harness import batches
from tests.integrations.harness import Side, compare_amp_runs

LR, WD, IPE, EPOCHS = 0.1, 5e-3, 8, 6
PER_ITERATION = dict(base_lr=LR, total_iters=IPE * EPOCHS, milestones=(20, 36), warmup_iters=6, warmup_factor=0.1)
PER_EPOCH = dict(base_lr=LR, total_iters=IPE * EPOCHS, milestones=(2 * IPE, 4 * IPE), step_every=IPE)
# the first step, inside warmup, both sides of a milestone / an epoch end, a whole run of skips
SKIPS = {0, 5, 15, 16, 19, 20, 31, 33, 40, 41, 42}
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")


def original(make_scheduler, every: int):
    def side(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
        scheduler = make_scheduler(optimizer)
        return Side(optimizer, after=lambda i: scheduler.step() if (i + 1) % every == 0 else None)
    return side


def converted(schedule: dict, every: int, made: dict):
    def side(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
        scheduler = made["scheduler"] = TEXPScheduler(optimizer, schedule)  # as Hydra instantiates it
        scheduler.bind(model, batches(1)[0][0])
        return Side(optimizer, after=lambda i: scheduler.step() if (i + 1) % every == 0 else None)
    return side


CASES = {
    "per-iteration": (lambda o: LambdaLR(o, lambda i: LRSchedule(**PER_ITERATION).lr_at(i) / LR),
                      PER_ITERATION, 1),
    "per-epoch": (lambda o: MultiStepLR(o, milestones=[2, 4], gamma=0.1), PER_EPOCH, IPE),
}


@pytest.mark.parametrize("case", CASES)
def test_amp_skipped_steps_move_the_lr_index_as_the_original_does(case, monkeypatch):
    make_original, schedule, every = CASES[case]
    made: dict = {}
    worst = compare_amp_runs(original(make_original, every), converted(schedule, every, made), IPE * EPOCHS, SKIPS)
    texp = made["scheduler"].texp
    assert worst <= 1e-12 and len(texp.skipped_steps) == len(SKIPS) and texp.last_epoch == IPE * EPOCHS
    # stepped per epoch, it learns of an epoch's skips at its end: inside an epoch the LR is constant anyway
    per_period = [sorted(j // every for j in skips) for skips in (texp.skipped_steps, SKIPS)]
    assert per_period[0] == per_period[1]
    monkeypatch.setattr(explr.TEXP, "catch_up", lambda self, index, most: None)  # the hook alone lags behind
    assert compare_amp_runs(original(make_original, every), converted(schedule, every, made),
                            IPE * EPOCHS, SKIPS) > 1e-6

