"""SARIF output: valid against the official 2.1.0 schema (vendored), shaped the way GitHub code scanning needs."""
import json
import pathlib
from urllib.parse import urlparse

import jsonschema
import pytest

from explr.audit_report import AuditReport, ParamVerdict
from explr.findings import Location
from explr.render.sarif import FINGERPRINT_KEY, render_findings_sarif, render_sarif
from explr.rules.registry import RULES, finding

SCHEMA = json.loads((pathlib.Path(__file__).parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())
DOCS = "https://example.org/explr/docs/rules.md"


def validate(text: str) -> dict:
    log = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    return log


def audit(tmp_path, findings) -> AuditReport:
    return AuditReport("models/net.py", [ParamVerdict("conv.weight", (4, 3, 3, 3), 108, True, True, 0, "bn")], [],
                       findings=findings)


def test_audit_sarif_is_valid_and_located_relative_to_srcroot(tmp_path):
    found = [finding("EXP102", "conv.bias is cancelled", module="conv",
                     location=Location(str(tmp_path / "models" / "net.py"), 12)),
             finding("EXP101", "nothing is scale-invariant")]
    log = validate(render_sarif(audit(tmp_path, found), "models/net.py:build", root=tmp_path, docs_url=DOCS))
    run = log["runs"][0]
    assert log["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "explr"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    first, second = run["results"]
    assert first["ruleId"] == "EXP102" and first["level"] == "note" and first["message"]["text"].startswith("conv.bias")
    physical = first["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "models/net.py", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 12}}
    assert first["locations"][0]["logicalLocations"] == [{"fullyQualifiedName": "conv", "kind": "module"}]
    # a finding without a location points at the model file (the spec's ':build' stripped), line 1
    assert second["level"] == "warning"
    assert second["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/net.py"
    assert second["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert run["properties"]["summary"].startswith("1/1 parameter tensors")


def test_rules_listed_once_with_help_and_indexes(tmp_path):
    log = validate(render_findings_sarif([finding("EXP201", "nesterov=true", location=Location("train.yaml", 4))],
                                         root=tmp_path, docs_url=DOCS))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    for rule in rules:
        assert rule["help"]["text"] and "What it does" in rule["help"]["markdown"]
        assert rule["helpUri"] == f"{DOCS}#{rule['id'].lower()}" and urlparse(rule["helpUri"]).scheme == "https"
    (result,) = log["runs"][0]["results"]
    assert rules[result["ruleIndex"]]["id"] == "EXP201" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "train.yaml"


def test_paths_outside_root_are_absolute_file_uris_and_special_characters_escaped(tmp_path):
    outside = tmp_path / "elsewhere" / "model file.py"
    root = tmp_path / "repo"
    root.mkdir()
    found = [finding("EXP104", "opaque", location=Location(str(outside), 3)),
             finding("EXP104", "opaque", location=Location("sub dir/m.py", 2))]
    results = validate(render_findings_sarif(found, root=root, docs_url=DOCS))["runs"][0]["results"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": outside.as_uri()}
    assert results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "sub%20dir/m.py"


def test_fingerprints_survive_line_moves_and_number_changes_but_separate_findings(tmp_path):
    def fp(f):
        log = json.loads(render_findings_sarif([f], root=tmp_path, docs_url=DOCS))
        return log["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY]

    a = finding("EXP205", "underflow at step 14789 (epoch 37.8)", location=Location("t.yaml", 9))
    moved = finding("EXP205", "underflow at step 15000 (epoch 38.4)", location=Location("t.yaml", 11))
    other = finding("EXP102", "layer2.0.conv1.bias is cancelled", module="layer2.0.conv1")
    assert fp(a) == fp(moved) and fp(a) != fp(other)
    assert fp(other) != fp(finding("EXP102", "layer1.0.conv1.bias is cancelled", module="layer1.0.conv1"))
    twice = json.loads(render_findings_sarif([a, a], root=tmp_path, docs_url=DOCS))["runs"][0]["results"]
    assert [r["partialFingerprints"][FINGERPRINT_KEY][-2:] for r in twice] == [":1", ":2"]


@pytest.mark.parametrize("spec", ["torchvision.models:resnet18", None])
def test_package_specs_have_no_file_to_point_at(tmp_path, spec):
    log = validate(render_sarif(audit(tmp_path, [finding("EXP101", "x")]), spec, root=tmp_path, docs_url=DOCS))
    assert "locations" not in log["runs"][0]["results"][0]


def test_empty_run_is_valid(tmp_path):
    log = validate(render_findings_sarif([], root=tmp_path, docs_url=None))
    assert log["runs"][0]["results"] == [] and "helpUri" not in log["runs"][0]["tool"]["driver"]["rules"][0]


def test_schema_rejects_a_broken_log():
    # the vendored schema really validates (guards against an empty or permissive schema file)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate({"version": "2.1.0", "runs": [{"results": []}]})
