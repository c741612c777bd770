"""The conversion pipeline: config -> TrainingPlan -> ConvertedPlan -> written config (same format).

    read (format adapter) -> exactness verdict (one rule table) -> which parameters are SI
    (--model audit | --lock | audit at start) -> TEXP phases/horizons (schedule engine) -> write

Each row of configs/formats.py says how its converted config is written: rewritten in the same format,
a new config inheriting it (mmengine, detectron2), or the explr-native plan, generically ("plan": a
reader without a framework integration gets it for free).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from explr.configs.adapter import ReadOptions
from explr.configs.formats import Detected, detect
from explr.configs.hydra_compose import composed
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, UnsupportedError
from explr.findings import Finding
from explr.plan import TrainingPlan
from explr.rules.config import config_findings
from explr.schedule.analysis import ScheduleAnalysis, analyze
from explr.schedule.closed_form import phase_table
from explr.schedule.horizons import Assumptions, horizons
from explr.schedule.phantom import SGDHyper, Trace
from explr.wording import plural

SCHEMA = "explr.convert/1"
ADAPTIVE = ("adam", "adamw", "rmsprop")


# Config rules (rules/config.py, one source of truth) whose setup has no exact conversion (docs/theory.md §5).
# By code, not severity: EXP204 (EMA/SWA) defaults to a warning as a lint, yet it still breaks exactness.
NOT_EXACT = frozenset({"EXP201", "EXP202", "EXP203", "EXP204"})


@dataclass(frozen=True, slots=True)
class SIInfo:
    """Which parameters are scale-invariant, and how that was decided."""

    how: str  # "model" (audited now) | "lock" (recorded audit) | "names" (given) | "audit-at-start"
    names: tuple[str, ...] | None = None
    lock: str | None = None
    model: str | None = None

    def describe(self) -> str:
        return {"model": f"audited {self.model} now: {plural(len(self.names or ()), 'SI parameter')}",
                "lock": f"from the recorded audit {self.lock}",
                "names": f"{plural(len(self.names or ()), 'SI parameter')} given by name",
                "audit-at-start": "not known yet: the written config makes the runtime audit the model on the "
                                  "first training batch"}[self.how]


@dataclass(slots=True)
class ConvertedPlan:
    plan: TrainingPlan
    detected: Detected
    source: ConfigSource
    si: SIInfo
    exact: bool
    not_exact_because: list[str]
    analysis: ScheduleAnalysis
    findings: list[Finding] = field(default_factory=list)  # all config-rule findings (EXP2xx) of the plan

    @property
    def approximate(self) -> bool:
        return not self.exact

    @property
    def si_weight_decay(self) -> float:
        return self.plan.decay.other

    def to_json(self) -> dict:
        plan, lr = self.plan, self.plan.lr
        return {
            "schema": SCHEMA, "format": self.detected.name,
            "source": {"lr": lr.base_lr, "momentum": plan.momentum, "weight_decay": plan.weight_decay,
                       "nesterov": plan.nesterov, "milestones_iter": list(lr.milestones), "gamma": lr.gamma,
                       "warmup_iters": lr.warmup_iters, "total_iters": lr.total_iters,
                       "locations": {k: str(v) for k, v in plan.locations.items()}},
            "iters_per_epoch": plan.iters_per_epoch, "exact": self.exact,
            "not_exact_because": list(self.not_exact_because),
            "phases": [{"start_iter": p.start_iter, "end_iter": p.end_iter, "base_lr": p.base_lr,
                        "lr_start": p.converted_lr_start, "lr_end": p.converted_lr_end,
                        "growth_per_epoch": p.growth_per_epoch} for p in self.analysis.phases],
            "horizons": {k: {**h.to_json(), "epoch": self.analysis.epoch_of(h.step)}
                         for k, h in self.analysis.horizons.items()},
            "findings": [{**f.to_json(), "location": str(f.location) if f.location else None}
                         for f in self.findings],
        }


def deviations(plan: TrainingPlan, found: list[Finding] | None = None) -> list[tuple[str, str]]:
    """(location, reason) of every way this setup departs from the exact conversion: its NOT_EXACT findings."""
    found = config_findings(plan) if found is None else found
    return [(str(f.location) if f.location else plan.path, f"{f.message} [{f.code}]")
            for f in found if f.code in NOT_EXACT]


def _hyper(plan: TrainingPlan) -> SGDHyper:
    momentum = 0.0 if plan.optimizer in ADAPTIVE else plan.momentum
    return SGDHyper(momentum, plan.dampening if momentum else 0.0, plan.decay.other,
                    plan.nesterov and plan.optimizer == "sgd")


def _adaptive_analysis(plan: TrainingPlan, hyper: SGDHyper) -> ScheduleAnalysis:
    """Adam family (approximate): s_t = Π(1-η_t λ) and LR η_t/s_t, as explr.TEXP runs it."""
    lrs, converted, scales, s = [], [], [], 1.0
    for i in range(plan.lr.total_iters):
        lr = plan.lr.lr_at(i)
        s *= 1.0 - lr * hyper.weight_decay
        lrs.append(lr)
        converted.append(lr / s)
        scales.append(s)
    run = Trace(lrs, converted, scales)
    ipe, keep = plan.iters_per_epoch, 1.0 - plan.lr.base_lr * hyper.weight_decay
    phases = [dataclasses.replace(p, growth_per_epoch=None if p.growth_per_epoch is None or not ipe
                                  else (1.0 - p.base_lr * hyper.weight_decay) ** -ipe)
              for p in phase_table(plan.lr, hyper, ipe, run)]
    return ScheduleAnalysis(plan.lr, hyper, ipe, Assumptions(), run, keep, 1.0 / keep,
                            keep ** -ipe if ipe else None, phases, horizons(run, hyper))


def analysis_of(plan: TrainingPlan) -> ScheduleAnalysis:
    hyper = _hyper(plan)
    try:
        if plan.optimizer in ADAPTIVE:
            return _adaptive_analysis(plan, hyper)
        return analyze(plan.lr, hyper, plan.iters_per_epoch)
    except ValueError as exc:
        raise ConfigError(f"{plan.path}: {exc}") from None


def si_info(model: str | None, lock: str | None, names: Any = None) -> SIInfo:
    """--model audits now, --lock reads a recorded audit, else the runtime audits at start."""
    if sum(x is not None for x in (model, lock, names)) > 1:
        raise ConfigError("give only one of --model and --lock: both say which parameters are scale-invariant")
    if names is not None:
        return SIInfo("names", tuple(names))
    if lock is not None:
        from explr.lock import read_lock  # lazy: only this path needs the lock module

        return SIInfo("lock", tuple(read_lock(lock).si), lock=str(lock))
    if model is not None:
        from explr.audit.api import audit
        from explr.load import load_model

        loaded = load_model(model)
        report = audit(loaded.model, loaded.example_inputs)
        return SIInfo("model", tuple(report.si_names), model=model)
    return SIInfo("audit-at-start")


def convert(config: str, *, format: str | None = None, options: ReadOptions = ReadOptions(),
            model: str | None = None, lock: str | None = None, si: Any = None,
            approximate: bool = False) -> ConvertedPlan:
    """Read `config`, decide exactness (UnsupportedError unless `approximate`), and convert the schedule.

    `si` (API only): an iterable of SI parameter names, instead of `model`/`lock`.
    """
    source = composed(ConfigSource.load(config))  # a Hydra defaults list: what Hydra composes from it
    detected = detect(source, format)
    plan = detected.adapter.read(source, options)
    findings = config_findings(plan)
    found = deviations(plan, findings)
    if found and not approximate:
        where, reason = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsupportedError(f"{where}: no exact conversion: {reason}{more}; or pass --approximate to convert "
                               "anyway (the summary says what deviates)")
    info = si_info(model, lock, si)
    return ConvertedPlan(plan, detected, source, info, not found, [r for _, r in found], analysis_of(plan),
                         findings)
