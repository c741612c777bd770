"""`explr audit` CI options: --write-lock / --lock, --select / --ignore / --fail-on and [tool.explr]."""
import json
import pathlib

import pytest

from explr.cli import main

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models" / "conv_bias_bn.py"


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(FIXTURE.read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit(*args):
    return main(["audit", "net.py", "--no-verify", "--format", "json", *args])


def codes(capsys):
    return [f["code"] for f in json.loads(capsys.readouterr().out)["findings"]]


def remove_bn2(project):
    net = project / "net.py"
    net.write_text(net.read_text().replace("self.bn2 = nn.BatchNorm2d(8)", "self.bn2 = nn.Identity()"))


def test_write_then_check_lock(project, capsys):
    assert audit("--write-lock", "explr.lock.json") == 0
    lock = json.loads((project / "explr.lock.json").read_text())
    assert lock["schema"] == "explr.lock/1" and "conv1.weight" in lock["si"]
    assert "wrote lock file explr.lock.json" in capsys.readouterr().err
    assert audit("--lock", "explr.lock.json") == 0
    assert "EXP301" not in codes(capsys)


def test_changed_model_fails_with_a_diff(project, capsys):
    assert audit("--write-lock", "explr.lock.json") == 0
    capsys.readouterr()
    remove_bn2(project)
    assert audit("--lock", "explr.lock.json") == 1
    captured = capsys.readouterr()
    assert "the model differs from explr.lock.json" in captured.err
    assert "~ bn2: BatchNorm2d -> Identity" in captured.err and "si changed: conv2.weight SI -> not SI" in captured.err
    findings = json.loads(captured.out)["findings"]
    assert {"code": "EXP301", "severity": "error", "message": "- bn2.bias removed (since explr.lock.json)",
            "module": None} in findings
    # deselecting the lock rule is an explicit choice, and then the check passes
    assert audit("--lock", "explr.lock.json", "--ignore", "EXP3") == 0


@pytest.mark.parametrize("text, message", [
    ("{oops", "corrupt lock file"),
    ('{"schema": "explr.lock/7"}', "newer than this explr understands"),
])
def test_bad_lock_file_is_exit_2_before_auditing(project, capsys, text, message):
    (project / "explr.lock.json").write_text(text)
    assert audit("--lock", "explr.lock.json") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("explr: error:") == 1


def test_missing_lock_and_bad_write_lock_directory_are_exit_2_and_write_nothing(project, capsys):
    assert audit("--lock", "absent.json") == 2
    assert "no such lock file" in capsys.readouterr().err
    assert audit("--write-lock", "no/dir/explr.lock.json") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "does not exist" in captured.err and not (project / "no").exists()


def test_select_and_ignore(project, capsys):
    assert audit() == 0
    assert set(codes(capsys)) == {"EXP102", "EXP106", "EXP107", "EXP110"}
    assert audit("--select", "EXP102,EXP106", "--ignore", "exp106") == 0
    assert codes(capsys) == ["EXP102", "EXP102"]
    assert audit("--select", "EXP999") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--select: unknown rule code 'EXP999'" in captured.err


def test_pyproject_table_and_cli_override(project, capsys):
    (project / "pyproject.toml").write_text('[tool.explr]\nignore = ["EXP107"]\nfail-on = "info"\n')
    assert audit() == 1  # info findings fail under fail-on = "info"
    assert "EXP107" not in codes(capsys)
    assert audit("--fail-on", "error") == 0
    assert audit("--select", "EXP107") == 0  # --select replaces select; ignore still applies
    capsys.readouterr()
    (project / "pyproject.toml").write_text('[tool.explr]\nfail-on = "sometimes"\n')
    assert audit() == 2
    assert "pyproject.toml: [tool.explr] fail-on: 'sometimes' is not one of" in capsys.readouterr().err
