"""The rule list of `explr rules`: an aligned text table or JSON (schema explr.rules/1).

One rule's documentation is Markdown from explr.rules.docs (also docs/rules.md); in a terminal
explr.render.text.render_markdown lays it out.
"""
from __future__ import annotations

import json

from explr.rules.registry import RULES


def rules_table() -> str:
    """code, name, severity, summary in aligned columns."""
    rules = list(RULES.values())
    width = max(len(r.name) for r in rules)
    return "".join(f"{r.code}  {r.name:<{width}}  {r.severity.value:<7}  {r.summary}\n" for r in rules)


def rules_json() -> str:
    fields = ("code", "name", "summary", "what_it_does", "why_bad", "example", "valid_example", "how_to_fix")
    rows = [{**{f: getattr(r, f) for f in fields}, "severity": r.severity.value} for r in RULES.values()]
    return json.dumps({"schema": "explr.rules/1", "rules": rows}, indent=2) + "\n"
