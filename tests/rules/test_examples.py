"""Every rule's examples run, Fixit style: the invalid case triggers the rule, the valid one does not.

Model rules audit the example as a model file (inputs inferred, numeric verification on), config rules
read the example config with explr's own reader, the lock rule records a lock from the valid model.
"""
import pytest

import explr
from explr.configs.adapter import ReadOptions
from explr.configs.formats import detect
from explr.configs.source import ConfigSource
from explr.load import load_model
from explr.lock import write_lock
from explr.rules.config import config_findings
from explr.rules.examples import EXAMPLES
from explr.rules.registry import RULES
from tests.conftest import ROOT


def audited(source: str, tmp_path, name: str = "model.py"):
    path = tmp_path / name
    path.write_text(source)
    loaded = load_model(str(path))
    return loaded, explr.audit(loaded.model, loaded.example_inputs)


def codes_of_model(source: str, tmp_path) -> set[str]:
    return {f.code for f in audited(source, tmp_path)[1].findings}


def codes_of_config(source: str, tmp_path) -> set[str]:
    path = tmp_path / "train.yaml"
    path.write_text(source)
    config = ConfigSource.load(path)
    detected = detect(config)
    assert detected.name == ("lightning" if "class_path" in source or "trainer:" in source else "explr")
    return {f.code for f in config_findings(detected.adapter.read(config, ReadOptions()))}


def codes_against_lock(source: str, locked_source: str, tmp_path) -> set[str]:
    locked, report = audited(locked_source, tmp_path, "locked.py")
    write_lock(report, locked.model, tmp_path / "explr.lock.json")
    now, report = audited(source, tmp_path)
    return {f.code for f in explr.apply_policy(report, now.model, lock=tmp_path / "explr.lock.json").findings}


def codes(code: str, source: str, tmp_path) -> set[str]:
    if code.startswith("EXP2"):
        return codes_of_config(source, tmp_path)
    if code.startswith("EXP3"):
        return codes_against_lock(source, EXAMPLES[code].valid, tmp_path)
    return codes_of_model(source, tmp_path)


def test_every_rule_has_examples():
    assert set(EXAMPLES) == set(RULES)
    assert [c for c, e in EXAMPLES.items() if e.invalid is None] == ["EXP109"]  # see explr.rules.examples


@pytest.mark.parametrize("code", [c for c, e in EXAMPLES.items() if e.invalid is not None])
def test_invalid_example_triggers_its_rule(code, tmp_path):
    assert code in codes(code, EXAMPLES[code].invalid, tmp_path)


@pytest.mark.parametrize("code", list(EXAMPLES))
def test_valid_example_does_not(code, tmp_path):
    assert code not in codes(code, EXAMPLES[code].valid, tmp_path)


def test_docs_and_rule_objects_show_the_same_examples():
    page = (ROOT / "docs" / "rules.md").read_text()
    for code, examples in EXAMPLES.items():
        rule = RULES[code]
        assert rule.valid_example == examples.valid and examples.valid.rstrip() in page
        if examples.invalid is not None:
            assert rule.example == examples.invalid and examples.invalid.rstrip() in page


def test_bias_before_batchnorm_is_inert_and_si_as_the_docs_say(tmp_path):
    _, report = audited(EXAMPLES["EXP102"].invalid, tmp_path)
    bias = report.by_name("0.bias")
    assert bias.si and "inert" in bias.reason and report.verification.status == "passed"
