"""docs/ci.md: every documented explr command runs, in order, in a small project (in-process, fast).

The project is the conv-with-bias-before-BN fixture as models/net.py plus the documented
[tool.explr] table. The documented lock check passes on the recorded model and fails (exit 1, with
the diff) once a BatchNorm is removed; the SARIF it writes is valid against the vendored schema.
"""
import json
import pathlib
import re
import shlex

import jsonschema
import pytest
import yaml

from explr.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ci.md").read_text()
TRAIN_CONFIG = ROOT / "fixtures" / "configs" / "lightning" / "cifar_resnet_step.yaml"
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def documented_commands() -> list[str]:
    """`explr ...` lines of bash blocks and `run: explr ...` steps of the workflow, in document order."""
    found = re.findall(r"^(?:\s*run: )?(explr .+?)\s*$", "\n".join(blocks("bash") + blocks("yaml")), re.M)
    return found


def precommit_commands() -> list[tuple[str, str]]:
    """(hook id, command line) of each hook in the documented .pre-commit-config.yaml examples."""
    ours = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    out = []
    for block in blocks("yaml"):
        config = yaml.safe_load(block)
        for repo in config.get("repos", []) if isinstance(config, dict) else []:
            for hook in repo["hooks"]:
                entry = hook.get("entry") or ours[hook["id"]]["entry"]  # a remote hook must be one we ship
                out.append((hook["id"], " ".join([entry, *map(shlex.quote, hook.get("args", []))])))
    return out


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text((ROOT / "fixtures" / "models" / "conv_bias_bn.py").read_text())
    (tmp_path / "pyproject.toml").write_text(blocks("toml")[0])
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text(TRAIN_CONFIG.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("explr.check.api.DEFAULT_STEPS", 8)  # `convert --verify`: a short check keeps the suite fast
    return tmp_path


def run(command: str) -> int:
    argv = shlex.split(command)
    assert argv[0] == "explr"
    return main(argv[1:])


def test_the_documented_commands_and_hooks_are_found():
    commands = documented_commands()
    assert commands[0] == "explr audit models/net.py --write-lock explr.lock.json"
    assert any("--format sarif" in c for c in commands) and len(commands) >= 4
    hooks = precommit_commands()
    assert {h for h, _ in hooks} == {"explr-audit-system", "explr-audit", "explr-convert-check"}
    assert any(c.startswith("explr convert") and c.endswith("--check") for c in commands)


def test_documented_commands_pass_on_the_recorded_model_and_fail_after_a_change(project, capsys):
    for command in documented_commands():
        assert run(command) == 0, command
    log = json.loads((project / "explr.sarif").read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]
            for loc in r.get("locations", []) if "physicalLocation" in loc}
    assert uris == {"models/net.py"}
    for _, command in precommit_commands():
        assert run(command) == 0, command

    net = project / "models" / "net.py"
    net.write_text(net.read_text().replace("self.bn2 = nn.BatchNorm2d(8)", "self.bn2 = nn.Identity()"))
    capsys.readouterr()
    audits = [c for c in documented_commands() + [c for _, c in precommit_commands()] if c.startswith("explr audit")]
    for command in [c for c in audits if "--lock" in c]:
        assert run(command) == 1, command
        assert "~ bn2: BatchNorm2d -> Identity" in capsys.readouterr().err
    log = json.loads((project / "explr.sarif").read_text())
    assert "EXP301" in {r["ruleId"] for r in log["runs"][0]["results"]}


def test_documented_convert_check_fails_once_the_source_config_changes(project, capsys):
    for command in documented_commands():
        assert run(command) == 0, command
    checks = [c for c in documented_commands() + [c for _, c in precommit_commands()]
              if c.startswith("explr convert") and "--check" in c]
    assert len(checks) == 2 and all(run(c) == 0 for c in checks)
    train = project / "configs" / "train.yaml"
    train.write_text(train.read_text().replace("milestones: [100, 150]", "milestones: [90, 150]"))
    converted = (project / "configs" / "train.texp.yaml").read_text()
    capsys.readouterr()
    for command in checks:
        assert run(command) == 1, command
        assert "train.texp.yaml is stale" in capsys.readouterr().err
    assert (project / "configs" / "train.texp.yaml").read_text() == converted


def test_precommit_hooks_file_is_well_formed():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["explr-audit", "explr-audit-system", "explr-convert-check"]
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        audit = hook["id"].startswith("explr-audit")
        assert hook["language"] in {"python", "system"} and hook["entry"] == ("explr audit" if audit else "explr convert")
        assert hook["pass_filenames"] is False  # explr checks one model / config, not the changed files
        watched = "models/net.py" if audit else "configs/train.yaml"
        assert re.search(hook["files"], watched) and re.search(hook["files"], "explr.lock.json")
