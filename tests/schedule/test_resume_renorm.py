"""Checkpoint/resume continues the identical trajectory; renormalization is exact and bounds the weights."""
import copy
import io
import math

import pytest
import torch
from torch.optim.lr_scheduler import MultiStepLR

import explr
from explr.errors import ConfigError
from explr.lr_schedule import LRSchedule
from tests.schedule.nets import SI_NAMES, batches, make_net, max_rel_diff, train

SCHEDULE = LRSchedule(0.1, 80, milestones=(30, 60))
FACTORY = lambda opt: MultiStepLR(opt, [30, 60], 0.1)  # noqa: E731


def build(net, schedule, **texp):
    opt = torch.optim.SGD(explr.param_groups(net, SI_NAMES, weight_decay=5e-4), lr=0.1, momentum=0.9,
                          dampening=0.1)
    return opt, explr.TEXP(opt, schedule, **texp)


def roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("schedule", [SCHEDULE, FACTORY], ids=["LRSchedule", "torch-factory"])
@pytest.mark.parametrize("renormalize", [None, (0.5, 4.0)], ids=["plain", "renorm"])
def test_resume_after_50_steps_equals_uninterrupted(schedule, renormalize):
    data = batches(80)
    net = make_net()
    whole = train(net, *build(net, schedule, renormalize=renormalize), data)

    net = make_net()
    opt, sched = build(net, schedule, renormalize=renormalize)
    first = train(net, opt, sched, data[:50])
    saved = roundtrip({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()})

    fresh = make_net(seed=123)  # different init: everything must come from the checkpoint
    fresh.load_state_dict(saved["model"])
    opt2, sched2 = build(fresh, schedule, renormalize=renormalize)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    rest = train(fresh, opt2, sched2, data[50:])
    assert all(torch.equal(a, b) for a, b in zip(whole, first + rest))


def test_resume_survives_loading_the_optimizer_before_building_the_scheduler():
    data = batches(60)
    net = make_net()
    whole = train(net, *build(net, SCHEDULE), data)
    net = make_net()
    opt, sched = build(net, SCHEDULE)
    train(net, opt, sched, data[:40])
    saved = copy.deepcopy({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()})
    fresh = make_net(seed=5)
    fresh.load_state_dict(saved["model"])
    opt2 = torch.optim.SGD(explr.param_groups(fresh, SI_NAMES, weight_decay=5e-4), lr=0.1, momentum=0.9,
                           dampening=0.1)
    opt2.load_state_dict(saved["opt"])
    sched2 = explr.TEXP(opt2, SCHEDULE)  # overwrites the LRs with step 1's ...
    sched2.load_state_dict(saved["sched"])  # ... and loading puts the saved ones back
    assert all(torch.equal(a, b) for a, b in zip(whole[40:], train(fresh, opt2, sched2, data[40:])))


def si_norm(net):
    params = dict(net.named_parameters())
    return torch.linalg.vector_norm(torch.stack([params[n].norm() for n in SI_NAMES])).item()


def small_si_net():
    """SI weights start small, so the converted SI norm grows ~12x in 120 steps (exact for both runs)."""
    net = make_net(eps=1e-20)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in SI_NAMES:
                p.mul_(0.1)
    return net


def test_renormalization_is_exact_and_bounds_the_weights():
    steps, wd, lr = 120, 1e-2, 0.2
    data = batches(steps)
    original = small_si_net()
    ref = train(original, torch.optim.SGD(original.parameters(), lr=lr, momentum=0.9, weight_decay=wd), None, data)

    def converted(renormalize):
        net = small_si_net()
        opt = torch.optim.SGD(explr.param_groups(net, SI_NAMES, weight_decay=wd), lr=lr, momentum=0.9)
        sched = explr.TEXP(opt, lambda i: lr, renormalize=renormalize)
        outputs, norms = [], []
        for x_y in data:
            outputs += train(net, opt, sched, [x_y])
            norms.append(si_norm(net))  # after the full step, renormalization included
        return net, sched, norms, outputs

    n0 = si_norm(small_si_net())
    bounds = (n0 / 2, 2 * n0)
    _, _, free_norms, _ = converted(None)
    assert max(free_norms) > 4 * bounds[1]  # without renormalization the norm leaves the range far behind
    net, sched, norms, outputs = converted(bounds)
    assert sched.renormalizations >= 2
    assert max_rel_diff(ref, outputs) <= 1e-12
    assert all(bounds[0] <= n <= bounds[1] for n in norms)  # the check runs inside sched.step()
    probe = batches(3, seed=9)
    outs = train(net, torch.optim.SGD(net.parameters(), lr=0.0), None, probe)
    ref_outs = train(original, torch.optim.SGD(original.parameters(), lr=0.0), None, probe)
    assert max_rel_diff(ref_outs, outs) <= 1e-12


def test_renormalize_bounds_are_validated():
    net = make_net()
    opt = torch.optim.SGD(explr.param_groups(net, SI_NAMES, weight_decay=5e-4), lr=0.1)
    with pytest.raises(ConfigError, match="4\\*low <= high"):
        explr.TEXP(opt, SCHEDULE, renormalize=(1.0, 2.0))


def test_renormalization_carries_a_run_past_the_float64_limit_of_the_phantom():
    """Momentum 0, λη = 0.5: s_t = 0.5^t, so η̃_t = 2^(2t-1) leaves float64 near step 512. With
    renormalization the applied LR is η̃_t·W² (W = product of the factors c): check it in log space."""
    target = torch.nn.functional.normalize(torch.randn(8, dtype=torch.float64), dim=0)

    def run(renormalize, steps=1000):
        w = torch.nn.Parameter(torch.randn(8, dtype=torch.float64))
        opt = torch.optim.SGD([{"params": [w], "weight_decay": 0.0, "explr_si": True, "explr_weight_decay": 0.5}],
                              lr=1.0)
        sched = explr.TEXP(opt, lambda i: 1.0, renormalize=renormalize)
        for _ in range(steps):
            opt.zero_grad()
            ((w / w.norm() - target) ** 2).sum().backward()  # invariant to the scale of w
            opt.step()
            sched.step()
            t = sched.last_epoch + 1  # the step this LR is for
            log_lr = math.log(opt.param_groups[0]["lr"]) - 2 * math.log(sched.weight_factor)
            assert log_lr == pytest.approx((2 * t - 1) * math.log(2.0), rel=1e-12)
        return w, sched

    with pytest.raises(ConfigError, match="no longer fits float64"):
        run(None)
    w, sched = run((0.25, 4.0))
    assert 0.25 <= w.norm().item() <= 4.0 and sched.renormalizations > 100
    assert math.isfinite(w.norm().item())


WARMUP_STEP = LRSchedule(0.1, 80, milestones=(30, 60), warmup_iters=10, warmup_factor=0.1)


@pytest.mark.parametrize("stop", [5, 29, 30], ids=["mid-warmup", "before-milestone", "at-milestone"])
@pytest.mark.parametrize("schedule", [WARMUP_STEP, lambda o: torch.optim.lr_scheduler.LambdaLR(
    o, lambda i: WARMUP_STEP.lr_at(i) / 0.1)], ids=["LRSchedule", "torch-factory"])
def test_state_dict_resume_mid_warmup_and_across_a_milestone(schedule, stop):
    data = batches(45)
    net = make_net()
    whole = train(net, *build(net, schedule), data)
    net = make_net()
    opt, sched = build(net, schedule)
    first = train(net, opt, sched, data[:stop])
    saved = roundtrip({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()})
    fresh = make_net(seed=9)
    fresh.load_state_dict(saved["model"])
    opt2, sched2 = build(fresh, schedule)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    assert all(torch.equal(a, b) for a, b in zip(whole, first + train(fresh, opt2, sched2, data[stop:])))


def _saved_after(steps, schedule=SCHEDULE):
    net = make_net()
    opt, sched = build(net, schedule)
    train(net, opt, sched, batches(steps))
    return roundtrip(sched.state_dict())


def _lrs(opt):
    return [(g["lr"], g.get("initial_lr")) for g in opt.param_groups]


@pytest.mark.parametrize("make_other, message", [
    (lambda: build(make_net(), LRSchedule(0.1, 80, milestones=(31, 60))), "another LR schedule"),
    (lambda: build(make_net(), LRSchedule(0.2, 80, milestones=(30, 60))), "another LR schedule"),
    (lambda: _other_momentum(), "SI phantom"),
    (lambda: build(make_net(), FACTORY), None),  # the same LRs through a factory: the same run
    (lambda: _other_split(), "param group"),
], ids=["milestone-moved", "other-base-lr", "other-momentum", "same-schedule-as-factory", "other-model-split"])
def test_a_checkpoint_of_another_run_is_refused_in_one_line_and_nothing_applied(make_other, message):
    saved = _saved_after(35)
    opt, sched = make_other()
    before, state_before = _lrs(opt), sched.state_dict()
    if message is None:
        sched.load_state_dict(saved)
        assert sched.last_epoch == 35
        return
    with pytest.raises(ConfigError, match=message) as err:
        sched.load_state_dict(saved)
    assert "\n" not in str(err.value)
    assert _lrs(opt) == before and sched.state_dict() == state_before


def _other_split():
    net = make_net()
    opt = torch.optim.SGD(explr.param_groups(net, SI_NAMES[1:], weight_decay=5e-4), lr=0.1, momentum=0.9,
                          dampening=0.1)
    return opt, explr.TEXP(opt, SCHEDULE)


def _other_momentum():
    opt = torch.optim.SGD(explr.param_groups(make_net(), SI_NAMES, weight_decay=5e-4), lr=0.1, momentum=0.8,
                          dampening=0.1)
    return opt, explr.TEXP(opt, SCHEDULE)
