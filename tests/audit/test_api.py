"""explr.audit.api.audit(): the library entry point."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explr.audit.api import audit
from explr.errors import LoadError, TraceError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn(self.conv(x))))))
        return self.fc(x.mean((2, 3)))


X = (torch.randn(4, 3, 6, 6),)


def test_verdicts_reasons_groups_and_facts():
    report = audit(Net(), X, model_name="net")
    v = {p.name: p for p in report.parameters}
    assert list(v) == [n for n, _ in Net().named_parameters()]
    assert v["conv.weight"].individually_si and v["conv.weight"].reason == "normalized by bn"
    assert v["conv.bias"].si and "inert" in v["conv.bias"].reason and report.inert == ["conv.bias"]
    assert v["bn.weight"].si and not v["bn.weight"].individually_si
    assert v["bn.weight"].group == v["bn.bias"].group
    assert v["bn.weight"].reason.startswith("only jointly:") and "bn.bias" in v["bn.weight"].reason
    assert not v["fc.weight"].si and v["fc.weight"].reason == "model output"
    assert {"bn2.weight", "fc.weight", "fc.bias"} <= set(report.output_params)
    assert [n.module for n in report.normalizers] == ["bn", "bn2"]
    assert report.normalizers[0].affine == ("bn.weight", "bn.bias") and report.normalizers[0].input_var > 0
    group = next(g for g in report.groups if "bn.weight" in g.members)
    assert set(group.members) == {"bn.weight", "bn.bias"} and "bn2" in group.normalizers
    assert report.module_locations["conv2"].path.endswith("conv.py")
    assert report.module_locations[""].path == __file__
    assert report.verification.status == "passed"


def test_the_users_model_is_not_touched():
    model = Net().eval()
    model.bn2.train()
    before = {k: t.clone() for k, t in model.state_dict().items()}
    audit(model, X)
    assert not model.training and model.bn2.training and not model.bn.training
    assert all(torch.equal(before[k], t) for k, t in model.state_dict().items())


def test_meta_device_models_are_analysed_and_verification_is_skipped():
    with torch.device("meta"):
        model = Net()
    report = audit(model, X)
    real = audit(Net(), X, verify=False)
    assert [(p.name, p.si, p.individually_si, p.group) for p in report.parameters] == \
           [(p.name, p.si, p.individually_si, p.group) for p in real.parameters]
    assert report.verification.status == "skipped" and "meta device" in report.verification.detail


def test_rejected_inputs_give_one_line_quoting_the_model():
    with pytest.raises(TraceError) as err:
        audit(Net(), (torch.randn(2, 5, 6, 6),))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("model rejected the example inputs of shape (2, 5, 6, 6): RuntimeError:")
    assert msg.endswith("pass --input-shape (or define example_inputs() in the model file)")


class BrokenForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x) * self.missing_scale  # a bug in the model, not a shape problem


def test_a_model_bug_is_not_blamed_on_the_input_shape():
    with pytest.raises(TraceError) as err:
        audit(BrokenForward(), X)
    msg = str(err.value)
    assert "missing_scale" in msg and "--input-shape" not in msg and "fix the model" in msg


def test_not_a_module_is_a_load_error():
    with pytest.raises(LoadError, match="nn.Module"):
        audit(lambda x: x, X)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Net()
        self.extra = nn.Linear(2, 2)

    def forward(self, x):
        y = self.net(x)
        return self.extra(y) if y.mean() > 0 else y


def test_data_dependent_root_makes_everything_opaque_and_not_si():
    report = audit(Gated(), X, verify=False)
    assert not any(p.si for p in report.parameters)
    assert all(p.reason.startswith("opaque: data-dependent") for p in report.parameters)
    assert [o.module for o in report.opaque] == [""]
    assert list(report.opaque[0].params) == [n for n, _ in Gated().named_parameters()]


def test_meta_models_that_reject_the_inputs_say_so():
    with torch.device("meta"):
        model = Net()
    with pytest.raises(TraceError, match=r"^model rejected the example inputs of shape \(2, 5, 6, 6\)"):
        audit(model, (torch.randn(2, 5, 6, 6),))


def test_meta_models_with_data_dependent_modules_ask_for_a_real_device():
    with torch.device("meta"):
        model = nn.Sequential(Gated())  # the opaque submodule would have to run on meta tensors
    with pytest.raises(TraceError, match="real device"):
        audit(model, X)


def test_preresnet_reasons_name_the_stream_and_the_choice():
    from tests.audit.expectations import load_fixture
    model, inputs = load_fixture("preresnet32")
    v = {p.name: p for p in audit(model, inputs, verify=False).parameters}
    assert v["layer1.0.conv2.weight"].reason.startswith("only jointly: writes the residual stream of layer1 together with")
    assert v["conv1.weight"].group == v["layer1.4.conv2.weight"].group
    assert v["layer2.0.shortcut.weight"].group == v["layer2.4.conv2.weight"].group != v["conv1.weight"].group
    assert v["layer1.0.bn2.weight"].reason.startswith("left out of the maximal set")
    assert v["layer1.0.conv1.weight"].reason == "normalized by layer1.0.bn2"
    assert v["fc.weight"].reason == "model output"


def test_a_normalization_of_weights_is_recorded_as_weight_standardization():
    from tests.audit.expectations import load_fixture
    model, inputs = load_fixture("weight_standardized")
    report = audit(model, inputs, verify=False)
    assert {n.kind for n in report.normalizers} == {"weight_standardization"}
    assert "EXP110" not in {f.code for f in report.findings}  # no running statistics involved


def test_hook_based_weight_norm_is_copied_and_traced_through_its_hook():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nn.Sequential(nn.utils.weight_norm(nn.Linear(4, 4)), nn.ReLU(), nn.Linear(4, 2))
    weight = model[0].weight
    v = {p.name: p for p in audit(model, (torch.randn(3, 4),), verify=False).parameters}
    assert v["0.weight_v"].individually_si and v["0.weight_v"].reason == "normalized by 0"
    assert not v["0.weight_g"].si
    assert model[0].weight is weight  # the user's model is untouched


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
def test_hook_based_weight_norm_is_verified_on_a_private_copy():
    """Old torch.nn.utils.weight_norm keeps a hook-computed `weight` that deepcopy refuses."""
    class WN(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.utils.weight_norm(nn.Linear(4, 3))
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            return self.head(torch.relu(self.fc(x)))

    report = audit(WN(), (torch.randn(4, 4),))
    assert report.verification.status == "passed"
    assert report.by_name("fc.weight_v").individually_si
    assert not report.by_name("fc.weight_g").si
