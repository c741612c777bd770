"""JSON schema explr.check/1 exactly as the issue states it, plus the per-step and diagnostic extras."""
from __future__ import annotations

import json

import jsonschema
import pytest

from explr.check.api import CheckOptions, check
from tests.check.helpers import DEMO_CONFIG, audited

NUMBER_OR_NULL = {"type": ["number", "null"]}
SCHEMA = {
    "type": "object",
    "required": ["schema", "passed", "max_rel_deviation", "tolerance", "noise_floor", "steps", "device", "dtype",
                 "eval_mode"],
    "properties": {
        "schema": {"const": "explr.check/1"},
        "passed": {"type": "boolean"},
        "max_rel_deviation": {"type": "number"},
        "tolerance": {"type": "number", "exclusiveMinimum": 0},
        "noise_floor": NUMBER_OR_NULL,
        "steps": {"type": "integer", "minimum": 1},
        "device": {"type": "string"},
        "dtype": {"enum": ["float64", "float32", "bfloat16"]},
        "eval_mode": {"type": "object", "required": ["running_stats", "deviation_before_recalibration",
                                                     "deviation_after_recalibration", "expect"]},
        "diagnosis": {"type": ["object", "null"]},
        "per_step": {"type": "array", "items": {"type": "object", "required": [
            "step", "rel_deviation", "loss_original", "loss_converted", "lrs_original", "lrs_converted",
            "norm_ratio", "predicted_ratio"]}},
    },
}


@pytest.fixture(scope="module")
def passing():
    spec, report = audited("resnet_cifar")
    return check(spec, DEMO_CONFIG, si=report, options=CheckOptions(steps=8, batch_size=4))


def test_passing_report_matches_the_schema(passing):
    data = json.loads(json.dumps(passing.to_json(), allow_nan=False))  # strict JSON: no NaN/inf
    jsonschema.validate(data, SCHEMA)
    assert data["passed"] and data["noise_floor"] is None and data["dtype"] == "float64" and data["device"] == "cpu"
    assert data["steps"] == len(data["per_step"]) == 8 and data["diagnosis"] is None
    assert data["max_rel_deviation"] == max(s["rel_deviation"] for s in data["per_step"])
    assert data["weight_norm_growth"]["measured"] == pytest.approx(data["weight_norm_growth"]["predicted"], rel=1e-12)


def test_failing_report_carries_its_diagnosis():
    spec, report = audited("resnet_cifar")
    head = [p.name for p in report.parameters if not p.si and p.name.endswith("weight")][-1:]
    failed = check(spec, DEMO_CONFIG, si=report.si_names + head, options=CheckOptions(steps=8, batch_size=4))
    data = json.loads(json.dumps(failed.to_json(), allow_nan=False))
    jsonschema.validate(data, SCHEMA)
    assert not data["passed"] and data["diagnosis"]["causes"][0]["code"] == "wrong_si"
    assert data["diagnosis"]["first_exceeded_step"] >= 1
