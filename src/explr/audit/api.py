"""`audit(model, example_inputs)`: the library entry point the CLI is a thin shell over.

capture (fx, train mode, on a private copy) -> degrees -> solve -> AuditReport, then the
numeric confirmation (explr.audit.verify) and the model rules (explr.rules.model).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from explr.audit import explain
from explr.audit.borrow import borrowed_copy
from explr.audit.capture import Capture, capture, tensor_leaves
from explr.audit.degrees import analyse
from explr.audit.solve import Solution, solve
from explr.audit.transfer import Constraint, Ctx, Origin
from explr.audit_report import AuditReport, Verification
from explr.errors import LoadError, TraceError, quote_error


def audit(model: nn.Module, example_inputs: tuple, *, verify: bool = True, model_name: str = "",
          inputs_note: str = "") -> AuditReport:
    """Audit which parameters of `model` are scale-invariant in train mode (the model is not modified).

    The report carries only confirmed claims: whatever the numeric confirmation refutes is
    withdrawn, together with everything whose invariance depended on it (EXP109 says so)."""
    if not isinstance(model, nn.Module):
        raise LoadError(f"audit() needs a torch.nn.Module, got {type(model).__name__}")
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    meta = _on_meta(model)
    analysis = static_analysis(model, inputs, model_name=model_name or type(model).__name__, meta=meta)
    report = analysis.report
    report.inputs = inputs_note
    if meta:
        report.verification = Verification("skipped", None, "meta device: weights are not allocated, "
                                                            "numeric check skipped")
    elif verify:
        from explr.audit.verify import verify_report
        report.verification, found = verify_report(model, inputs, report, demote=analysis.demote)
        report.findings.extend(found)
    from explr.rules.model import model_findings
    report.findings.extend(model_findings(report))
    return report


@dataclass
class Analysis:
    """The static analysis behind a report: re-solving it withdraws refuted claims consistently."""

    report: AuditReport
    ctx: Ctx
    params: list[tuple[str, torch.Tensor]]

    def demote(self, report: AuditReport, refuted: dict[str, str]) -> None:
        """Force the refuted parameters to 0 and solve again: groups that depended on them lose
        their claim too (the solver's reasons name the refutation)."""
        index = {n: i for i, (n, _) in enumerate(self.params)}
        for name, why in refuted.items():
            self.ctx.constraints.append(Constraint({index[name]: 1}, Origin("refuted", name, "", why)))
        sol = solve(len(self.params), [p.numel() for _, p in self.params], self.ctx.constraints)
        _fill(report, self.params, sol, self.ctx)


def static_report(model: nn.Module, inputs: tuple, *, model_name: str, meta: bool) -> AuditReport:
    """The static part: capture, degrees, solve; no verification and no findings."""
    return static_analysis(model, inputs, model_name=model_name, meta=meta).report


def static_analysis(model: nn.Module, inputs: tuple, *, model_name: str, meta: bool) -> Analysis:
    """Capture, degrees, solve, on a copy of the model that borrows its parameters (borrow.py)."""
    if meta:
        inputs = tuple(t.to("meta") if isinstance(t, torch.Tensor) else t for t in inputs)
    with borrowed_copy(model) as work:
        work.train()
        cap = _capture(work, inputs, meta)
        params: list[tuple[str, torch.Tensor]] = list(work.named_parameters())
        ctx, sol = analyse_capture(cap, params)
        report = AuditReport(
            model=model_name, parameters=[], groups=[],
            opaque=cap.opaque_parts(),
            unknown_ops=explain.unique_unknown_ops(ctx.unknown_ops),
            normalizers=explain.unique_normalizers(ctx.normalizers),
            module_locations=explain.module_locations(work),
        )
    _fill(report, params, sol, ctx)
    return Analysis(report, ctx, params)


def _capture(work: nn.Module, inputs: tuple, meta: bool) -> Capture:
    try:
        cap = capture(work, inputs)
    except TraceError as exc:
        _check_accepts(work, inputs, meta)  # inputs the model rejects: say that, not how capture failed
        if meta:
            raise TraceError(f"{exc}; on the meta device a data-dependent module cannot run: "
                             f"audit the model on a real device") from exc
        raise
    if cap.root_opaque is not None:
        _check_accepts(work, inputs, meta)
    return cap


def _fill(report: AuditReport, params: list[tuple[str, torch.Tensor]], sol: Solution, ctx: Ctx) -> None:
    """The verdicts and the facts that depend on the solution."""
    names = [n for n, _ in params]
    report.parameters, report.groups = explain.verdicts(params, sol, ctx)
    report.inert = explain.inert_params(sol, ctx, names)
    report.output_params = explain.output_params(sol, names)
    report.hand_written_eps = explain.hand_written_eps(ctx.eps_sites, sol, names)


def analyse_capture(cap: Capture, params: list[tuple[str, torch.Tensor]]) -> tuple[Ctx, Solution]:
    """Degrees and constraints of a capture, plus the parameters it cannot vouch for, solved."""
    index = {n: i for i, (n, _) in enumerate(params)}
    ctx = analyse(cap.graph, index)
    for part in cap.opaque_parts():
        for name in part.params:
            ctx.constraints.append(Constraint({index[name]: 1}, Origin("opaque", f"opaque: {part.why}", part.module)))
    for i in index.values():
        if i not in ctx.reached:
            ctx.constraints.append(Constraint({i: 1}, Origin(
                "unreached", "not used by the captured forward (used only through a hook, or unused)", "")))
    return ctx, solve(len(params), [p.numel() for _, p in params], ctx.constraints)


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _check_accepts(model: nn.Module, inputs: tuple, meta: bool) -> None:
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as exc:  # noqa: BLE001 - the model's own error, quoted in one line
        if meta and "meta" in str(exc):
            return  # an op that needs real data (a data-dependent branch): capture reports it precisely
        shapes = ", ".join(str(tuple(t.shape)) for t in tensor_leaves(inputs)) or "()"
        raise TraceError(f"model rejected the example inputs of shape {shapes}: {quote_error(exc)}; "
                         f"{_forward_error_hint(exc)}") from exc


# Errors whose wording says the input's shape (or number of inputs) is what the model did not expect.
_SHAPE_ERROR = re.compile(r"shape|size|dimension|\bdims?\b|channels|mat[12]\b|expected .*input|input .*expected|"
                          r"positional argument|out of (range|bounds)|too small|kernel|unpack", re.IGNORECASE)


def _forward_error_hint(exc: BaseException) -> str:
    """Point at --input-shape only when the error is about the inputs; otherwise the model code failed."""
    if isinstance(exc, (RuntimeError, ValueError, IndexError, TypeError)) and _SHAPE_ERROR.search(str(exc)):
        return "pass --input-shape (or define example_inputs() in the model file)"
    return "the model's forward failed on valid-looking inputs: fix the model (rerun with --debug for the traceback)"
