"""Each model rule: one report that triggers it and one that does not (reports built directly)."""
import pytest

from explr.audit_report import AuditReport, Group, Normalizer, OpaquePart, ParamVerdict, UnknownOp
from explr.findings import Location, Severity
from explr.rules.model import MODEL_CHECKS, model_findings
from explr.rules.registry import RULES


def param(name, si=False, individually=None, group=None, reason="model output"):
    individually = si if individually is None else individually
    return ParamVerdict(name, (4, 4), 16, si, individually, group, reason)


def report(params, **facts) -> AuditReport:
    return AuditReport(model="net.py", parameters=params, groups=facts.pop("groups", []), **facts)


def conv_bn_head(**facts) -> AuditReport:
    """conv (SI, normalized by bn) -> bn (affine, not SI) -> fc (head): the clean baseline."""
    params = [param("conv.weight", True, True, 0, "normalized by bn"),
              param("bn.weight", reason="affine of bn feeds fc"), param("bn.bias", reason="affine of bn feeds fc"),
              param("fc.weight"), param("fc.bias")]
    facts.setdefault("groups", [Group(0, ("conv.weight",), ("bn",))])
    facts.setdefault("normalizers", [Normalizer("bn", "batch_norm", 1e-5, ("bn.weight", "bn.bias"))])
    return report(params, **facts)


def found(rep):
    return [f for f in model_findings(rep) if f.code != "EXP110"]  # EXP110 has its own test


def codes(rep):
    return [f.code for f in found(rep)]


def test_every_model_rule_has_a_check():
    # EXP109 comes from the numeric verifier itself
    assert sorted(MODEL_CHECKS.by_code) == sorted(c for c in RULES if c.startswith("EXP1") and c != "EXP109")


def test_clean_model_reports_only_its_head():
    rep = conv_bn_head()
    assert codes(rep) == []
    rep = conv_bn_head(output_params=["fc.weight", "fc.bias"])
    assert codes(rep) == ["EXP107"]


def test_exp101_no_normalization_says_why():
    rep = report([param("fc1.weight"), param("fc2.weight")])
    (f,) = found(rep)  # and no EXP110: nothing is SI
    assert f.code == "EXP101" and "no normalization layer" in f.message and f.severity is Severity.WARNING
    assert "EXP101" not in codes(conv_bn_head())


def test_exp101_with_normalizers_quotes_the_reasons():
    rep = report([param("fc.weight", reason="softmax in attn")],
                 normalizers=[Normalizer("ln", "layer_norm", 1e-5, ())])
    (f,) = found(rep)
    assert "ln" in f.message and "softmax in attn" in f.message


def test_exp102_bias_before_norm():
    rep = conv_bn_head(inert=["conv.bias"])
    (f,) = found(rep)
    assert f.code == "EXP102" and f.module == "conv" and "bias=False" in f.message
    assert "EXP102" not in codes(conv_bn_head(inert=[]))


def test_exp103_joint_group_names_its_members():
    params = [param("block.lin.weight", True, False, 3), param("block.lin.bias", True, False, 3)]
    rep = report(params, groups=[Group(3, ("block.lin.weight", "block.lin.bias"), ("block.ln",))])
    (f,) = found(rep)
    assert f.code == "EXP103" and "block.lin.weight, block.lin.bias" in f.message and "block.ln" in f.message
    assert f.module == "block.lin"
    # a group of one individually SI parameter is not "only jointly"
    assert codes(conv_bn_head()) == []


def test_exp103_long_member_list_is_abbreviated():
    members = tuple(f"stage.{i}.conv.weight" for i in range(12))
    rep = report([param(m, True, False, 0) for m in members], groups=[Group(0, members, ())])
    (f,) = found(rep)
    assert "(+4 more)" in f.message and f.module == "stage"


def test_exp104_opaque_module():
    rep = conv_bn_head(opaque=[OpaquePart("gate", "data-dependent control flow", ("gate.weight", "gate.bias"))])
    (f,) = found(rep)
    assert f.code == "EXP104" and "data-dependent control flow" in f.message and "2 parameters" in f.message
    assert "EXP104" not in codes(conv_bn_head(opaque=[]))


def test_exp105_unknown_op_reported_once_per_module():
    ops = [UnknownOp("aten.erfinv", "act"), UnknownOp("aten.erfinv", "act"), UnknownOp("aten.erfinv", "act2")]
    reported = found(conv_bn_head(unknown_ops=ops))
    assert [(f.code, f.module) for f in reported] == [("EXP105", "act"), ("EXP105", "act2")]
    assert "aten.erfinv" in reported[0].message
    assert codes(conv_bn_head(unknown_ops=[])) == []


def test_exp106_si_affine_grows():
    params = [param("bn1.weight", True, False, 1), param("bn1.bias", True, False, 1), param("conv.weight", True, True, 2)]
    rep = report(params, groups=[Group(1, ("bn1.weight", "bn1.bias"), ("bn2",)), Group(2, ("conv.weight",), ("bn2",))],
                 normalizers=[Normalizer("bn1", "batch_norm", 1e-5, ("bn1.weight", "bn1.bias")),
                              Normalizer("bn2", "batch_norm", 1e-5, ())])
    growing = [f for f in found(rep) if f.code == "EXP106"]
    assert len(growing) == 1 and growing[0].module == "bn1"
    assert "freeze" in growing[0].message and "renormalization" in growing[0].message
    assert "EXP106" not in codes(conv_bn_head())  # the affine of the last BN is not SI


def test_exp107_head_grouped_by_module_and_si_outputs_skipped():
    rep = conv_bn_head(output_params=["fc.weight", "fc.bias", "conv.weight"])
    (f,) = found(rep)
    assert f.code == "EXP107" and f.module == "fc" and "fc.weight, fc.bias" in f.message
    assert "conv.weight" not in f.message


@pytest.mark.parametrize("eps, var, fires", [(1e-5, 1.0, False), (1.0, 1.0, True), (1e-3, 0.5, True),
                                             (1e-5, None, False), (1e-5, 0.0, True)])
def test_exp108_eps_relative_to_input_variance(eps, var, fires):
    rep = conv_bn_head(normalizers=[Normalizer("bn", "batch_norm", eps, ("bn.weight", "bn.bias"), input_var=var)])
    assert (codes(rep) == ["EXP108"]) is fires


def test_findings_are_located_at_the_nearest_located_module():
    rep = conv_bn_head(inert=["layer1.0.conv1.bias"],
                       module_locations={"layer1.0": Location("models/net.py", 42), "conv": Location("x.py", 1)})
    (f,) = found(rep)
    assert f.location == Location("models/net.py", 42)
    rep = conv_bn_head(inert=["head.bias"], module_locations={})
    assert found(rep)[0].location is None


def test_exp103_leaves_a_lone_affine_pair_to_exp106():
    params = [param("bn1.weight", True, False, 1), param("bn1.bias", True, False, 1)]
    rep = report(params, groups=[Group(1, ("bn1.weight", "bn1.bias"), ("bn2",))],
                 normalizers=[Normalizer("bn1", "batch_norm", 1e-5, ("bn1.weight", "bn1.bias"))])
    assert codes(rep) == ["EXP106"]
    assert "are jointly scale-invariant" in found(rep)[0].message


def test_locations_in_installed_libraries_are_skipped_for_the_users_code():
    import torch
    library = Location(torch.nn.BatchNorm2d.__init__.__code__.co_filename, 10)
    rep = conv_bn_head(inert=["block.conv.bias"],
                       module_locations={"block.conv": library, "block": Location("/work/models/net.py", 7)})
    assert found(rep)[0].location == Location("/work/models/net.py", 7)
    rep = conv_bn_head(inert=["conv.bias"], module_locations={"conv": library})
    assert found(rep)[0].location is None


def test_exp110_batch_norm_models_get_one_eval_mode_note():
    (f,) = [f for f in model_findings(conv_bn_head()) if f.code == "EXP110"]
    assert "bn" in f.message and "recompute" in f.message
    ln = conv_bn_head(normalizers=[Normalizer("ln", "layer_norm", 1e-5, ())])
    assert "EXP110" not in [f.code for f in model_findings(ln)]
