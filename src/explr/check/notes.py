"""What a check states beside its verdict: what keeps the conversion from exact, the config findings, the
horizons a full run would reach, the eps it tightened (tighten_eps does it), the steps a GradScaler skipped."""
from __future__ import annotations

from torch import nn

from explr.audit_report import AuditReport
from explr.check import setups
from explr.check.runner import Run
from explr.check.setups import SIChoice
from explr.configs.convert import NOT_EXACT
from explr.plan import TrainingPlan
from explr.rules.config import config_findings
from explr.schedule.analysis import ScheduleAnalysis
from explr.wording import plural


def tighten_eps(base: nn.Module, si: SIChoice, keep_eps: bool) -> list[str]:
    """Set the normalization eps of `base` to EXACT_EPS (unless kept); the note that says what was done."""
    if keep_eps:
        return ["normalization eps kept: deviations include its O(eps/σ²) blur of scale invariance"]
    extra = {n.module for n in si.normalizers} if isinstance(si, AuditReport) else set()
    count = setups.tighten_norm_eps(base, extra)
    if not count:
        return []
    return [f"normalization eps set to {setups.EXACT_EPS:g} in both runs ({plural(count, 'layer')}) so the check "
            "measures the conversion, not the O(eps/σ²) blur of scale invariance the theory accepts "
            "(--keep-eps to keep it)"]


# (horizon key, precisions it concerns, what happens) — from the schedule alone (schedule/horizons.py)
HORIZON_NOTES = (
    ("grads_underflow_float16_loss_scaled", ("16", "16-mixed"),
     "converted SI gradients underflow float16 even with loss scaling (AMP underflow)"),
    ("grads_underflow_float16", ("16-true",), "converted SI gradients underflow float16 (no loss scaling)"),
    ("weights_overflow_float32", ("32", "16-mixed", "bf16-mixed"), "converted SI weights overflow float32"),
)


def config_notes(plan: TrainingPlan, not_exact: list[str], analysis: ScheduleAnalysis) -> list[str]:
    """What keeps the conversion from exact, then the other config findings `explr convert` shows, then the
    horizons the full run would reach."""
    findings = [f.one_line() for f in config_findings(plan) if f.code not in NOT_EXACT]
    return [f"not exact: {why}" for why in not_exact] + findings + horizon_notes(plan, analysis)


def horizon_notes(plan: TrainingPlan, analysis: ScheduleAnalysis) -> list[str]:
    """What the full-length run would hit that a short check cannot show; renormalization avoids both."""
    notes = []
    for key, precisions, what in HORIZON_NOTES:
        horizon = analysis.horizons.get(key)
        if plan.precision in precisions and horizon is not None and horizon.step is not None and horizon.within_run:
            epoch = f" (epoch {horizon.step / plan.iters_per_epoch:.0f})" if plan.iters_per_epoch else ""
            notes.append(f"the full run (precision {plan.precision}): {what} from iteration {horizon.step:,}{epoch}; "
                         "use explr.TEXP(renormalize=...) to keep them in range")
    return notes


def amp_notes(runs: list[Run]) -> list[str]:
    skipped = {run.name: run.skipped for run in runs if run.scaler is not None}
    if not skipped:
        return []
    return ["GradScaler skipped steps (overflow): " + ", ".join(f"{n} {k}" for n, k in skipped.items())]
