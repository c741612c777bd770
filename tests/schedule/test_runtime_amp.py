"""AMP loss scaling: a step GradScaler skips (overflow) moves the LR index but not the weights (docs/theory.md §3).

The overflows are real: the loss of a chosen step is multiplied by inf, torch.amp.GradScaler("cpu") finds
the non-finite gradients and does not call optimizer.step(). Both runs see the same skips.
"""
import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

import explr
from explr.lr_schedule import LRSchedule
from tests.schedule.nets import SI_NAMES, batches, max_rel_diff, twins

STEPS, LR, WD = 60, 0.1, 5e-4
SCHEDULE = LRSchedule(LR, STEPS, milestones=(20, 40), warmup_iters=6, warmup_factor=0.1)
SKIPS = {0, 7, 19, 20, 33}  # the first step, inside warmup, both sides of a milestone
# torch warns when the very first optimizer step is skipped (step 0 is in SKIPS on purpose)
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")


def amp_train(net, opt, sched, data, skips):
    """The usual AMP loop: scale, backward, scaler.step, scaler.update, then scheduler.step every iteration."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=5)
    outputs, taken = [], []
    opt.register_step_post_hook(lambda *_: taken.append(True))
    for i, (x, y) in enumerate(data):
        out = net(x)
        outputs.append(out.detach().clone())
        opt.zero_grad()
        loss = F.cross_entropy(out, y) * (float("inf") if i in skips else 1.0)
        scaler.scale(loss).backward()
        before = len(taken)
        scaler.step(opt)
        scaler.update()
        assert (len(taken) == before) == (i in skips)  # the real GradScaler skipped exactly those steps
        sched.step()
    return outputs


def run_pair(skips):
    original, converted = twins(eps=1e-20)
    data = batches(STEPS)
    opt = torch.optim.SGD(original.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
    ref = amp_train(original, opt, LambdaLR(opt, lambda i: SCHEDULE.lr_at(i) / LR), data, skips)
    opt2 = torch.optim.SGD(explr.param_groups(converted, SI_NAMES, weight_decay=WD), lr=LR, momentum=0.9)
    sched = explr.TEXP(opt2, SCHEDULE)
    return ref, amp_train(converted, opt2, sched, data, skips), sched


def test_skipped_steps_keep_the_runs_identical():
    ref, conv, sched = run_pair(SKIPS)
    assert sched.skipped_steps == sorted(SKIPS)
    assert max_rel_diff(ref, conv) <= 1e-12
    ref_plain, conv_plain, _ = run_pair(set())
    assert max_rel_diff(ref_plain, conv_plain) <= 1e-12
    assert max_rel_diff(ref, ref_plain) > 1e-3  # the skips really changed the training


def test_ignoring_the_skips_would_break_the_equivalence(monkeypatch):
    """Guard against a vacuous test: a TEXP that advanced its phantom on skipped steps deviates."""
    monkeypatch.setattr(explr.TEXP, "_account_for_optimizer_steps", lambda self: None)
    ref, conv, _ = run_pair(SKIPS)
    assert max_rel_diff(ref, conv) > 1e-6


def test_a_skipped_step_leaves_the_phantom_scale_where_it_was():
    _, _, with_skips = run_pair(SKIPS)
    expected = explr.schedule.Phantom(explr.schedule.SGDHyper(0.9, 0.0, WD))
    for i in range(STEPS + 1):  # the scheduler has prepared step STEPS+1 already
        if i not in SKIPS:
            expected.step(SCHEDULE.lr_at(i))
    assert with_skips.scales[0] == expected.s
