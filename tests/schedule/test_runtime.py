"""explr.TEXP as a torch LR scheduler: LRs, validation, nothing half-applied."""
import warnings

import pytest
import torch
from torch.optim.lr_scheduler import LRScheduler, MultiStepLR

import explr
from explr.errors import ConfigError, UnsupportedError
from explr.lr_schedule import LRSchedule
from explr.schedule.phantom import SGDHyper, converted_lrs
from tests.schedule.nets import SI_NAMES, make_net

SCHEDULE = LRSchedule(0.1, 300, milestones=(100, 200))


def sgd(net, **kw):
    hyper = {"lr": 0.1, "momentum": 0.9, **kw}
    return torch.optim.SGD(explr.param_groups(net, SI_NAMES, weight_decay=5e-4, no_decay_norm_bias=True), **hyper)


def lrs_by_group(opt, sched, n):
    """LR of each group used by optimizer steps 1..n."""
    seen = []
    for _ in range(n):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return list(zip(*seen))


@pytest.mark.parametrize("schedule", [SCHEDULE, SCHEDULE.lr_at, lambda opt: MultiStepLR(opt, [100, 200], 0.1)],
                         ids=["LRSchedule", "function", "torch-factory"])
def test_stepping_n_times_equals_the_engine(schedule):
    opt = sgd(make_net())
    sched = explr.TEXP(opt, schedule)
    assert isinstance(sched, LRScheduler)
    got = lrs_by_group(opt, sched, 300)
    for group, lrs in zip(opt.param_groups, got):
        if group["explr_si"]:
            hyper = SGDHyper(0.9, 0.0, group["explr_weight_decay"])
            expected = [lr for lr, _ in converted_lrs(SCHEDULE.lr_at, hyper, 300)]
        else:
            expected = [SCHEDULE.lr_at(i) for i in range(300)]
        assert list(lrs) == pytest.approx(expected, rel=1e-14, abs=0)
    # after 300 steps the scheduler has already prepared step 301
    s_301 = list(converted_lrs(SCHEDULE.lr_at, SGDHyper(0.9, 0, 5e-4), 301))[-1][1]
    assert sched.scales == [pytest.approx(s_301, rel=1e-14), 1.0]  # no-decay SI params: s = 1


def test_torch_factory_keeps_per_group_initial_lrs():
    net = make_net()
    groups = explr.param_groups(net, SI_NAMES, weight_decay=5e-4, momentum=0.9)
    head = next(k for k, g in enumerate(groups) if "head.weight" in g["param_names"])
    groups[head]["lr"] = 0.05  # the head on its own base LR
    opt = torch.optim.SGD(groups, lr=0.1)
    sched = explr.TEXP(opt, lambda o: MultiStepLR(o, [3], 0.1))
    lrs = lrs_by_group(opt, sched, 5)
    assert lrs[head] == pytest.approx([0.05, 0.05, 0.05, 0.005, 0.005], rel=1e-15)


def test_per_distinct_hyperparameters_one_phantom():
    net = make_net()
    groups = explr.param_groups(net, SI_NAMES, weight_decay=5e-4, momentum=0.9)
    si = next(g for g in groups if g["explr_si"])
    half = len(si["params"]) // 2
    extra = {**si, "params": si["params"][:half], "param_names": si["param_names"][:half], "dampening": 0.3}
    si["params"], si["param_names"] = si["params"][half:], si["param_names"][half:]
    opt = torch.optim.SGD(groups + [extra], lr=0.1)
    sched = explr.TEXP(opt, SCHEDULE)
    lrs_by_group(opt, sched, 3)  # dampening acts from the second step on
    assert len(sched.scales) == 2 and sched.scales[0] != sched.scales[1]


def assert_untouched(opt):
    assert all("initial_lr" not in g for g in opt.param_groups)
    assert not hasattr(opt.step, "_wrapped_by_lr_sched")


@pytest.mark.parametrize("make_opt, message", [
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), "Nesterov"),
    (lambda p: torch.optim.Adam(p, lr=1e-3), "Adam"),
    (lambda p: torch.optim.AdamW(p, lr=1e-3), "AdamW"),
])
def test_exact_mode_refuses_without_touching_the_optimizer(make_opt, message):
    opt = make_opt(explr.param_groups(make_net(), SI_NAMES, weight_decay=5e-4))
    with pytest.raises(UnsupportedError, match=message) as err:
        explr.TEXP(opt, SCHEDULE)
    assert "approximate=True" in str(err.value) and "\n" not in str(err.value)
    assert_untouched(opt)


def test_unknown_optimizer_is_refused_even_when_approximate():
    opt = torch.optim.LBFGS(make_net().parameters())
    with pytest.raises(UnsupportedError, match="LBFGS"):
        explr.TEXP(opt, SCHEDULE, approximate=True)


def test_approximate_adamw_warns_and_uses_decoupled_scale():
    opt = torch.optim.AdamW(explr.param_groups(make_net(), SI_NAMES, weight_decay=0.05), lr=1e-3)
    with pytest.warns(UserWarning, match="moment estimates"):
        sched = explr.TEXP(opt, lambda i: 1e-3, approximate=True)
    for _ in range(10):
        opt.step()
        sched.step()
    si_lr = next(g["lr"] for g in opt.param_groups if g["explr_si"])
    assert si_lr == pytest.approx(1e-3 / (1 - 1e-3 * 0.05) ** 11, rel=1e-12)


def test_si_group_with_weight_decay_is_rejected():
    groups = explr.param_groups(make_net(), SI_NAMES, weight_decay=5e-4)
    next(g for g in groups if g["explr_si"])["weight_decay"] = 5e-4
    with pytest.raises(ConfigError, match="explr_weight_decay"):
        explr.TEXP(torch.optim.SGD(groups, lr=0.1), SCHEDULE)


@pytest.mark.parametrize("schedule, message", [
    (LRSchedule(0.1, 100, milestones=(50, 20)), "strictly increasing"),
    (LRSchedule(-0.1, 100), "lr=-0.1"),
    (lambda i: "fast", "called with an optimizer, returned str"),
    (lambda i: -0.1 if i == 0 else 0.1, "schedule\\(0\\) returned -0.1"),
    (lambda o: None, "called with an optimizer, returned NoneType"),
    (lambda o: o, "called with an optimizer, returned SGD"),
    (lambda o: torch.optim.lr_scheduler.StepLR(o), "neither a factory .*StepLR.* nor an LR function"),
    (42, "int"),
    (lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt), "ReduceLROnPlateau"),
])
def test_bad_schedules_name_the_problem(schedule, message):
    opt = sgd(make_net())
    with pytest.raises(ConfigError, match=message):
        explr.TEXP(opt, schedule)
    assert all("initial_lr" not in g for g in opt.param_groups)


def test_momentum_cycling_scheduler_is_refused():
    opt = sgd(make_net())
    factory = lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=50)  # noqa: E731
    with pytest.raises(UnsupportedError, match="cycle_momentum"):
        sched = explr.TEXP(opt, factory)
        for _ in range(3):
            opt.step()
            sched.step()


def test_no_si_group_warns():
    opt = torch.optim.SGD(make_net().parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="no param group is tagged"):
        explr.TEXP(opt, SCHEDULE)


def test_weight_decay_too_large_for_any_equivalent_is_a_clear_error():
    groups = explr.param_groups(make_net(), SI_NAMES, weight_decay=20.0)
    opt = torch.optim.SGD(groups, lr=0.1)
    with pytest.raises(ConfigError, match="shrinks weights through zero"):
        explr.TEXP(opt, lambda i: 0.1)


def test_approximate_has_no_effect_on_exact_setups():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = explr.TEXP(sgd(make_net()), SCHEDULE, approximate=True)
    assert a.get_last_lr() == explr.TEXP(sgd(make_net()), SCHEDULE).get_last_lr()
