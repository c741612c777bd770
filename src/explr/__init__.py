"""explr: scale-invariance audit and exact weight-decay -> exponential-LR (TEXP) conversion.

Public API (imported lazily so `import explr` stays cheap):
    audit(model, example_inputs) -> AuditReport
    param_groups(model, si, weight_decay=..., **defaults)
    TEXP  (torch LR scheduler driving the converted schedule)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "audit": "explr.audit.api",
    "AuditReport": "explr.audit.report",
    "TEXP": "explr.schedule.runtime",
    "param_groups": "explr.schedule.groups",
    "convert": "explr.configs.api",
    "check": "explr.check",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'explr' has no attribute {name!r}")


__all__ = list(_LAZY)
