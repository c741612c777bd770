import pytest

from explr.errors import ExplrError
from explr.rules.registry import finding
from explr.rules.selection import select_findings, split_selectors

FOUND = [finding("EXP101", "a"), finding("EXP107", "b"), finding("EXP201", "c"), finding("EXP301", "d")]


def codes(found):
    return [f.code for f in found]


def test_no_selection_keeps_everything():
    assert codes(select_findings(FOUND)) == ["EXP101", "EXP107", "EXP201", "EXP301"]


@pytest.mark.parametrize("select, ignore, expected", [
    (["EXP1"], [], ["EXP101", "EXP107"]),
    (["exp201", "EXP301"], [], ["EXP201", "EXP301"]),
    (["EXP1"], ["EXP107"], ["EXP101"]),
    ([], ["EXP2", "EXP3"], ["EXP101", "EXP107"]),
    (["ALL"], ["EXP10"], ["EXP201", "EXP301"]),
])
def test_codes_and_prefixes(select, ignore, expected):
    assert codes(select_findings(FOUND, select, ignore)) == expected


@pytest.mark.parametrize("bad", ["EXP999", "EXP4", "E", "B001", ""])
def test_unknown_code_is_a_clear_error(bad):
    with pytest.raises(ExplrError, match="unknown rule code") as info:
        select_findings(FOUND, [bad] if bad else ["  "], [])
    assert info.value.exit_code == 2


def test_split_cli_values():
    assert split_selectors("EXP1,EXP301") == ["EXP1", "EXP301"]
    assert split_selectors("EXP1 EXP2") == ["EXP1", "EXP2"]
    assert split_selectors(None) == []
