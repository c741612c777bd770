import json

import pytest

from explr.cli import main
from explr.rules.registry import RULES


def test_rules_lists_every_rule_once(capsys):
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(RULES)
    assert lines[1].split()[1:3] == ["bias-before-norm", "info"]


def test_rules_json_and_markdown(capsys):
    assert main(["rules", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "explr.rules/1" and [r["code"] for r in data["rules"]] == list(RULES)
    assert all(r["what_it_does"] and r["how_to_fix"] for r in data["rules"])
    assert main(["rules", "--format", "markdown"]) == 0
    assert "### EXP301" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["EXP106", "exp106", "bn-affine-grows"])
def test_rule_explains_one(capsys, key):
    assert main(["rule", key]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## EXP106")
    for section in ("What it does", "Why is this bad?", "Example", "How to fix"):
        assert f"### {section}" in out


@pytest.mark.parametrize("key", ["EXP999", "nesterovv"])
def test_unknown_rule_is_exit_2_with_one_line(capsys, key):
    assert main(["rule", key]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "explr rules" in captured.err


def test_rule_in_a_terminal_is_rendered_markdown(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["rule", "EXP102"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" in out and "EXP102" in out and "What it does" in out
    assert "## " not in out and "```" not in out  # rendered, not the Markdown source


def test_help_shows_no_placeholder_for_boolean_flags(capsys):
    for command in ([], ["audit"], ["convert"], ["check"], ["schedule"], ["demo"], ["rules"]):
        assert main([*command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out and "--help" in out
        if command == ["audit"]:  # options grouped in panels, not one long list
            assert all(f"─ {panel} ─" in out for panel in ("Model", "CI", "Output"))
    assert main(["schedule", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "5e-4",
                 "--iters-per-epoch", "391", "--json", "true"]) == 2  # flags take no value: a clear usage error
