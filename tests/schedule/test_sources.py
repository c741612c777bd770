"""Every step-only torch scheduler works as a TEXP factory: the trajectory equals the weight-decay run's."""
import pytest
import torch
from torch.optim import lr_scheduler as L

import explr
from explr.errors import ConfigError, UnsupportedError
from explr.schedule.sources import RecordedTorchLR, UniformLR, lr_source
from tests.schedule.nets import SI_NAMES, batches, max_rel_diff, train, twins

STEPS, LR, WD = 45, 0.1, 5e-4

FACTORIES = {
    "StepLR": lambda o: L.StepLR(o, step_size=10, gamma=0.5),
    "MultiStepLR": lambda o: L.MultiStepLR(o, milestones=[10, 25], gamma=0.1),
    "ExponentialLR": lambda o: L.ExponentialLR(o, gamma=0.97),
    "CosineAnnealingLR": lambda o: L.CosineAnnealingLR(o, T_max=STEPS, eta_min=1e-3),
    "CosineAnnealingWarmRestarts": lambda o: L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3),
    "LinearLR": lambda o: L.LinearLR(o, start_factor=0.1, total_iters=10),
    "ConstantLR": lambda o: L.ConstantLR(o, factor=0.5, total_iters=8),
    "LambdaLR": lambda o: L.LambdaLR(o, lambda i: 0.95 ** i),
    "MultiplicativeLR": lambda o: L.MultiplicativeLR(o, lambda i: 0.98),
    "PolynomialLR": lambda o: L.PolynomialLR(o, total_iters=STEPS + 5, power=2.0),
    "SequentialLR": lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5),
                                                 L.CosineAnnealingLR(o, T_max=STEPS - 5)], milestones=[5]),
    "ChainedScheduler": lambda o: L.ChainedScheduler([L.LinearLR(o, start_factor=0.1, total_iters=5),
                                                      L.ExponentialLR(o, gamma=0.98)], optimizer=o),
    "OneCycleLR": lambda o: L.OneCycleLR(o, max_lr=0.2, total_steps=STEPS, cycle_momentum=False),
    "CyclicLR": lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=8, cycle_momentum=False),
}


def weight_decay_run(net, factory, data):
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
    sched = factory(opt)
    lrs = []
    outputs = train(net, opt, _recording(sched, opt, lrs), data)
    return outputs, lrs


class _recording:
    """Steps a scheduler and records the LR each optimizer step used."""

    def __init__(self, sched, opt, lrs):
        self.sched, self.opt, self.lrs = sched, opt, lrs
        lrs.append(opt.param_groups[0]["lr"])

    def step(self):
        self.sched.step()
        self.lrs.append(self.opt.param_groups[0]["lr"])


@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_step_only_torch_scheduler_works_as_a_factory(name):
    factory = FACTORIES[name]
    original, converted = twins(eps=1e-20)
    data = batches(STEPS)
    ref, lrs = weight_decay_run(original, factory, data)
    assert len(set(lrs)) > 1, "the schedule must actually move the LR, or the test proves little"
    opt = torch.optim.SGD(explr.param_groups(converted, SI_NAMES, weight_decay=WD), lr=LR, momentum=0.9)
    sched = explr.TEXP(opt, factory)
    assert isinstance(sched._source, RecordedTorchLR)
    assert max_rel_diff(ref, train(converted, opt, sched, data)) <= 1e-12
    other = next(g for g in opt.param_groups if not g["explr_si"])
    assert other["lr"] == pytest.approx(lrs[-1], rel=1e-14)  # non-SI groups follow the torch schedule itself


def _one_group_opt():
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)


def test_an_lr_function_is_never_given_an_optimizer_when_annotated():
    seen = []

    def lr_at(i: int) -> float:
        seen.append(i)
        return 0.1

    assert isinstance(lr_source(lr_at, _one_group_opt()), UniformLR)
    assert seen == [0]


def test_an_annotated_factory_is_never_given_an_iteration():
    seen = []

    def factory(opt: torch.optim.Optimizer):
        seen.append(type(opt).__name__)
        return L.StepLR(opt, 5)

    assert isinstance(lr_source(factory, _one_group_opt()), RecordedTorchLR)
    assert seen == ["SGD"]


def test_an_unannotated_factory_is_called_once_with_an_optimizer_never_with_0():
    seen = []

    def factory(o):
        seen.append(o)
        return L.LambdaLR(o, lambda i: 0.9 ** i)

    lr_source(factory, _one_group_opt())
    assert len(seen) == 1 and isinstance(seen[0], torch.optim.Optimizer)


@pytest.mark.parametrize("factory", [
    lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.2),  # cycle_momentum=True by default
    lambda o: L.OneCycleLR(o, max_lr=0.2, total_steps=50),
    lambda o: L.SequentialLR(o, [L.ConstantLR(o, 0.5, 2), L.OneCycleLR(o, max_lr=0.2, total_steps=50)], [2]),
], ids=["CyclicLR", "OneCycleLR", "inside-SequentialLR"])
def test_a_scheduler_that_changes_momentum_is_refused_before_anything_is_applied(factory):
    groups = explr.param_groups(twins()[0], SI_NAMES, weight_decay=WD)
    opt = torch.optim.SGD(groups, lr=LR, momentum=0.9)
    before = [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups]
    with pytest.raises(UnsupportedError, match="cycle_momentum=False") as err:
        explr.TEXP(opt, factory)
    assert "\n" not in str(err.value)
    assert [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups] == before
    assert not hasattr(opt.step, "_wrapped_by_lr_sched") and not opt._optimizer_step_post_hooks


def test_a_factory_returning_a_non_scheduler_is_one_line_and_changes_nothing():
    opt = _one_group_opt()
    with pytest.raises(ConfigError, match="returned dict") as err:
        explr.TEXP(opt, lambda o: {"lr": 0.1})
    assert "\n" not in str(err.value) and "initial_lr" not in opt.param_groups[0]
