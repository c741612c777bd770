"""JSON renderer: the versioned `explr.audit/1` document, keys sorted so output is byte-stable."""
from __future__ import annotations

import json
import math
from typing import Any

from explr.audit_report import AuditReport


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/Infinity: a non-finite error (a failed confirmation) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def render_json(report: AuditReport) -> str:
    return json.dumps(_finite_or_none(report.to_json()), indent=2, sort_keys=True, allow_nan=False) + "\n"
