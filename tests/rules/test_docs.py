"""docs/rules.md is generated from the rule table; this keeps the committed page in sync."""
import pathlib
import re

from explr.rules.docs import rules_markdown
from explr.rules.registry import RULES

PAGE = pathlib.Path(__file__).parents[2] / "docs" / "rules.md"


def test_committed_page_equals_generated_text():
    assert PAGE.read_text() == rules_markdown(), "regenerate: python -m explr.rules.docs > docs/rules.md"


def test_every_rule_is_fully_documented():
    for rule in RULES.values():
        for field in ("summary", "what_it_does", "why_bad", "example", "how_to_fix"):
            assert getattr(rule, field).strip(), f"{rule.code} has no {field}"
    headings = re.findall(r"^### (EXP\d{3})$", PAGE.read_text(), re.M)
    assert headings == list(RULES)
