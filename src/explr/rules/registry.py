"""Rule lookup, finding construction and the check registries.

The rules themselves (codes, names, severities, docs) are the one table in `catalog.py`.
Every finding explr emits is created through `finding(code, ...)`, so an unknown code is a bug
caught immediately rather than a silent typo. Each check is a small pure function registered
with the code it reports (`Checks.register`), flop_counter style: a duplicate is an error.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterable, TypeVar

from explr.findings import Finding, Location, Severity
from explr.rules.catalog import _TABLE, Rule

RULES: dict[str, Rule] = {}
for _rule in _TABLE:
    if _rule.code in RULES:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"duplicate rule code {_rule.code}")
    RULES[_rule.code] = _rule


def get_rule(code: str) -> Rule:
    try:
        return RULES[code]
    except KeyError:
        raise KeyError(f"unknown rule code {code!r}") from None


def finding(code: str, message: str, module: str | None = None,
            location: Location | None = None, severity: Severity | None = None) -> Finding:
    """Create a Finding for a registered rule (default severity unless overridden)."""
    rule = get_rule(code)
    return Finding(code, severity or rule.severity, message, module, location)


Subject = TypeVar("Subject")
Check = Callable[[Subject], Iterable[Finding]]


class Checks(Generic[Subject]):
    """Check functions of one rule family, keyed by rule code; run in code order."""

    def __init__(self, family: str):
        self.family = family
        self.by_code: dict[str, Check] = {}

    def register(self, code: str) -> Callable[[Check], Check]:
        def add(check: Check) -> Check:
            get_rule(code)  # the code must be in the table
            if code in self.by_code:
                raise RuntimeError(f"{self.family} check for {code} registered twice")
            self.by_code[code] = check
            return check
        return add

    def run(self, subject: Subject) -> list[Finding]:
        found: list[Finding] = []
        for code in sorted(self.by_code):
            for f in self.by_code[code](subject):
                if f.code != code:
                    raise RuntimeError(f"check registered for {code} reported {f.code}")
                found.append(f)
        return found
