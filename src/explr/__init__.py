"""explr: scale-invariance audit and exact weight-decay -> exponential-LR (TEXP) conversion.

Public API (imported lazily so `import explr` stays cheap):
    audit(model, example_inputs) -> AuditReport
    param_groups(model, si, weight_decay=..., **defaults)
    TEXP  (torch LR scheduler driving the converted schedule)
    apply_policy(report, model, lock=...) -> PolicyOutcome (select/ignore, EXP301, exit_code)
"""
from __future__ import annotations

import importlib

__version__ = "0.2.0"

# name -> (module, attribute); attribute None: the module itself. `audit` and `check` are
# subpackages that are callable (explr._callable_module), so both spellings keep working.
_LAZY = {
    "audit": ("explr.audit", None),
    "check": ("explr.check", None),
    "AuditReport": ("explr.audit_report", "AuditReport"),
    "TEXP": ("explr.schedule.runtime", "TEXP"),
    "param_groups": ("explr.schedule.groups", "param_groups"),
    "convert": ("explr.configs.api", "convert"),
    "apply_policy": ("explr.rules.policy", "apply_policy"),  # CI behaviour: selection, lock, exit code
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'explr' has no attribute {name!r}")
    module_path, attribute = _LAZY[name]
    module = importlib.import_module(module_path)
    return module if attribute is None else getattr(module, attribute)


__all__ = list(_LAZY)
