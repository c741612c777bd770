"""explr.wording: counts agree with their nouns; shares never round to 100% or 0% unless they are."""
import pytest

from explr.audit_report import AuditReport, Group, ParamVerdict, Verification
from explr.wording import percent, plural


@pytest.mark.parametrize("count, expected", [(0, "0 groups"), (1, "1 group"), (2, "2 groups")])
def test_plural(count, expected):
    assert plural(count, "group") == expected


@pytest.mark.parametrize("part, total, expected", [
    (1999, 2000, "99.95%"), (2000, 2000, "100%"), (1, 2, "50%"), (0, 5, "0%"), (1, 2000, "0.1%"), (1, 100_000, "0.001%"),
    (999_999, 1_000_000, "99.9999%"), (1, 3, "33%"), (2, 3, "67%"), (5, 0, "0%"),
])
def test_percent(part, total, expected):
    assert percent(part, total) == expected


def test_summary_of_a_model_whose_head_is_not_si_is_below_100_percent():
    params = [ParamVerdict("conv.weight", (1999,), 1999, True, True, 0, "normalized by bn"),
              ParamVerdict("head.weight", (1,), 1, False, False, None, "model output")]
    summary = AuditReport("net.py", params, [], [], Verification("skipped", None)).summary()
    assert summary == "1/2 parameter tensors scale-invariant (99.95% of weights), 0 joint groups"
    joint = AuditReport("net.py", params, [Group(0, ("a.weight", "b.weight"), ("bn",))], [], Verification("skipped", None))
    assert joint.summary().endswith("1 joint group")
