"""Project settings from `[tool.explr]` in pyproject.toml, found from the current directory upward.

    [tool.explr]
    select = ["EXP1", "EXP301"]   # codes or prefixes; default: all rules
    ignore = ["EXP107"]           # wins over select
    fail-on = "warning"           # error | warning | info | never (default: error)

The nearest pyproject.toml that has a [tool.explr] table is used (ruff's rule). Command-line
flags win: --select replaces `select`, --ignore adds to `ignore`, --fail-on replaces `fail-on`.
A malformed table is a SettingsError (exit 2) naming the file and key.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from explr.errors import ExplrError
from explr.findings import Finding
from explr.rules.selection import select_findings, validate_selectors

FAIL_ON = ("error", "warning", "info", "never")
_KEYS = ("select", "ignore", "fail-on")


class SettingsError(ExplrError):
    """A malformed [tool.explr] table or pyproject.toml."""


@dataclass(frozen=True, slots=True)
class Settings:
    select: tuple[str, ...] = ()  # empty: every rule
    ignore: tuple[str, ...] = ()
    fail_on: str = "error"
    path: Path | None = None  # the pyproject.toml they came from (None: defaults)

    def with_cli(self, select: Sequence[str] | None = None, ignore: Sequence[str] | None = None,
                 fail_on: str | None = None) -> "Settings":
        """These settings overridden by command-line values (None: flag not given)."""
        merged = self
        if select:
            merged = replace(merged, select=validate_selectors(select, "--select"))
        if ignore:
            merged = replace(merged, ignore=merged.ignore + validate_selectors(ignore, "--ignore"))
        if fail_on is not None:
            merged = replace(merged, fail_on=_fail_on(fail_on, "--fail-on"))
        return merged

    def apply(self, findings: Sequence[Finding]) -> list[Finding]:
        return select_findings(findings, self.select, self.ignore)


def find_pyproject(start: Path | None = None) -> tuple[Path, dict] | None:
    """The nearest pyproject.toml at or above `start` (default: cwd) with a [tool.explr] table."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            table = _read_toml(candidate).get("tool", {}).get("explr")
            if table is not None:
                return candidate, table
    return None


def load_settings(start: Path | None = None) -> Settings:
    found = find_pyproject(start)
    if found is None:
        return Settings()
    path, table = found
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.explr] must be a table of keys ({', '.join(_KEYS)})")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise SettingsError(f"{path}: [tool.explr] has unknown key {unknown[0]!r}; allowed keys: {', '.join(_KEYS)}")
    return Settings(select=validate_selectors(_codes(table, "select", path), f"{path}: [tool.explr] select"),
                    ignore=validate_selectors(_codes(table, "ignore", path), f"{path}: [tool.explr] ignore"),
                    fail_on=_fail_on(table.get("fail-on", "error"), f"{path}: [tool.explr] fail-on"),
                    path=path)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML ({exc}); fix the file or run explr from another directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read ({exc})") from None


def _codes(table: dict, key: str, path: Path) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f'{path}: [tool.explr] {key} must be a list of rule codes, e.g. {key} = ["EXP1", "EXP301"]')
    return value


def _fail_on(value, origin: str) -> str:
    if value not in FAIL_ON:
        raise SettingsError(f"{origin}: {value!r} is not one of {', '.join(FAIL_ON)}")
    return value
