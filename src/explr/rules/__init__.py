"""Rule registry: stable codes, names, default severities (see registry.py)."""
from explr.rules.registry import RULES, Rule, finding, get_rule

__all__ = ["RULES", "Rule", "finding", "get_rule"]
