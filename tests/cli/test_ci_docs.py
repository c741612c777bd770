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
    monkeypatch.chdir(tmp_path)
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
    assert {h for h, _ in hooks} == {"explr-audit-system", "explr-audit"}


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
    for command in [c for c in documented_commands() if "--lock" in c] + [c for _, c in precommit_commands()]:
        assert run(command) == 1, command
        assert "~ bn2: BatchNorm2d -> Identity" in capsys.readouterr().err
    log = json.loads((project / "explr.sarif").read_text())
    assert "EXP301" in {r["ruleId"] for r in log["runs"][0]["results"]}


def test_precommit_hooks_file_is_well_formed():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["explr-audit", "explr-audit-system"]
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] in {"python", "system"} and hook["entry"] == "explr audit"
        assert hook["pass_filenames"] is False  # explr audits one model, not the changed files
        assert re.search(hook["files"], "models/net.py") and re.search(hook["files"], "explr.lock.json")
