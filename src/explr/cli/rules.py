"""`explr rules` lists the rules; `explr rule CODE` explains one. Wiring only (docs live in explr.rules)."""
from __future__ import annotations

import enum
import shutil
import sys

import typer

from explr.cli.app import app
from explr.errors import ExplrError
from explr.render.rules import rules_json, rules_table
from explr.rules.catalog import Rule
from explr.rules.docs import rule_markdown, rules_markdown
from explr.rules.registry import RULES


class ListFormat(str, enum.Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


def find_rule(key: str) -> Rule:
    """A rule by code (any case) or kebab-case name; ExplrError listing where to look otherwise."""
    wanted = key.strip()
    for rule in RULES.values():
        if wanted.upper() == rule.code or wanted.lower() == rule.name:
            return rule
    raise ExplrError(f"unknown rule {key!r}; run `explr rules` to list the codes (EXP101 ...) and names")


@app.command("rules")
def rules_command(
    fmt: ListFormat = typer.Option(ListFormat.text, "--format", help="text table, json, or the docs/rules.md page."),
) -> int:
    """List every rule: code, name, default severity and summary."""
    render = {ListFormat.text: rules_table, ListFormat.json: rules_json, ListFormat.markdown: rules_markdown}
    sys.stdout.write(render[fmt]())
    return 0


@app.command("rule")
def rule_command(
    code: str = typer.Argument(..., metavar="CODE", help="A rule code such as EXP102, or its name."),
) -> int:
    """Explain one rule: what it does, why it matters, an example and how to fix it."""
    markdown = rule_markdown(find_rule(code))
    if sys.stdout.isatty():  # a terminal reads rendered Markdown; a pipe gets the Markdown source
        from explr.render.text import render_markdown
        markdown = render_markdown(markdown, width=min(shutil.get_terminal_size().columns, 100))
    sys.stdout.write(markdown)
    return 0
