"""TrajectoryReport: what the check measured, step by step, and its JSON form (schema explr.check/1)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

SCHEMA = "explr.check/1"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """Step t (1-based): values after the optimizer step t of both runs."""

    step: int
    rel_deviation: float  # ||y~ - y|| / ||y|| of the train-mode outputs on the fixed probe batch
    loss_original: float  # training loss of step t (before its update)
    loss_converted: float
    lrs_original: dict[str, float]  # LR each param group used in step t
    lrs_converted: dict[str, float]
    norm_ratio: float | None  # ||θ~_SI|| / ||θ_SI|| measured
    predicted_ratio: float | None  # 1 / s_t from the phantom scalar
    noise: float | None = None  # original vs original with 1-ulp perturbed init (when measured)
    clipped: tuple[bool, bool] = (False, False)  # gradient clipping was active (original, converted)
    zero_grad_fraction: tuple[float, float] | None = None  # SI gradient elements exactly 0 (low precision only)
    probe_original: tuple[float, ...] = ()  # a few probe outputs of each run (the plot's overlapping curves)
    probe_converted: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class EvalModeResult:
    """Eval-mode outputs use BatchNorm running statistics: EMAs over iterates of different scale."""

    running_stats: bool  # the model has normalization layers with running statistics
    deviation_before: float | None  # eval-mode output deviation with the statistics as trained
    deviation_after: float | None  # ... after recomputing them on `batches` batches in both runs
    batches: int
    expect: str  # "as_trained" | "recalibrated" | "same_as_train_mode"
    advice: str

    def to_json(self) -> dict:
        return {"running_stats": self.running_stats, "deviation_before_recalibration": self.deviation_before,
                "deviation_after_recalibration": self.deviation_after, "recalibration_batches": self.batches,
                "expect": self.expect, "advice": self.advice}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Why a check failed: where the deviation took off and the causes that match the evidence."""

    first_exceeded_step: int | None  # first step with deviation > tolerance
    jump_step: int | None  # first step where the deviation jumped by >= 100x over its running maximum
    jump_from: float | None
    jump_to: float | None
    causes: tuple[tuple[str, str], ...]  # (code, explanation); empty when none could be told

    def lines(self) -> list[str]:
        out = []
        if self.jump_step is not None:
            out.append(f"deviation jumped at step {self.jump_step}: {self.jump_from:.2e} -> {self.jump_to:.2e}")
        if self.first_exceeded_step is not None:
            out.append(f"deviation first exceeded the tolerance at step {self.first_exceeded_step}")
        if not self.causes:
            out.append("likely cause: none of the known causes (Nesterov, non-SGD optimizer, clipping, a parameter "
                       "wrongly treated as SI, low-precision underflow) matched the evidence")
        out += [f"likely cause ({code}): {why}" for code, why in self.causes]
        return out

    def to_json(self) -> dict:
        return {"first_exceeded_step": self.first_exceeded_step, "jump_step": self.jump_step,
                "jump_from": self.jump_from, "jump_to": self.jump_to,
                "causes": [{"code": c, "explanation": w} for c, w in self.causes]}


@dataclass(slots=True)
class TrajectoryReport:
    model: str
    config: str
    format: str
    device: str
    dtype: str
    steps: int
    passed: bool
    max_rel_deviation: float
    tolerance: float
    tolerance_reason: str
    noise_floor: float | None
    compression: list[str]  # the human mapping of schedule events onto check steps
    phases_hit: int
    phases_total: int
    si_params: int
    total_params: int
    growth_per_epoch: float | None  # closed form of the first constant phase (the blog's 1.481)
    iters_per_epoch: int | None
    records: list[StepRecord] = field(default_factory=list)
    eval_mode: EvalModeResult | None = None
    diagnosis: Diagnosis | None = None
    notes: list[str] = field(default_factory=list)  # approximations and choices stated in the output
    wall_seconds: float = 0.0
    verdict: str = ""  # "pass" | "fail" | "inconclusive" (tolerance.verdict); "" means: read `passed`
    noise_jump_step: int | None = None  # the step where the 1-ulp twin jumped (a discrete event, not round-off)
    noise_jump_max: float | None = None  # the twin's largest deviation from that step on

    @property
    def outcome(self) -> str:
        return self.verdict or ("pass" if self.passed else "fail")

    @property
    def final_norm_ratio(self) -> tuple[float | None, float | None]:
        """(measured ||θ~||/||θ||, predicted 1/s_T) at the last step."""
        last = self.records[-1] if self.records else None
        return (last.norm_ratio, last.predicted_ratio) if last else (None, None)

    @property
    def max_norm_ratio_error(self) -> float | None:
        """Largest relative gap between measured and predicted weight-norm growth over the run."""
        gaps = [abs(r.norm_ratio / r.predicted_ratio - 1.0) for r in self.records
                if r.norm_ratio is not None and r.predicted_ratio]
        return max(gaps) if gaps else None

    def to_json(self) -> dict:
        measured, predicted = self.final_norm_ratio
        return {
            "schema": SCHEMA,
            "passed": self.passed,
            "max_rel_deviation": _finite(self.max_rel_deviation),
            "tolerance": self.tolerance,
            "noise_floor": self.noise_floor,
            "verdict": self.outcome,
            "noise_jump": ({"step": self.noise_jump_step, "max_noise": self.noise_jump_max}
                           if self.noise_jump_step is not None else None),
            "steps": self.steps,
            "device": self.device,
            "dtype": self.dtype,
            "eval_mode": self.eval_mode.to_json() if self.eval_mode else {},
            "model": self.model,
            "config": self.config,
            "format": self.format,
            "tolerance_reason": self.tolerance_reason,
            "schedule_mapping": self.compression,
            "phases_hit": self.phases_hit,
            "phases_total": self.phases_total,
            "si_params": self.si_params,
            "total_params": self.total_params,
            "growth_per_epoch": self.growth_per_epoch,
            "weight_norm_growth": {"measured": measured, "predicted": predicted,
                                   "max_rel_error": self.max_norm_ratio_error},
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "notes": self.notes,
            "per_step": [{"step": r.step, "rel_deviation": _finite(r.rel_deviation),
                          "loss_original": _finite(r.loss_original), "loss_converted": _finite(r.loss_converted),
                          "lrs_original": r.lrs_original, "lrs_converted": r.lrs_converted,
                          "norm_ratio": r.norm_ratio, "predicted_ratio": r.predicted_ratio,
                          "noise": r.noise} for r in self.records],
        }


def _finite(value: float) -> float | None:
    """JSON has no inf/nan: a non-finite measurement is written as null."""
    return value if math.isfinite(value) else None
