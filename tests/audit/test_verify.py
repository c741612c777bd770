"""verify_report: confirms correct reports in a handful of passes, names the culprit of a wrong one."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from explr.audit.numeric import TOLERANCE, ScalingProbe, is_scale_invariant, max_rel_error
from explr.audit.verify import _bisect, _Claim, verify_report
from explr.audit_report import AuditReport, Group, HandWrittenEps, ParamVerdict
from tests.audit.expectations import EXPECTED, groups, load_fixture


def make_report(model: nn.Module, group_sets, individually=()) -> AuditReport:
    """A report claiming `group_sets` (iterables of names) as the SI groups, ids 0, 1, ..."""
    group_of = {n: gid for gid, g in enumerate(group_sets) for n in g}
    params = [ParamVerdict(n, tuple(p.shape), p.numel(), n in group_of, n in set(individually),
                           group_of.get(n), "claimed by the test") for n, p in model.named_parameters()]
    return AuditReport("test", params, [Group(gid, tuple(sorted(g)), ()) for gid, g in enumerate(group_sets)])


def expected_report(name: str):
    model, inputs = load_fixture(name)
    exp = EXPECTED[name]
    return model, inputs, make_report(model, groups(exp), exp["individually_si"])


@pytest.fixture
def count_forwards(monkeypatch):
    calls = []
    original = ScalingProbe._forward
    monkeypatch.setattr(ScalingProbe, "_forward", lambda self: calls.append(1) or original(self))
    return calls


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n != "no_norm"))
def test_correct_report_passes_in_a_handful_of_forwards(name, count_forwards):
    model, inputs, report = expected_report(name)
    verification, findings = verify_report(model, inputs, report)
    assert (verification.status, findings) == ("passed", [])
    assert verification.max_rel_error <= TOLERANCE
    assert len(count_forwards) <= 3  # baseline and 2 draws (the last also scales individuals)


def test_nothing_claimed_is_skipped_not_passed():
    model, inputs, report = expected_report("no_norm")
    verification, findings = verify_report(model, inputs, report)
    assert verification.status == "skipped" and "nothing to confirm" in verification.detail and findings == []


def test_head_wrongly_marked_si_fails_naming_its_group(count_forwards):
    model, inputs = load_fixture("preresnet32")
    true_groups = groups(EXPECTED["preresnet32"])
    report = make_report(model, [*true_groups, {"fc.weight"}], EXPECTED["preresnet32"]["individually_si"])
    verification, findings = verify_report(model, inputs, report)
    assert verification.status == "failed" and verification.max_rel_error > 1e-3
    assert [f.code for f in findings] == ["EXP109"] and findings[0].severity.value == "error"
    assert f"group {len(true_groups)} (fc.weight)" in findings[0].message and findings[0].module == "fc"
    assert len(count_forwards) < len(true_groups)  # bisection, not one pass per group


def test_head_merged_into_a_true_group_blames_that_group():
    model, inputs = load_fixture("resnet_cifar")
    true_groups = groups(EXPECTED["resnet_cifar"])
    culprit = max(range(len(true_groups)), key=lambda i: len(true_groups[i]))  # the stage-1 stream group
    wrong = [g | {"fc.bias"} if i == culprit else g for i, g in enumerate(true_groups)]
    verification, findings = verify_report(model, inputs, make_report(model, wrong))
    assert verification.status == "failed"
    assert len(findings) == 1 and findings[0].message.startswith(f"group {culprit} (")
    assert "fc.bias" in findings[0].message


def test_zero_bias_would_pass_trivially_without_perturbation():
    model, inputs = load_fixture("linear_bias_ln")
    with torch.no_grad():
        model.fc1.bias.zero_()  # a fresh zero bias: LN(c·Wx + 0) = LN(Wx)
    assert ScalingProbe(model, inputs, perturb=False).is_invariant(["fc1.weight"])
    report = make_report(model, [{"fc1.weight"}], individually={"fc1.weight"})
    verification, findings = verify_report(model, inputs, report)
    assert verification.status == "failed"
    assert len(findings) == 1 and "fc1.weight" in findings[0].message and findings[0].module == "fc1"


def test_wrong_individual_claim_inside_a_true_group_is_named():
    model, inputs = load_fixture("groupnorm_net")
    exp = EXPECTED["groupnorm_net"]
    report = make_report(model, groups(exp), individually={*exp["individually_si"], "gn1.weight"})
    verification, findings = verify_report(model, inputs, report)
    assert verification.status == "failed"
    assert findings[0].message.split(" is claimed")[0] == "parameter gn1.weight"
    # withdrawn, and gn1.bias (SI only together with it) is not left claimed on its own
    assert not report.by_name("gn1.weight").si and not report.by_name("gn1.bias").si
    assert report.by_name("gn1.weight").reason.startswith("refuted numerically: scaling parameter gn1.weight by ")


@pytest.mark.parametrize("name, param", [("resnet_cifar", "conv1.weight"),
                                         ("weight_standardized", "std_conv1.weight")])
def test_tiny_eps_reaches_norm_modules_and_functional_calls(name, param):
    model, inputs = load_fixture(name)
    assert ScalingProbe(model, inputs, tiny_eps=False).scaling_error([param]) > TOLERANCE
    assert ScalingProbe(model, inputs).scaling_error([param]) <= 1e-13


def test_is_scale_invariant_helper():
    model, inputs = load_fixture("bn_affine_relu_conv")
    assert is_scale_invariant(model, inputs, ["bn0.weight", "bn0.bias"])[0]
    invariant, err = is_scale_invariant(model, inputs, ["bn0.weight"])
    assert not invariant and err > 1e-3


def test_meta_device_is_skipped():
    with torch.device("meta"):
        model = load_fixture("resnet_cifar")[0].__class__()
    report = make_report(model, [{"conv1.weight"}])
    verification, findings = verify_report(model, (torch.empty(2, 3, 8, 8, device="meta"),), report)
    assert verification.status == "skipped" and verification.detail.startswith("meta device") and findings == []


class _Stateful(nn.Module):
    """Output drifts with a Python counter: nothing can be confirmed by comparing reruns."""

    def __init__(self):
        super().__init__()
        self.lin, self.bn, self.calls = nn.Linear(4, 4, bias=False), nn.BatchNorm1d(4), 0

    def forward(self, x):
        self.calls += 1
        return self.bn(self.lin(x)) * self.calls


def test_unreproducible_model_is_skipped():
    model = _Stateful()
    verification, findings = verify_report(model, (torch.randn(8, 4),), make_report(model, [{"lin.weight"}]))
    assert verification.status == "skipped" and "not reproducible" in verification.detail and findings == []


class _DictOut(nn.Module):
    def __init__(self, expose_raw: bool):
        super().__init__()
        self.expose_raw = expose_raw
        self.conv, self.bn, self.fc = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Linear(4, 2)

    def forward(self, x):
        raw = self.conv(x)
        feat = torch.relu(self.bn(raw)).mean(dim=(2, 3))
        aux = (feat, raw.mean()) if self.expose_raw else (feat,)
        return {"logits": self.fc(feat), "aux": aux}


@pytest.mark.parametrize("expose_raw, status", [(False, "passed"), (True, "failed")])
def test_dict_and_tuple_outputs_are_compared_leaf_by_leaf(expose_raw, status):
    model = _DictOut(expose_raw)  # the un-normalized conv output, when exposed, is not invariant
    verification, _ = verify_report(model, (torch.randn(4, 3, 6, 6),), make_report(model, [{"conv.weight"}]))
    assert verification.status == status


def test_max_rel_error_handles_structure():
    a = {"x": torch.ones(3), "y": (torch.zeros(2), torch.tensor([1, 2]))}
    b = {"x": torch.ones(3) * 1.5, "y": (torch.zeros(2), torch.tensor([1, 2]))}
    assert max_rel_error(a, a) == 0.0 and max_rel_error(a, b) == pytest.approx(0.5)
    assert max_rel_error(a, {"x": torch.ones(3)}) == float("inf")
    assert max_rel_error(torch.tensor([1, 2]), torch.tensor([1, 3])) == float("inf")


def test_unknown_parameter_in_report_fails():
    model, inputs = load_fixture("ln_mlp")
    verification, findings = verify_report(model, inputs, make_report(model, [{"fc1.weight"}, {"gone.weight"}]))
    assert verification.status == "failed" and "gone.weight" in findings[0].message


def test_model_and_caller_rng_are_left_untouched():
    model, inputs, report = expected_report("vgg11_bn")  # dropout: needs the re-seeded forwards
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    assert verify_report(model, inputs, report)[0].status == "passed"
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(p, before[n]) and p.dtype == torch.float32 for n, p in model.named_parameters())


def test_bisect_reports_claims_that_fail_only_together():
    a, b, c = (_Claim(f"group {i}", (f"p{i}",)) for i in range(3))
    together = _bisect(lambda part: 1.0 if {a, b} <= set(part) else 0.0, [a, c, b], 1.0, TOLERANCE)
    assert together == [([a, c, b], 1.0)]
    assert _bisect(lambda part: 0.5 if c in part else 0.0, [a, b, c], 0.5, TOLERANCE) == [([c], 0.5)]


class _Float32Only(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.bn = nn.Linear(4, 4, bias=False), nn.BatchNorm1d(4)
        self.register_buffer("mix", torch.eye(4, dtype=torch.float32))

    def forward(self, x):
        return self.bn(self.lin(x)) @ self.mix.float()  # float64 @ float32: the copy cannot run


def test_model_that_cannot_run_in_float64_is_skipped_with_its_error():
    model = _Float32Only()
    verification, findings = verify_report(model, (torch.randn(8, 4),), make_report(model, [{"lin.weight"}]))
    assert verification.status == "skipped" and verification.detail.startswith("the float64 copy failed to run")
    assert findings == []


class _LogOfParam(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.bn = nn.Linear(4, 4, bias=False), nn.BatchNorm1d(4)
        self.temperature = nn.Parameter(torch.full((1,), -5.0))  # stays negative after perturbation

    def forward(self, x):
        return self.bn(self.lin(x)) * self.temperature.log()


def test_non_finite_output_is_skipped():
    model = _LogOfParam()
    verification, _ = verify_report(model, (torch.randn(8, 4),), make_report(model, [{"lin.weight"}]))
    assert verification.status == "skipped" and "NaN or inf" in verification.detail


class _ComplexWeight(nn.Module):
    """|x W| with a complex W, normalized: W is SI; its imaginary part matters to the output."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 4, dtype=torch.complex64))
        self.bn = nn.BatchNorm1d(4, affine=False)

    def forward(self, x):
        return self.bn((x.to(self.w.dtype) @ self.w).abs())


def test_complex_parameters_are_confirmed_in_complex128():
    model, x = _ComplexWeight(), torch.randn(8, 4)
    probe = ScalingProbe(model, (x,))
    w = probe.params["w"]
    assert w.dtype == torch.complex128 and float(w.detach().imag.abs().max()) > 0.1
    with torch.no_grad():  # the copy keeps the imaginary part: dropping it changes the output
        probe.params["w"].imag.zero_()
    assert max_rel_error(probe.baseline, probe._forward()) > 1e-3
    report = make_report(model, [{"w"}], individually={"w"})
    assert verify_report(model, (x,), report)[0].status == "passed"


class _HandWrittenNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)

    def forward(self, x):
        z = self.conv(x)
        return (z - z.mean((0, 2, 3), keepdim=True)) / torch.sqrt(z.var((0, 2, 3), keepdim=True) + 1e-5)


def _claims_hand_written_eps(model):
    report = make_report(model, [{"conv.weight"}], individually={"conv.weight"})
    report.hand_written_eps = [HandWrittenEps(1e-5, "", ("conv.weight",))]
    return report


def test_hand_written_eps_is_neutralized_and_measured_like_a_norm_eps():
    model, x = _HandWrittenNorm(), torch.randn(4, 3, 6, 6)
    assert ScalingProbe(model, (x,)).scaling_error(["conv.weight"]) > 1e-7  # the literal left alone
    probe = ScalingProbe(model, (x,), eps_literals=[1e-5])
    assert probe.scaling_error(["conv.weight"]) <= 1e-13
    with torch.no_grad():
        z = probe.model.conv(probe.inputs[0])
    assert probe.eps_ratios[1e-5] == pytest.approx(1e-5 / float(z.var((0, 2, 3)).mean()), rel=1e-6)
    report = _claims_hand_written_eps(model)
    assert verify_report(model, (x,), report)[0].status == "passed" and report.by_name("conv.weight").si


def test_claims_relying_on_an_eps_that_is_not_small_are_withdrawn():
    model, x = _HandWrittenNorm(), 1e-3 * torch.randn(4, 3, 6, 6)  # eps/var ~ 10 in the copy
    report = _claims_hand_written_eps(model)
    verification, _ = verify_report(model, (x,), report)
    verdict = report.by_name("conv.weight")
    assert verification.status == "failed" and not verdict.si
    assert verdict.reason.startswith("refuted numerically: the hand-written eps 1e-05 in the model is ")
