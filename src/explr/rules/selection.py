"""Rule selection (ruff style): `select`/`ignore` take codes or code prefixes ("EXP1", "EXP20", "EXP301").

A selector that matches no registered code is an error (exit 2): a typo must never silently turn
a check off. `ignore` wins over `select`.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from explr.errors import ExplrError
from explr.findings import Finding
from explr.rules.registry import RULES


class SelectionError(ExplrError):
    """An unknown rule code or prefix in --select/--ignore or [tool.explr]."""


def validate_selectors(selectors: Iterable[str], origin: str) -> tuple[str, ...]:
    """Upper-cased selectors; SelectionError naming `origin` (e.g. "--select") for one matching no rule."""
    checked = []
    for raw in selectors:
        selector = raw.strip().upper()
        known = selector.startswith("EXP") and any(code.startswith(selector) for code in RULES)
        if selector == "ALL" or known:
            checked.append(selector)
        else:
            raise SelectionError(f"{origin}: unknown rule code {raw!r}; codes are EXP101..., prefixes like EXP1 "
                                 "select a family (run `explr rules` to list them)")
    return tuple(checked)


def split_selectors(value: str | None) -> list[str]:
    """'EXP1,EXP301' (a CLI value) -> ['EXP1', 'EXP301']; None or '' -> []."""
    return [part for part in (value or "").replace(" ", ",").split(",") if part]


def matches(code: str, selectors: Sequence[str]) -> bool:
    return any(s == "ALL" or code.startswith(s) for s in selectors)


def select_findings(findings: Iterable[Finding], select: Sequence[str] | None = None,
                    ignore: Sequence[str] | None = None) -> list[Finding]:
    """Findings whose code is selected (all when `select` is empty/None) and not ignored."""
    select = validate_selectors(select or (), "select") or ("ALL",)
    ignore = validate_selectors(ignore or (), "ignore")
    return [f for f in findings if matches(f.code, select) and not matches(f.code, ignore)]
