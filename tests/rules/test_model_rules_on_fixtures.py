"""The model rules on real audits of fixture models (end to end through explr.audit)."""
import pathlib

import pytest

from explr.audit.api import audit
from explr.load import load_model

MODELS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models"


def audited(name: str):
    loaded = load_model(str(MODELS / name))
    return audit(loaded.model, loaded.example_inputs, verify=False)


def by_code(report, code):
    return [f for f in report.findings if f.code == code]


def test_conv_bias_before_bn_reports_both_biases_in_the_model_file():
    report = audited("conv_bias_bn.py")
    found = by_code(report, "EXP102")
    assert sorted(f.module for f in found) == ["conv1", "conv2"]
    for f in found:  # torch's own BatchNorm/Conv files are skipped for the user's model class
        assert f.location is not None and pathlib.Path(f.location.path).name == "conv_bias_bn.py"
    assert [f.module for f in by_code(report, "EXP106")] == ["bn1"]


def test_net_without_normalization_says_conversion_is_impossible():
    report = audited("no_norm.py")
    (f,) = by_code(report, "EXP101")
    assert "no normalization layer" in f.message


@pytest.mark.parametrize("fixture", ["vgg11_bn.py", "densenet_bc.py"])
def test_individually_si_models_report_no_joint_groups(fixture):
    report = audited(fixture)
    assert by_code(report, "EXP103") == [] and by_code(report, "EXP101") == []
