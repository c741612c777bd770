"""Counts and shares in messages: "1 group" / "2 groups", and percentages that never round to a lie."""
from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """'1 group', '2 groups', '0 groups' (`plural_form` for irregular nouns)."""
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def percent(part: float, total: float) -> str:
    """`part` of `total` as a percentage with as many decimals as it takes not to round to 100% or 0%
    when the share is not all or nothing: 1999 of 2000 is '99.95%', never '100%'."""
    if total <= 0:
        return "0%"
    share = 100.0 * part / total
    for decimals in range(7):
        text = f"{share:.{decimals}f}"
        if (part >= total or float(text) < 100.0) and (part <= 0 or float(text) > 0.0):
            return f"{text}%"
    return f"{share:.2g}%"  # a share below 1e-6 %: scientific, still not 0
