"""Numeric confirmation of an AuditReport: a handful of float64 forward passes, not two per parameter.

Checks (each one forward pass of the prepared `ScalingProbe`, see numeric.py):
1. noise floor: an unscaled rerun must reproduce the output exactly (else nothing can be confirmed);
2. `draws` joint draws: every claimed group is multiplied by its own random factor in the same
   pass. This scales the whole SI set (a common factor is the special case) and also checks the
   stronger claim the report makes: groups are independent, so each may drift by its own factor;
3. one individual draw: every parameter claimed individually SI gets its own factor (skipped for
   those that are singleton groups: the joint draws already scale them on their own).
A failing check is bisected to the culprit group(s) or parameter(s) — O(k log n) extra passes —
and each culprit becomes an EXP109 error finding.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from explr.audit.numeric import TINY_EPS, TOLERANCE, ScalingProbe, UnverifiableError, draw_factor, is_meta
from explr.audit_report import AuditReport, Verification
from explr.findings import Finding
from explr.rules.registry import finding
from explr.wording import plural


@dataclass(frozen=True)
class _Claim:
    """One unit the report says may be scaled on its own: a group or a single parameter."""

    label: str  # "group 3" or "parameter conv.weight"
    members: tuple[str, ...]


@dataclass
class _Failure:
    claims: list[_Claim]
    factors: dict[str, float]  # claim label -> the factor it was scaled by
    error: float


def verify_report(model: nn.Module, example_inputs: Sequence[Any], report: AuditReport, *,
                  draws: int = 2, seed: int = 0, tol: float = TOLERANCE) -> tuple[Verification, list[Finding]]:
    """Confirm the report's SI claims numerically; return the verification and EXP109 findings."""
    if is_meta(model):
        return Verification("skipped", None, "meta device: weights are not allocated, numeric check skipped"), []
    groups = _group_claims(report)
    individuals = _individual_claims(report, groups)
    if not groups and not individuals:
        return Verification("skipped", None, "no parameter is claimed scale-invariant: nothing to confirm"), []
    try:
        probe = ScalingProbe(model, tuple(example_inputs), seed)
        unknown = _unknown_names(probe, groups + individuals)
        if unknown:
            return _failed(0.0, [finding("EXP109", f"the report names parameters the model does not have: "
                                                   f"{', '.join(unknown)}")])
        floor = probe.noise_floor()
        if floor > tol:
            return Verification("skipped", None, f"the model's output is not reproducible under a fixed seed "
                                                 f"(rerun differs by {floor:.1e}): numeric check impossible"), []
        errors, failures = _run_checks(probe, groups, individuals, draws, seed, tol)
    except UnverifiableError as exc:
        return Verification("skipped", None, str(exc)), []
    worst = max([floor, *errors])
    if failures:
        return _failed(worst, [_failure_finding(f) for f in failures])
    detail = (f"{probe.forwards} float64 train-mode forward passes (normalization eps {TINY_EPS:g}): "
              f"{plural(len(groups), 'group')} by independent factors in {plural(draws, 'draw')}, "
              f"{len(individuals)} more individually-SI {'parameter' if len(individuals) == 1 else 'parameters'} "
              f"by independent factors; max relative error {worst:.1e} (tolerance {tol:g})")
    return Verification("passed", worst, detail), []


def _group_claims(report: AuditReport) -> list[_Claim]:
    claims = [_Claim(f"group {g.id}", tuple(g.members)) for g in report.groups if g.members]
    grouped = {name for c in claims for name in c.members}
    # An SI parameter outside every listed group is its own (singleton) claim.
    claims += [_Claim(f"parameter {p.name}", (p.name,)) for p in report.parameters if p.si and p.name not in grouped]
    return claims


def _individual_claims(report: AuditReport, groups: list[_Claim]) -> list[_Claim]:
    """Individually-SI parameters not already a singleton group (the joint draws scale those alone)."""
    singletons = {c.members for c in groups if len(c.members) == 1}
    return [_Claim(f"parameter {p.name}", (p.name,)) for p in report.parameters
            if p.individually_si and (p.name,) not in singletons]


def _unknown_names(probe: ScalingProbe, claims: list[_Claim]) -> list[str]:
    return sorted({n for c in claims for n in c.members} - set(probe.params))


def _run_checks(probe: ScalingProbe, groups: list[_Claim], individuals: list[_Claim], draws: int,
                seed: int, tol: float) -> tuple[list[float], list[_Failure]]:
    rng = random.Random(seed)
    errors: list[float] = []
    failures: list[_Failure] = []
    for _ in range(draws if groups else 0):
        err, found = _check_draw(probe, groups, rng, tol)
        errors.append(err)
        failures += found
        if found:  # culprits known; another draw would only name them again
            break
    if individuals:
        err, found = _check_draw(probe, individuals, rng, tol)
        errors.append(err)
        failures += found
    return errors, failures


def _check_draw(probe: ScalingProbe, claims: list[_Claim], rng: random.Random,
                tol: float) -> tuple[float, list[_Failure]]:
    """One pass with an independent factor per claim; on failure, bisect to the culprits."""
    factors = {c.label: draw_factor(rng) for c in claims}

    def error_of(part: Sequence[_Claim]) -> float:
        return probe.error({name: factors[c.label] for c in part for name in c.members})

    err = error_of(claims)
    if err <= tol:
        return err, []
    return err, [_Failure(part, {c.label: factors[c.label] for c in part}, part_err)
                 for part, part_err in _bisect(error_of, claims, err, tol)]


def _bisect(error_of: Callable[[Sequence[_Claim]], float], claims: list[_Claim], err: float,
            tol: float) -> list[tuple[list[_Claim], float]]:
    """Split a failing set of claims until each failing part is one claim (or fails only in combination)."""
    if len(claims) == 1:
        return [(claims, err)]
    half = len(claims) // 2
    parts = [(part, error_of(part)) for part in (claims[:half], claims[half:])]
    failing = [(part, e) for part, e in parts if e > tol]
    if not failing:  # each half is fine alone: the claims interact
        return [(claims, err)]
    return [found for part, e in failing for found in _bisect(error_of, part, e, tol)]


def _failure_finding(failure: _Failure) -> Finding:
    claims = failure.claims
    if len(claims) == 1:
        claim = claims[0]
        what = f"{claim.label} ({_shorten(claim.members)})" if claim.label.startswith("group") else claim.label
        message = (f"{what} is claimed scale-invariant but scaling it by {failure.factors[claim.label]:.2f} "
                   f"changes the output")
    else:
        scaled = ", ".join(f"{label} by {c:.2f}" for label, c in failure.factors.items())
        message = f"scaling {scaled} changes the output although each part is invariant alone: not separate groups"
    module = _common_module([n for c in claims for n in c.members])
    return finding("EXP109", f"{message} (relative {failure.error:.2g}, float64, train mode)", module=module)


def _shorten(names: Sequence[str], keep: int = 4) -> str:
    more = f", +{len(names) - keep} more" if len(names) > keep else ""
    return ", ".join(names[:keep]) + more


def _common_module(names: list[str]) -> str | None:
    paths = [_module_path(n) for n in names]
    common: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common) or None


def _module_path(name: str) -> list[str]:
    """`layer1.conv.weight` -> [layer1, conv]; `fc.parametrizations.weight.original0` -> [fc]."""
    head, sep, _ = name.partition(".parametrizations.")
    return head.split(".") if sep else name.split(".")[:-1]


def _failed(error: float, findings: list[Finding]) -> tuple[Verification, list[Finding]]:
    detail = "; ".join(f.message for f in findings)
    return Verification("failed", error, detail), findings
