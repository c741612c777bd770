"""Model rules (EXP1xx): small pure functions of AuditReport facts.

The audit calls `model_findings(report)` and adds the result to `report.findings`. EXP109
(verification failed) is emitted by the numeric verifier itself, not here.
"""
from __future__ import annotations

import os
import sysconfig
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from explr.audit.numeric import EPS_RATIO_LIMIT  # eps/var above it: invariance visibly approximate
from explr.audit_report import AuditReport
from explr.findings import Finding, Location
from explr.rules.registry import Checks, finding
from explr.wording import plural

MODEL_CHECKS: Checks[AuditReport] = Checks("model")

_LISTED = 8  # names listed in one message before "+N more"


def model_findings(report: AuditReport) -> list[Finding]:
    """All model-rule findings for `report`, each located where its module is defined or called."""
    return [_located(f, report) for f in MODEL_CHECKS.run(report)]


def module_of(param: str) -> str:
    """'layer1.0.conv1.weight' -> 'layer1.0.conv1' ('' for a top-level parameter)."""
    return param.rpartition(".")[0]


def names(items, limit: int = _LISTED) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _located(f: Finding, report: AuditReport) -> Finding:
    if f.location is not None or f.module is None:
        return f
    location = _module_location(f.module, report.module_locations)
    return Finding(f.code, f.severity, f.message, f.module, location) if location else f


def _module_location(module: str, locations: dict[str, Location]) -> Location | None:
    """Location of `module` or of its nearest ancestor located in the user's code.

    layer1.0.bn1 (a torch BatchNorm2d: its class lives in site-packages, useless in a report)
    -> layer1.0 (the user's block class) -> layer1 -> the model itself.
    """
    while True:
        location = locations.get(module)
        if location is not None and not _is_library(location.path):
            return location
        if not module:
            return None
        module = module_of(module)


_LIBRARY_DIRS = tuple(str(Path(p).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")
                      if (p := sysconfig.get_paths().get(key)))


def _is_library(path: str | None) -> bool:
    """True for files of installed packages and the standard library (not the user's model code)."""
    if not path:
        return True
    resolved = str(Path(path).resolve())
    return any(resolved == d or resolved.startswith(d + os.sep) for d in _LIBRARY_DIRS)


@MODEL_CHECKS.register("EXP101")
def no_scale_invariant_parameter(report: AuditReport) -> Iterator[Finding]:
    if not report.parameters or any(p.si for p in report.parameters):
        return
    if not report.normalizers:
        why = "the model has no normalization layer, so every parameter reaches the output with its scale"
    else:
        reasons = sorted({p.reason for p in report.parameters})
        why = (f"normalizations found ({names(n.module for n in report.normalizers)}), but no parameter is "
               f"cancelled by them: {names(reasons, 3)}")
    yield finding("EXP101", f"no parameter is scale-invariant, conversion impossible: {why}")


@MODEL_CHECKS.register("EXP102")
def bias_before_normalization(report: AuditReport) -> Iterator[Finding]:
    for name in report.inert:
        yield finding("EXP102", f"{name} is cancelled by the normalization that follows it: it has no effect "
                                f"and a zero gradient; build {module_of(name) or 'the layer'} with bias=False",
                      module=module_of(name) or None)


@MODEL_CHECKS.register("EXP103")
def joint_only_groups(report: AuditReport) -> Iterator[Finding]:
    individually = {p.name for p in report.parameters if p.individually_si}
    affine_pairs = {frozenset(n.affine) for n in report.normalizers}  # reported by EXP106 instead
    for group in report.groups:
        if frozenset(group.members) in affine_pairs:
            continue
        if len(group.members) > 1 and not set(group.members) <= individually:
            via = f" (normalized by {names(group.normalizers, 3)})" if group.normalizers else ""
            yield finding("EXP103", f"group {group.id}: {len(group.members)} parameters are scale-invariant only "
                                    f"jointly{via} and must share one schedule: {names(group.members)}",
                          module=_common_module(group.members) or module_of(group.members[0]) or None)


def _common_module(params) -> str | None:
    parts = [module_of(p).split(".") for p in params]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common) or None


@MODEL_CHECKS.register("EXP104")
def opaque_modules(report: AuditReport) -> Iterator[Finding]:
    for part in report.opaque:
        yield finding("EXP104", f"{part.module or 'the model'} could not be captured ({part.why}): its "
                                f"{plural(len(part.params), 'parameter')} {'is' if len(part.params) == 1 else 'are'} treated as not scale-invariant",
                      module=part.module or None)


@MODEL_CHECKS.register("EXP105")
def ops_without_rule(report: AuditReport) -> Iterator[Finding]:
    seen = set()
    for op in report.unknown_ops:
        if (op.op, op.module) in seen:
            continue
        seen.add((op.op, op.module))
        where = f" in {op.module}" if op.module else ""
        yield finding("EXP105", f"op {op.op}{where} has no transfer rule: its inputs were treated as not "
                                "scaled, so parameters feeding it are not scale-invariant",
                      module=op.module or None)


@MODEL_CHECKS.register("EXP106")
def growing_affine(report: AuditReport) -> Iterator[Finding]:
    si = set(report.si_names)
    for norm in report.normalizers:
        grows = [p for p in norm.affine if p in si]
        if grows:
            state = "are jointly scale-invariant" if len(grows) > 1 else "is scale-invariant"
            yield finding("EXP106", f"{names(grows)} ({norm.kind} affine of {norm.module}) {state} and will grow "
                                    "exponentially after conversion; freeze them as the paper did "
                                    "(requires_grad_(False) or affine=False, then re-audit) or enable the "
                                    "runtime's renormalization", module=norm.module)


@MODEL_CHECKS.register("EXP107")
def head_keeps_weight_decay(report: AuditReport) -> Iterator[Finding]:
    by_module: dict[str, list[str]] = defaultdict(list)
    si = set(report.si_names)
    for name in report.output_params:
        if name not in si:
            by_module[module_of(name)].append(name)
    for module, params in by_module.items():
        verb = "reach the output without normalization: they keep" if len(params) > 1 else \
            "reaches the output without normalization: it keeps"
        yield finding("EXP107", f"{names(params)} {verb} the original LR and weight decay after conversion",
                      module=module or None)


@MODEL_CHECKS.register("EXP108")
def large_normalization_eps(report: AuditReport) -> Iterator[Finding]:
    for norm in report.normalizers:
        if norm.eps is None or norm.input_var is None:  # not recorded: say nothing
            continue
        ratio = norm.eps / norm.input_var if norm.input_var > 0 else float("inf")
        if ratio > EPS_RATIO_LIMIT:
            yield finding("EXP108", f"{norm.module}: eps={norm.eps:g} is {ratio:.2g} x its input variance "
                                    f"({norm.input_var:.3g}); scale invariance only holds up to about that "
                                    f"relative error — lower eps (e.g. 1e-5)", module=norm.module)


@MODEL_CHECKS.register("EXP110")
def batch_norm_eval_mode(report: AuditReport) -> Iterator[Finding]:
    batch_norms = [n.module for n in report.normalizers if n.kind == "batch_norm"]
    if batch_norms and any(p.si for p in report.parameters):
        yield finding("EXP110", f"scale invariance holds in train mode only: the running statistics of "
                                f"{names(batch_norms, 3)} average activations of different scale over a converted "
                                "run; recompute them (a train-mode pass without updates) before evaluating")
