"""The JSON renderer emits exactly the explr.audit/1 schema, with stable key order."""
import json
import math

from explr.audit_report import AuditReport, Group, ParamVerdict, Verification
from explr.render.json import render_json
from explr.rules.registry import finding

TOP_KEYS = {"schema", "model", "mode", "parameters", "groups", "findings", "verification"}
PARAM_TYPES = {"name": str, "shape": list, "numel": int, "si": bool, "individually_si": bool, "reason": str}


def sample_report(max_rel_error=3e-15) -> AuditReport:
    params = [
        ParamVerdict("conv.weight", (8, 3, 3, 3), 216, True, True, 0, "normalized by bn"),
        ParamVerdict("bn.weight", (8,), 8, False, False, None, "reaches the output through fc"),
        ParamVerdict("fc.weight", (10, 8), 80, False, False, None, "model output"),
    ]
    return AuditReport(
        model="tiny.py", parameters=params, groups=[Group(0, ("conv.weight",), ("bn",))],
        findings=[finding("EXP107", "fc keeps weight decay", module="fc")],
        verification=Verification("passed", max_rel_error),
    )


def test_schema_keys_and_types():
    doc = json.loads(render_json(sample_report()))
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == "explr.audit/1" and doc["mode"] == "train" and doc["model"] == "tiny.py"
    for p in doc["parameters"]:
        assert set(p) == set(PARAM_TYPES) | {"group"}
        for key, typ in PARAM_TYPES.items():
            assert isinstance(p[key], typ), key
        assert p["group"] is None or isinstance(p["group"], int)
        assert all(isinstance(d, int) for d in p["shape"])
    assert doc["groups"] == [{"id": 0, "members": ["conv.weight"], "normalizers": ["bn"]}]
    assert doc["findings"] == [{"code": "EXP107", "severity": "info", "message": "fc keeps weight decay", "module": "fc"}]
    assert doc["verification"] == {"status": "passed", "max_rel_error": 3e-15}


def test_output_is_byte_stable_and_sorted():
    first, second = render_json(sample_report()), render_json(sample_report())
    assert first == second
    doc = json.loads(first)
    assert list(doc) == sorted(doc)


def test_non_finite_error_becomes_null_not_invalid_json():
    text = render_json(sample_report(max_rel_error=math.inf))
    assert json.loads(text)["verification"]["max_rel_error"] is None
    assert "Infinity" not in text and "NaN" not in text
