"""explr.apply_policy: the CI behaviour of `explr audit` for Python callers (selection, lock, exit code)."""
import pytest
import torch
from torch import nn

import explr
from explr.findings import Severity
from explr.lock import write_lock
from explr.rules.policy import exit_code_for, resolve_settings
from explr.rules.registry import finding
from explr.settings import SettingsError


def net(bias: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=bias), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 2))


X = (torch.randn(4, 3, 8, 8),)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no [tool.explr] above: defaults unless a test writes one
    return tmp_path


def test_clean_model_against_its_own_lock_exits_0(workdir):
    model = net()
    write_lock(explr.audit(model, X, verify=False), model, workdir / "explr.lock.json")
    outcome = explr.apply_policy(explr.audit(model, X, verify=False), model, lock="explr.lock.json")
    assert outcome.lock_diff == () and outcome.exit_code == 0
    assert "EXP107" in {f.code for f in outcome.findings}  # info: counted, but below fail-on "error"


def test_changed_model_fails_with_exp301_and_the_diff(workdir):
    model = net()
    write_lock(explr.audit(model, X, verify=False), model, workdir / "explr.lock.json")
    changed = net(bias=True)
    report = explr.audit(changed, X, verify=False)
    outcome = explr.apply_policy(report, changed, lock=workdir / "explr.lock.json")
    assert outcome.lock_diff == ("+ 0.bias [4] (new, SI)",)  # inert before BN: SI, as the audit says
    assert [f.code for f in outcome.findings if f.severity is Severity.ERROR] == ["EXP301"]
    assert outcome.exit_code == 1 and report.findings == list(outcome.findings)


def test_pyproject_settings_and_explicit_overrides(workdir):
    (workdir / "pyproject.toml").write_text('[tool.explr]\nignore = ["EXP107"]\nfail-on = "info"\n')
    model = net()
    outcome = explr.apply_policy(explr.audit(model, X, verify=False), model)
    assert "EXP107" not in {f.code for f in outcome.findings} and outcome.settings.fail_on == "info"
    assert outcome.exit_code == (1 if outcome.findings else 0)
    settings = resolve_settings(select=["EXP110"], fail_on="never")
    outcome = explr.apply_policy(explr.audit(model, X, verify=False), model, settings=settings)
    assert {f.code for f in outcome.findings} == {"EXP110"} and outcome.exit_code == 0
    assert resolve_settings(select="EXP1,EXP3").select == ("EXP1", "EXP3")


def test_bad_settings_are_a_settings_error(workdir):
    with pytest.raises(SettingsError, match="--fail-on"):
        resolve_settings(fail_on="sometimes")


@pytest.mark.parametrize("fail_on, expected", [("error", 0), ("warning", 1), ("info", 1), ("never", 0)])
def test_exit_code_follows_fail_on(fail_on, expected):
    assert exit_code_for([finding("EXP104", "opaque part")], fail_on) == expected
