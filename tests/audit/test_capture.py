"""Graph capture: shape control flow is followed, data-dependent control flow makes a module opaque."""
from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explr.audit.capture import capture
from explr.errors import TraceError


class ShapeFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = 4
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.layers = nn.ModuleList([nn.Conv2d(4, 4, 1, bias=False) for _ in range(3)])
        self.proj = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        if x.dim() == 4 and x.shape[1] != self.c:
            x = self.stem(x)
        for i in range(len(self.layers)):
            x = F.relu(self.layers[i](x))
        n, c, h, w = x.shape
        rows = [r for r in x]  # iteration over a tensor: its first dim
        torch._assert(x.dim() == 4, "4-d")
        return x.view(n, torch.numel(x) // n) if len(rows) == n else x


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent
            return self.fc(x)
        return -x


class WithBranchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc0 = nn.Linear(4, 4, bias=False)
        self.ln = nn.LayerNorm(4)
        self.gate = Branchy()

    def forward(self, x):
        return self.gate(self.ln(self.fc0(x)))


def _targets(cap):
    return [n.target for n in cap.graph.nodes if n.op == "get_attr"]


def test_shape_control_flow_is_followed_concretely():
    cap = capture(ShapeFlow().train(), (torch.randn(2, 3, 5, 5),))
    assert cap.opaque == [] and cap.root_opaque is None
    assert _targets(cap) == ["stem.weight", "layers.0.weight", "layers.1.weight", "layers.2.weight"]
    out = next(n for n in cap.graph.nodes if n.op == "output").args[0]
    assert tuple(out.meta["val"].shape) == (2, 4 * 5 * 5)
    assert not any(n.target in ("size", "dim", torch.numel) for n in cap.graph.nodes)  # shape queries never enter


def test_data_dependent_submodule_becomes_one_opaque_node_and_the_rest_is_traced():
    cap = capture(WithBranchy().train(), (torch.randn(3, 4),))
    assert [(o.module, "data-dependent" in o.why) for o in cap.opaque] == [("gate", True)]
    ops = [(n.op, n.target) for n in cap.graph.nodes]
    assert ("call_module", "gate") in ops
    assert "gate.fc.weight" not in _targets(cap)  # the partial trace was rolled back
    assert {"fc0.weight", "ln.weight", "ln.bias"} <= set(_targets(cap))


def test_data_dependent_root_forward_makes_the_whole_model_opaque():
    cap = capture(Branchy().train(), (torch.randn(3, 4),))
    assert cap.root_opaque is not None and "data-dependent" in cap.root_opaque


def test_batch_norm_is_seen_as_a_train_mode_normalization():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    cap = capture(model, (torch.randn(2, 3, 4, 4),))
    bn = next(n for n in cap.graph.nodes if getattr(n.target, "__name__", "") == "batch_norm")
    assert bn.kwargs.get("training", bn.args[5] if len(bn.args) > 5 else None) is True
    assert list(bn.meta["nn_module_stack"].values())[-1][0] == "1"


def test_parametrizations_are_traced_through():
    model = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3))
    cap = capture(model.train(), (torch.randn(2, 4),))
    names = [getattr(n.target, "__name__", n.target) for n in cap.graph.nodes]
    assert "_weight_norm" in names
    assert {"parametrizations.weight.original0", "parametrizations.weight.original1"} <= set(_targets(cap))


def test_meta_device_capture_allocates_nothing_and_meta_opaque_is_an_error():
    model = ShapeFlow().to("meta").train()
    cap = capture(model, (torch.empty(2, 3, 5, 5, device="meta"),))
    assert all(n.meta["val"].is_meta for n in cap.graph.nodes if isinstance(n.meta.get("val"), torch.Tensor))
    with pytest.raises(TraceError, match="gate cannot run"):
        capture(WithBranchy().to("meta").train(), (torch.empty(3, 4, device="meta"),))


# -- torch.fx.wrap'd functions are seen through; only a data-dependent body stays one opaque call

def wrapped_scale(x, layer):
    return layer(x) * 0.5


torch.fx.wrap("wrapped_scale")


def wrapped_branchy(x, layer):
    if x.sum() > 0:  # data-dependent
        return layer(x)
    return x


torch.fx.wrap("wrapped_branchy")


def wrapped_outer(x, layer):
    y = wrapped_branchy(x, layer)  # an opaque call nested in a traced body
    y[:, 0] = 0.0  # item assignment on a traced value
    return y + x


torch.fx.wrap("wrapped_outer")


class UsesWrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc0 = nn.Linear(4, 4)
        self.fc1 = nn.Linear(4, 4)

    def forward(self, x):
        return wrapped_outer(wrapped_scale(x, self.fc0), self.fc1)


def _functions(cap):
    return [n for n in cap.graph.nodes if n.op == "call_function"]


def test_wrapped_functions_are_traced_inline_and_a_data_dependent_one_stays_opaque():
    from explr.audit.capture import OPAQUE_FUNCTION
    cap = capture(UsesWrapped().train(), (torch.randn(3, 4),))
    targets = [n.target for n in _functions(cap)]
    assert wrapped_scale not in targets and wrapped_outer not in targets  # their bodies are in the graph
    assert F.linear in targets and operator.setitem in targets
    opaque = [n for n in _functions(cap) if OPAQUE_FUNCTION in n.meta]
    assert [n.target for n in opaque] == [wrapped_branchy]
    assert opaque[0].meta[OPAQUE_FUNCTION] == f"{__name__}.wrapped_branchy"
    assert [(o.module, o.function, o.params) for o in cap.opaque] == \
        [("", f"{__name__}.wrapped_branchy", ("fc1.weight", "fc1.bias"))]  # read through the module argument
    assert "fc1.weight" not in _targets(cap) and "fc0.weight" in _targets(cap)
    parts = cap.opaque_parts()
    assert [(p.module, p.params) for p in parts] == [("", ("fc1.weight", "fc1.bias"))]
    assert parts[0].why.startswith(f"{__name__}.wrapped_branchy(): data-dependent")


def test_an_opaque_call_forces_its_inputs_to_degree_0_and_names_itself():
    from explr.audit.api import audit
    report = audit(UsesWrapped(), (torch.randn(3, 4),), verify=False)
    v = {p.name: p for p in report.parameters}
    assert not v["fc0.weight"].si and v["fc0.weight"].reason == \
        f"input of the opaque call {__name__}.wrapped_branchy()"
    assert v["fc1.weight"].reason.startswith(f"opaque: {__name__}.wrapped_branchy(): data-dependent")


class SharedInsideOpaque(nn.Module):
    """A submodule registered first at the root, then twice inside a data-dependent module."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.gate = Branchy()
        self.gate.a = self.gate.b = self.shared

    def forward(self, x):
        return self.gate(x)


def test_a_submodule_shared_under_several_names_is_named_as_the_root_names_it():
    cap = capture(SharedInsideOpaque().train(), (torch.randn(3, 4),))
    assert [(p.module, p.params) for p in cap.opaque_parts()] == \
        [("gate", ("gate.fc.weight", "gate.fc.bias", "shared.weight", "shared.bias"))]
    from explr.audit.api import audit
    report = audit(SharedInsideOpaque(), (torch.randn(3, 4),), verify=False)  # was a KeyError
    assert [p.name for p in report.parameters] == ["shared.weight", "shared.bias", "gate.fc.weight", "gate.fc.bias"]
    assert not any(p.si for p in report.parameters)
