import re

import pytest

from explr.findings import Severity
from explr.rules.registry import _TABLE, finding


def test_codes_unique_and_well_formed():
    assert len({r.code for r in _TABLE}) == len(_TABLE)
    assert len({r.name for r in _TABLE}) == len(_TABLE)
    for rule in _TABLE:
        assert re.fullmatch(r"EXP[1-3]\d\d", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)


def test_finding_uses_default_severity_and_rejects_unknown_code():
    f = finding("EXP201", "nesterov is on")
    assert f.severity is Severity.ERROR and f.to_json()["code"] == "EXP201"
    with pytest.raises(KeyError):
        finding("EXP999", "nope")
