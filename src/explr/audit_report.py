"""AuditReport: the value the audit produces and everything downstream (convert, check, rules, lock) reads."""
from __future__ import annotations

from dataclasses import dataclass, field

from explr.findings import Finding, Location, Severity
from explr.wording import percent, plural

SCHEMA = "explr.audit/1"


@dataclass(frozen=True, slots=True)
class ParamVerdict:
    name: str  # as in model.named_parameters()
    shape: tuple[int, ...]
    numel: int
    si: bool  # member of the chosen maximal jointly scale-invariant set
    individually_si: bool
    group: int | None  # id of the joint group it belongs to (None when not SI)
    reason: str  # one line naming module and op


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    members: tuple[str, ...]
    normalizers: tuple[str, ...]  # module names of the normalizations that make it SI


@dataclass(frozen=True, slots=True)
class Verification:
    status: str  # "passed" | "failed" | "skipped"
    max_rel_error: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OpaquePart:
    """A submodule the capture could not see into: its parameters are not SI."""

    module: str
    why: str
    params: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnknownOp:
    """An op with no transfer rule: its inputs were conservatively constrained to degree 0."""

    op: str
    module: str
    detail: str = ""  # e.g. "its rule failed at node add_1 (module m, model.py:12 `...`): ..."


@dataclass(frozen=True, slots=True)
class Normalizer:
    """A normalization found in the graph (facts for rules: eps, affine parameters)."""

    module: str
    kind: str  # "batch_norm" | "layer_norm" | "group_norm" | "instance_norm" | "weight_norm" | "weight_standardization" | ...
    eps: float | None
    affine: tuple[str, ...]  # parameter names of its gamma/beta, if any
    # Variance of its input on the example batch (over the normalized dims, averaged), when recorded;
    # rule EXP108 compares eps with it. None: not recorded (the rule then says nothing).
    input_var: float | None = None


@dataclass(frozen=True, slots=True)
class HandWrittenEps:
    """`statistic + eps` written by hand (x / sqrt(var + 1e-5)): read as the statistic, like a
    normalization's eps, which holds while eps is small against the statistic."""

    eps: float
    module: str
    params: tuple[str, ...]  # the parameters whose invariance relies on it


@dataclass(slots=True)
class AuditReport:
    model: str
    parameters: list[ParamVerdict]
    groups: list[Group]
    findings: list[Finding] = field(default_factory=list)
    verification: Verification = field(default_factory=lambda: Verification("skipped"))
    inputs: str = ""  # how the example inputs were chosen, stated in the output
    mode: str = "train"
    # Facts the rules (explr.rules) turn into findings:
    opaque: list[OpaquePart] = field(default_factory=list)
    unknown_ops: list[UnknownOp] = field(default_factory=list)
    normalizers: list[Normalizer] = field(default_factory=list)
    hand_written_eps: list[HandWrittenEps] = field(default_factory=list)
    inert: list[str] = field(default_factory=list)  # params a following normalization cancels (bias before BN)
    output_params: list[str] = field(default_factory=list)  # non-SI params that reach the output unnormalized (head)
    module_locations: dict[str, Location] = field(default_factory=dict)  # module name -> where defined/called

    @property
    def si_names(self) -> list[str]:
        return [p.name for p in self.parameters if p.si]

    def by_name(self, name: str) -> ParamVerdict:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def worst_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def summary(self) -> str:
        n_si = sum(p.si for p in self.parameters)
        total = sum(p.numel for p in self.parameters) or 1
        si_elems = sum(p.numel for p in self.parameters if p.si)
        joint = sum(1 for g in self.groups if len(g.members) > 1)
        return (f"{n_si}/{len(self.parameters)} parameter tensors scale-invariant "
                f"({percent(si_elems, total)} of weights), {plural(joint, 'joint group')}")

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "mode": self.mode,
            "parameters": [
                {"name": p.name, "shape": list(p.shape), "numel": p.numel, "si": p.si,
                 "individually_si": p.individually_si, "group": p.group, "reason": p.reason}
                for p in self.parameters
            ],
            "groups": [{"id": g.id, "members": list(g.members), "normalizers": list(g.normalizers)}
                       for g in self.groups],
            "findings": [f.to_json() for f in self.findings],
            "verification": {"status": self.verification.status,
                             "max_rel_error": self.verification.max_rel_error},
        }
