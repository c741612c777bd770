"""explr.param_groups: SI parameters tagged with weight decay 0, the rest on the original policy."""
import sys
import types

import pytest
import torch

import explr
from explr.audit_report import AuditReport, Group, ParamVerdict
from explr.errors import ExplrError
from explr.plan import DecayPolicy
from tests.schedule.nets import SI_NAMES, make_net


def by_names(groups):
    return {n: g for g in groups for n in g["param_names"]}


def test_si_params_get_zero_decay_and_the_original_in_the_tag():
    net = make_net()
    groups = explr.param_groups(net, SI_NAMES, weight_decay=5e-4, momentum=0.9)
    named = by_names(groups)
    assert set(named) == {n for n, _ in net.named_parameters()}
    for name, group in named.items():
        assert group["momentum"] == 0.9
        if name in SI_NAMES:
            assert (group["explr_si"], group["weight_decay"], group["explr_weight_decay"]) == (True, 0.0, 5e-4)
        else:
            assert (group["explr_si"], group["weight_decay"]) == (False, 5e-4)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    torch.optim.SGD(groups, lr=0.1)  # torch accepts them as they are


def test_no_decay_policy_for_norm_and_bias():
    named = by_names(explr.param_groups(make_net(), SI_NAMES, weight_decay=5e-4, no_decay_norm_bias=True))
    assert named["bn3.weight"]["weight_decay"] == 0.0 and named["head.bias"]["weight_decay"] == 0.0
    assert named["head.weight"]["weight_decay"] == 5e-4
    assert named["bn1.weight"]["explr_weight_decay"] == 0.0 and named["bn1.weight"]["explr_si"]
    assert named["conv.bias"]["explr_weight_decay"] == 0.0 and named["conv.weight"]["explr_weight_decay"] == 5e-4


def test_decay_policy_object():
    named = by_names(explr.param_groups(make_net(), SI_NAMES, no_decay_norm_bias=DecayPolicy(1e-3, norm=0.0)))
    assert named["bn3.bias"]["weight_decay"] == 0.0 and named["head.bias"]["weight_decay"] == 1e-3


def test_unknown_names_are_named():
    with pytest.raises(ExplrError, match="not parameters of the model: fc.weight"):
        explr.param_groups(make_net(), ["stem.weight", "fc.weight"])


def test_bad_si_argument():
    with pytest.raises(ExplrError, match="AuditReport"):
        explr.param_groups(make_net(), 3.5)


def report_for(net, joint):
    verdicts = [ParamVerdict(n, tuple(p.shape), p.numel(), n in SI_NAMES, n not in joint,
                             0 if n in joint else None, "test") for n, p in net.named_parameters()]
    return AuditReport("TinyNet", verdicts, [Group(0, tuple(joint), ("bn1",))])


def test_audit_report_input():
    net = make_net()
    named = by_names(explr.param_groups(net, report_for(net, ("bn1.weight", "bn1.bias")), weight_decay=5e-4))
    assert {n for n, g in named.items() if g["explr_si"]} == set(SI_NAMES)


def test_joint_group_with_mixed_decay_stays_on_the_original_policy():
    """{w, b} is SI only jointly; with bias excluded from decay they would be scaled differently."""
    net = make_net()
    joint = ("conv.weight", "conv.bias")
    with pytest.warns(UserWarning, match="jointly scale-invariant"):
        groups = explr.param_groups(net, report_for(net, joint), weight_decay=5e-4, no_decay_norm_bias=True)
    named = by_names(groups)
    assert not named["conv.weight"]["explr_si"] and not named["conv.bias"]["explr_si"]
    assert named["stem.weight"]["explr_si"]


def test_lock_file_path(monkeypatch, tmp_path):
    checked = []

    class Lock:
        si = ["stem.weight", "conv2.weight"]

        def check_model(self, model):
            checked.append(model)

    fake = types.ModuleType("explr.lock")
    fake.read_lock = lambda path: Lock()
    monkeypatch.setitem(sys.modules, "explr.lock", fake)
    net = make_net()
    named = by_names(explr.param_groups(net, tmp_path / "explr.lock.json", weight_decay=5e-4))
    assert checked == [net]
    assert {n for n, g in named.items() if g["explr_si"]} == {"stem.weight", "conv2.weight"}


def test_rebind_maps_groups_onto_a_wrapped_model_by_name():
    from explr.schedule.groups import rebind

    net = make_net()
    groups = explr.param_groups(net, SI_NAMES, weight_decay=5e-4)
    wrapped = torch.nn.Module()
    wrapped._orig_mod = net  # how torch.compile names the wrapped module
    again = rebind(groups, wrapped)
    assert [[id(p) for p in g["params"]] for g in again] == [[id(p) for p in g["params"]] for g in groups]
    with pytest.raises(ExplrError, match="not found in the wrapped model"):
        rebind(groups, torch.nn.Linear(2, 2))
