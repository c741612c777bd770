"""Numeric confirmation of an AuditReport: a handful of float64 forward passes, not two per parameter.

Checks (each one forward pass of the prepared `ScalingProbe`, see numeric.py; one float64 copy):
1. the baseline, which also measures every hand-written eps against its statistic;
2. `draws` passes with independent random factors: every claimed group by its own factor (this
   scales the whole SI set and checks that groups are independent), and in the last pass every
   individually-SI parameter by its own factor as well (the rest of its group by the group's).
So a report that holds costs 1 + draws forwards (3 by default). When a pass fails, an unscaled
rerun first checks the model is reproducible at all (else nothing can be confirmed: skipped).
A failing pass is bisected to the culprit group(s) or parameter(s) — O(k log n) extra passes —
each culprit becomes an EXP109 error finding, and its claim is withdrawn from the report: the
report never carries a refuted claim. Withdrawing is re-deriving (the caller's `demote`
re-solves the static constraints with the culprits at 0, so whatever depended on them goes
too); what is then still claimed is checked again.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from explr.audit.numeric import (EPS_RATIO_LIMIT, TINY_EPS, TOLERANCE, ScalingProbe, UnverifiableError, draw_factor,
                                 is_meta)
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


Demote = Callable[[AuditReport, dict[str, str]], None]  # (report, {parameter: reason}) -> claims withdrawn
MAX_ROUNDS = 6  # confirm -> demote -> confirm again; each round withdraws at least one claim


def verify_report(model: nn.Module, example_inputs: Sequence[Any], report: AuditReport, *,
                  demote: Demote | None = None, draws: int = 2, seed: int = 0,
                  tol: float = TOLERANCE) -> tuple[Verification, list[Finding]]:
    """Confirm the report's SI claims numerically; withdraw refuted ones (in `report`); return the
    verification and the EXP109 findings. `demote` re-derives the claims without the refuted
    parameters (the static analysis re-solved); by default they are simply dropped."""
    if is_meta(model):
        return Verification("skipped", None, "meta device: weights are not allocated, numeric check skipped"), []
    if not _claims(report)[0] and not _claims(report)[1]:
        return Verification("skipped", None, "no parameter is claimed scale-invariant: nothing to confirm"), []
    try:
        probe = ScalingProbe(model, tuple(example_inputs), seed, eps_literals=[e.eps for e in report.hand_written_eps])
        unknown = _unknown_names(probe, [c for part in _claims(report) for c in part])
        if unknown:
            return _failed(0.0, [finding("EXP109", f"the report names parameters the model does not have: "
                                                   f"{', '.join(unknown)}")], "")
        return _confirm(probe, report, demote or drop_claims, draws, seed, tol)
    except UnverifiableError as exc:
        return Verification("skipped", None, str(exc)), []


def _unreproducible(probe: ScalingProbe, tol: float) -> None:
    """Before blaming a claim: does an unscaled rerun reproduce the output? (Only asked when a
    check fails; a passing check already shows the reruns agree.)"""
    floor = probe.noise_floor()
    if floor > tol:
        raise UnverifiableError(f"the model's output is not reproducible under a fixed seed "
                                f"(rerun differs by {floor:.1e}): numeric check impossible")


def _confirm(probe: ScalingProbe, report: AuditReport, demote: Demote, draws: int, seed: int,
             tol: float) -> tuple[Verification, list[Finding]]:
    """Check, withdraw what fails, check what is left, until a check passes (or nothing is claimed)."""
    findings: list[Finding] = []
    withdrawn: dict[str, str] = {}
    errors = [0.0]
    for _ in range(MAX_ROUNDS):
        refuted = _eps_refutations(probe, report)
        if not refuted:
            groups, individuals = _claims(report)
            round_errors, failures = _run_checks(probe, groups, individuals, draws, seed, tol)
            if failures and not withdrawn:
                _unreproducible(probe, tol)
            errors += round_errors
            findings += [_failure_finding(f) for f in failures]
            refuted = {}
            for f in failures:  # a parameter named by several failures keeps the first (most direct) reason
                for name in sorted(_culprits(f, groups)):
                    refuted.setdefault(name, _refutation(f))
        if not refuted:
            break
        withdrawn.update(refuted)
        demote(report, refuted)
        if not any(_claims(report)):
            break
    else:
        demote(report, {p.name: "refuted numerically: the claims kept failing the confirmation" for p in report.parameters if p.si})
    if not withdrawn:
        return Verification("passed", max(errors), _passed_detail(probe, report, draws, max(errors), tol)), []
    left = "nothing is claimed any more" if not any(_claims(report)) else \
        f"what the report still claims passed ({probe.forwards} float64 forward passes in all)"
    detail = f"{plural(len(withdrawn), 'claimed parameter tensor')} refuted and withdrawn ({_shorten(sorted(withdrawn))}); {left}"
    return _failed(max(errors), findings, detail)


def _passed_detail(probe: ScalingProbe, report: AuditReport, draws: int, worst: float, tol: float) -> str:
    groups, individuals = _claims(report)
    return (f"{probe.forwards} float64 train-mode forward passes (normalization eps {TINY_EPS:g}): "
            f"{plural(len(groups), 'group')} by independent factors in {plural(draws, 'draw')}, "
            f"{len(individuals)} more individually-SI {'parameter' if len(individuals) == 1 else 'parameters'} "
            f"by independent factors; max relative error {worst:.1e} (tolerance {tol:g})")


def _claims(report: AuditReport) -> tuple[list[_Claim], list[_Claim]]:
    groups = _group_claims(report)
    return groups, _individual_claims(report, groups)


def _eps_refutations(probe: ScalingProbe, report: AuditReport) -> dict[str, str]:
    """Hand-written eps that is not small against its statistic in the confirmation copy."""
    out: dict[str, str] = {}
    for site in report.hand_written_eps:
        ratio = probe.eps_ratios.get(site.eps)
        if ratio is not None and ratio > EPS_RATIO_LIMIT:
            for name in site.params:
                if report.by_name(name).si:
                    out[name] = (f"refuted numerically: the hand-written eps {site.eps:g} in {site.module or 'the model'} "
                                 f"is {ratio:.2g} of the statistic it is added to (limit {EPS_RATIO_LIMIT:g})")
    return out


def drop_claims(report: AuditReport, refuted: dict[str, str]) -> None:
    """Withdraw claims without a static analysis to re-solve: refuted parameters become not SI,
    and the groups they were in lose them."""
    report.parameters = [replace(p, si=False, individually_si=False, group=None, reason=refuted[p.name])
                         if p.name in refuted else p for p in report.parameters]
    report.groups = [replace(g, members=tuple(m for m in g.members if m not in refuted)) for g in report.groups]


def _culprits(failure: "_Failure", groups: list[_Claim]) -> set[str]:
    """A failing group claim withdraws the whole group (its members stand or fall together)."""
    full = {c.label: c.members for c in groups}
    return {name for c in failure.claims for name in full.get(c.label, c.members)}


def _refutation(failure: "_Failure") -> str:
    scaled = ", ".join(f"{c.label}{_members(c)} by {failure.factors[c.label]:.2f}" for c in failure.claims)
    how = f"changed the output by {failure.error:.2g} (relative, float64, train mode)" if math.isfinite(failure.error) \
        else "made the forward pass fail or the output non-finite"
    return f"refuted numerically: scaling {scaled} {how}"


def _members(claim: _Claim) -> str:
    return f" ({_shorten(claim.members)})" if claim.label.startswith("group") else ""


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
    """`draws` passes: the groups by independent factors, and in the last pass every individually-SI
    parameter by its own factor too (the rest of its group by the group's). The first failing pass
    is bisected to its culprits."""
    rng = random.Random(seed)
    errors: list[float] = []
    plans = [groups] * (draws - 1) + [_mixed(groups, individuals)]
    side: dict[str, bool] = {}  # claim -> scaled down last time: the next draw scales it the other way
    for claims in plans:
        if not claims:
            continue
        err, found = _check_draw(probe, claims, rng, tol, side)
        errors.append(err)
        if found:  # culprits known; another draw would only name them again
            return errors, found
    return errors, []


def _mixed(groups: list[_Claim], individuals: list[_Claim]) -> list[_Claim]:
    """Individually-SI parameters alone, and what is left of each group: if both claims hold, scaling
    each by its own factor leaves the output unchanged (SI holds at every parameter value)."""
    alone = {name for c in individuals for name in c.members}
    rest = [_Claim(c.label, tuple(n for n in c.members if n not in alone)) for c in groups]
    return individuals + [c for c in rest if c.members]


def _check_draw(probe: ScalingProbe, claims: list[_Claim], rng: random.Random,
                tol: float, side: dict[str, bool]) -> tuple[float, list[_Failure]]:
    """One pass with an independent factor per claim; on failure, bisect to the culprits."""
    factors = {c.label: draw_factor(rng, below=not side[c.label] if c.label in side else None) for c in claims}
    side.update({label: c < 1 for label, c in factors.items()})

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


def _failed(error: float, findings: list[Finding], withdrawn: str) -> tuple[Verification, list[Finding]]:
    detail = "; ".join([f.message for f in findings] + ([withdrawn] if withdrawn else []))
    return Verification("failed", error, detail), findings
