"""The one table of rules. Codes are stable and never reused.

EXP1xx: model (audit) rules; EXP2xx: config rules; EXP3xx: lock/baseline rules.
Every finding explr emits is created through `finding(code, ...)`, so an unknown code is a bug
caught immediately rather than a silent typo.
"""
from __future__ import annotations

from dataclasses import dataclass

from explr.findings import Finding, Location, Severity


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str  # kebab-case
    severity: Severity
    summary: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_TABLE = [
    # model rules
    Rule("EXP101", "no-normalization", _W, "No parameter is scale-invariant: nothing to convert."),
    Rule("EXP102", "bias-before-norm", _I, "A bias right before a normalization has no effect."),
    Rule("EXP103", "joint-only-si", _I, "Parameters are scale-invariant only jointly and must share one schedule."),
    Rule("EXP104", "opaque-module", _W, "Part of the model could not be captured; its parameters are treated as not SI."),
    Rule("EXP105", "unknown-op", _W, "An op without a transfer rule; its inputs are conservatively constrained."),
    Rule("EXP106", "bn-affine-grows", _I, "Normalization affine parameters are SI and will grow exponentially after conversion."),
    Rule("EXP107", "head-keeps-weight-decay", _I, "Trainable non-SI parameters (e.g. the head) stay on weight decay."),
    Rule("EXP108", "large-norm-eps", _W, "Normalization eps is large relative to the activations' variance."),
    Rule("EXP109", "verification-failed", _E, "The numeric scaling test contradicts the static verdict."),
    Rule("EXP110", "eval-mode-only", _I, "Scale invariance holds in train mode only (BatchNorm running statistics)."),
    # config rules
    Rule("EXP201", "nesterov", _E, "Nesterov momentum has no exact exponential-LR equivalent."),
    Rule("EXP202", "non-sgd-optimizer", _E, "The optimizer has no exact exponential-LR equivalent."),
    Rule("EXP203", "grad-clipping", _E, "Gradient-norm clipping over all parameters breaks exact equivalence."),
    Rule("EXP204", "weight-averaging", _W, "Weight EMA/SWA averages iterates of different scale."),
    Rule("EXP205", "fp16-underflow", _W, "Under fp16 autocast the converted gradients underflow after some step."),
    Rule("EXP206", "fp32-overflow", _W, "Converted SI weights overflow float32 before training ends unless renormalized."),
    Rule("EXP207", "per-epoch-scheduler", _I, "The original scheduler steps per epoch; the converted one steps per iteration."),
    Rule("EXP208", "no-weight-decay-on-si", _I, "Weight decay is already zero for the SI parameters: the conversion changes nothing."),
    # lock rules
    Rule("EXP301", "lock-mismatch", _E, "The model's SI set or structure differs from the lock file."),
]

RULES: dict[str, Rule] = {}
for _rule in _TABLE:
    if _rule.code in RULES:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"duplicate rule code {_rule.code}")
    RULES[_rule.code] = _rule


def get_rule(code: str) -> Rule:
    try:
        return RULES[code]
    except KeyError:
        raise KeyError(f"unknown rule code {code!r}") from None


def finding(code: str, message: str, module: str | None = None,
            location: Location | None = None, severity: Severity | None = None) -> Finding:
    """Create a Finding for a registered rule (default severity unless overridden)."""
    rule = get_rule(code)
    return Finding(code, severity or rule.severity, message, module, location)
