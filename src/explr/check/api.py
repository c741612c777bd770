"""`explr.check(model, config)`: train the original and the converted setup side by side.

Flow: load model -> read config (TrainingPlan) -> audit (SI set) -> compress the schedule into the
horizon -> two (float32/GPU: three) runs in lockstep on the same batches -> tolerance -> eval mode ->
diagnosis when it fails -> TrajectoryReport.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from explr.audit_report import AuditReport
from explr.check import setups
from explr.check.budget import DEFAULT_BUDGET, MIN_SIDE, DataSize, StepPlan, data_sizes, plan_steps, time_step
from explr.check.compress import Compression, compress
from explr.check.data import Batch, BatchStream, DataSource, data_source, first_batch, shrunk_images
from explr.check.diagnose import Evidence, diagnose
from explr.check.evalmode import RECALIBRATION_BATCHES, compare_eval_mode
from explr.check.notes import amp_notes, config_notes, tighten_eps
from explr.check.report import Diagnosis, EvalModeResult, StepRecord, TrajectoryReport
from explr.check.runner import Amp, Run, RunnerOptions, run_lockstep, train_step
from explr.check.setups import SIChoice
from explr.check.tolerance import (NOISE_MULTIPLIER, PASS, NoiseFloor, Tolerance, needs_noise_floor, noise_floor_of,
                                    tolerance_for, verdict)
from explr.configs.adapter import ReadOptions
from explr.configs.convert import ConvertedPlan, analysis_of, convert, deviations
from explr.errors import ConfigError, ExplrError, UnsupportedError
from explr.model_copy import private_copy
from explr.plan import TrainingPlan
from explr.schedule.analysis import ScheduleAnalysis
from explr.schedule.groups import SI_TAG

DEFAULT_STEPS = 200  # the most steps the budget picks
MIN_TIMED_BATCH = 2  # the timing step runs at this batch first (cheap), then extrapolates
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}
AMPS = {"bfloat16": Amp(torch.bfloat16, grad_scaler=False), "float16": Amp(torch.float16, grad_scaler=True)}


@dataclass(frozen=True)
class CheckOptions:
    steps: int | None = None  # None: as many as fit the budget (at most DEFAULT_STEPS)
    compress: bool = True
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "float64"
    batch_size: int = 16  # synthetic batch size (the config's batch size only sets iterations per epoch)
    probe_size: int = 4  # the fixed probe batch: small, since it is run by every run at every step
    seed: int = 0
    approximate: bool = False
    tolerance: float | None = None  # override the justified default
    noise_multiplier: float = NOISE_MULTIPLIER
    data: str | None = None  # module:function giving (inputs, target) batches
    keep_eps: bool = False  # run with the model's normalization eps (deviation then includes O(eps/σ²))
    budget: float | None = DEFAULT_BUDGET  # seconds for the whole check when steps is None; None: no limit
    amp: str | None = None  # autocast dtype: "bfloat16", or "float16" with a GradScaler (float32 weights)

    def __post_init__(self) -> None:
        for flag, value in (("--steps", self.steps), ("--check-batch-size", self.batch_size),
                            ("--budget", self.budget), ("--tolerance", self.tolerance)):
            if value is not None and not (value > 0 and math.isfinite(value)):  # 0 would read as "not given"
                raise ExplrError(f"{flag} {value} must be a finite number > 0")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ExplrError(f"--device {name!r} is not one of auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ExplrError("--device cuda was requested but no CUDA device is available to torch; "
                         "use --device cpu (or auto)")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ExplrError(f"--dtype {name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def resolve_amp(name: str | None, dtype: torch.dtype) -> Amp | None:
    if name is None:
        return None
    if name not in AMPS:
        raise ExplrError(f"--amp {name!r} is not one of {', '.join(AMPS)}")
    if dtype != torch.float32:
        raise ExplrError(f"--amp {name} keeps float32 master weights, as torch AMP does: use --dtype float32")
    return AMPS[name]


def read_converted(config: str | TrainingPlan, fmt: str | None, options: ReadOptions,
                   approximate: bool) -> tuple[TrainingPlan, list[str], ScheduleAnalysis]:
    """The plan, what keeps it from an exact conversion, and its schedule analysis — via explr convert's
    own pipeline, so the check refuses exactly what `explr convert` refuses (UnsupportedError)."""
    if not isinstance(config, TrainingPlan):
        converted = convert(config, format=fmt, options=options, approximate=approximate)
        return converted.plan, converted.not_exact_because, converted.analysis
    found = deviations(config)
    if found and not approximate:
        raise UnsupportedError(f"{found[0][0]}: no exact conversion: {found[0][1]}; pass --approximate to check "
                               "the approximate conversion anyway (the check shows how far it deviates)")
    return config, [reason for _, reason in found], analysis_of(config)


SIGiven = AuditReport | str | os.PathLike[str] | Iterable[str] | None  # check(si=...): see check()


def _si_and_audit(model: nn.Module, inputs: tuple, si: SIGiven, name: str) -> tuple[SIChoice, set[str] | None]:
    """The SI set to convert (an AuditReport, or names taken as given) and the audit's proven set, if any."""
    if isinstance(si, AuditReport):
        return si, set(si.si_names)
    if isinstance(si, (str, os.PathLike)):
        return str(si), None  # a lock file: explr.param_groups reads it and checks it fits the model
    if si is not None:
        return list(si), None
    from explr.audit.api import audit

    report = audit(model, inputs, verify=True, model_name=name)
    if not report.si_names:
        raise ExplrError(f"{name}: the audit found no scale-invariant parameter (no normalization follows any "
                         "weight), so weight decay has no exponential-LR form here: nothing to convert or check")
    return report, set(report.si_names)


def _audit_inputs(inputs: tuple, data: DataSource, si: SIGiven) -> tuple[tuple, list[str]]:
    """Under a time budget, a large synthetic image is audited at a quarter of its side (at least MIN_SIDE):
    the SI set is a property of the graph, and the budget may train on smaller images anyway."""
    if si is not None or data.side is None or data.side // 4 < MIN_SIDE:
        return inputs, []
    shrunk = shrunk_images(inputs, 4)
    side = data.side // 4
    return shrunk, [f"audited on {side}x{side} synthetic inputs (the model's own are {data.side} wide) to stay "
                    "within the time budget; scale invariance does not depend on the input size"]


@dataclass(frozen=True)
class _Setup:
    """Everything a check run needs once the inputs are read and validated."""

    name: str
    plan: TrainingPlan
    options: CheckOptions
    device: torch.device
    dtype: torch.dtype
    amp: Amp | None
    growth_per_epoch: float | None  # closed form of the TEXP LR growth at the base LR (the blog's 1.481)
    where: str  # the data source, for messages

    @property
    def noise_twin(self) -> bool:
        """A third run (the 1-ulp twin) measures the noise floor: anything but float64 on CPU."""
        return needs_noise_floor(self.device, self.dtype) or self.amp is not None

    @property
    def precision(self) -> str:
        """What the runs compute in, e.g. "float32 + autocast float16 + GradScaler"."""
        precision = str(self.dtype).removeprefix("torch.")
        if self.amp is not None:
            precision += f" + autocast {str(self.amp.dtype).removeprefix('torch.')}"
            precision += " + GradScaler" if self.amp.grad_scaler else ""
        return precision


def _step_plan(setup: _Setup, base: nn.Module, data: DataSource, started: float) -> StepPlan:
    """Steps and data size: as given, or timed and fitted into the budget (budget.py)."""
    opts, runs = setup.options, 3 if setup.noise_twin else 2
    if opts.steps is not None or opts.budget is None:
        return StepPlan(opts.steps or DEFAULT_STEPS, opts.batch_size, math.nan, runs, 0.0, None)
    budget = opts.budget
    first = first_batch(data.make(DataSize(opts.batch_size)), base, data.where, setup.device, setup.dtype)
    sizes = data_sizes(first.inputs[0].shape[0], data.user, data.side)
    timed = sizes[0] if data.user else DataSize(min(MIN_TIMED_BATCH, sizes[0].batch))
    timing = setups.original_run("timing", private_copy(base), setup.plan, setup.plan.lr, setup.amp)

    def batch_of(size: DataSize) -> Batch:
        if size.shrink == 1:
            return first.head(size.batch)
        return first_batch(data.make(size), base, data.where, setup.device, setup.dtype)

    def step(size: DataSize) -> None:
        train_step(timing, batch_of(size), opts.seed, None)

    with torch.random.fork_rng(devices=[]):
        seconds = time_step(step, timed)
        available = budget - (time.perf_counter() - started)
        if timed != sizes[0] and seconds * sizes[0].cost(timed) * runs * 2 * DEFAULT_STEPS < available:
            timed, seconds = sizes[0], time_step(step, sizes[0])  # cheap: measure the real batch, not extrapolate
        plan = plan_steps(budget, time.perf_counter() - started, runs, DEFAULT_STEPS, sizes, timed, seconds)
        for _ in sizes:  # time the chosen size itself: fixed per-step costs make smaller inputs dearer than pixels say
            chosen = DataSize(plan.batch_size, plan.shrink)
            if chosen == timed:
                break
            timed, seconds = chosen, time_step(step, chosen)
            plan = plan_steps(budget, time.perf_counter() - started, runs, DEFAULT_STEPS, sizes, timed, seconds)
    return plan


def _load(model: str | nn.Module, example_inputs: tuple | None) -> tuple[nn.Module, tuple, str]:
    if isinstance(model, nn.Module):
        if example_inputs is None:
            raise ExplrError("check(model=nn.Module) needs example_inputs=(tensor, ...)")
        return model, tuple(example_inputs), type(model).__name__
    from explr.load import load_model

    loaded = load_model(model)
    return loaded.model, loaded.example_inputs, model


def _compression(plan: TrainingPlan, steps: int, enabled: bool) -> Compression:
    try:
        return compress(plan.lr, steps, enabled=enabled)
    except ValueError as exc:
        raise ConfigError(f"{plan.path}: {exc}") from None


def _build_runs(base: nn.Module, setup: _Setup, si: SIChoice, comp: Compression) -> tuple[list[Run], list[str]]:
    """The original, the converted and (setup.noise_twin) the 1-ulp twin run; the runtime's warnings."""
    plan, amp, approximate = setup.plan, setup.amp, setup.options.approximate
    original = setups.original_run("original", private_copy(base), plan, comp.schedule, amp)
    converted, warned = setups.converted_run(private_copy(base), plan, si, comp.schedule, approximate, amp)
    runs = [original, converted]
    if setup.noise_twin:
        twin = setups.perturbed_copy(base, amp.dtype if amp is not None else None)
        runs.append(setups.original_run("perturbed", twin, plan, comp.schedule, amp))
    return runs, warned


def check(model: str | nn.Module, config: str | TrainingPlan, *, example_inputs: tuple | None = None,
          options: CheckOptions = CheckOptions(), read_options: ReadOptions = ReadOptions(),
          format: str | None = None, si: SIGiven = None,
          on_step: Callable[[int, int], None] | None = None,
          log: Callable[[str], None] = lambda line: None) -> TrajectoryReport:
    """Train the original and the converted setup side by side; see the module docstring.

    `si`: None (audit the model), an AuditReport, a lock-file path, or parameter names to treat as SI (taken
    as given, e.g. to see what a wrong SI set does). `on_step(t, steps)` reports progress; `log(line)` receives
    diagnostics before training starts (the schedule mapping, the data source, notes).
    """
    started = time.perf_counter()
    device, dtype = resolve_device(options.device), resolve_dtype(options.dtype)
    amp = resolve_amp(options.amp, dtype)
    net, inputs, name = _load(model, example_inputs)
    plan, not_exact, analysis = read_converted(config, format, read_options, options.approximate)
    data = data_source(options.data, model if isinstance(model, str) else "", net, inputs, options.seed,
                       may_shrink=options.steps is None and options.budget is not None)
    growth = analysis.growth_per_epoch if plan.weight_decay > 0 else None
    setup = _Setup(name, plan, options, device, dtype, amp, growth, data.where)
    audit_inputs, audit_note = _audit_inputs(inputs, data, si)
    si_choice, audit_si = _si_and_audit(net, audit_inputs, si, name)
    base = private_copy(net).to(device=device, dtype=dtype)
    eps_note = tighten_eps(base, si_choice, options.keep_eps)
    notes = config_notes(plan, not_exact, analysis) + audit_note + eps_note
    prepared = _prepare(setup, base, data, si_choice, started, log)
    report = _train(setup, prepared, on_step)
    report.notes = notes + prepared.notes + amp_notes(prepared.runs)
    if not report.passed:
        report.diagnosis = _diagnosis(setup, report, prepared, audit_si)
    report.wall_seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Prepared:
    """The runs, built and ready to train on the chosen batches."""

    comp: Compression  # the schedule compressed into the chosen steps
    runs: list[Run]  # original, converted and, for a noise floor, the 1-ulp twin
    make_stream: BatchStream
    probe: Batch  # the fixed batch the last deviation is measured on
    notes: list[str]  # the step plan (under a budget) and the runtime's warnings


def _prepare(setup: _Setup, base: nn.Module, data: DataSource, si: SIChoice, started: float,
             log: Callable[[str], None]) -> _Prepared:
    """Fit the steps into the budget, compress the schedule into them, build the runs; log the plan."""
    step_plan = _step_plan(setup, base, data, started)
    comp = _compression(setup.plan, step_plan.steps, setup.options.compress)
    make_stream = data.make(DataSize(step_plan.batch_size, step_plan.shrink))
    probe = first_batch(make_stream, base, data.where, setup.device, setup.dtype).head(setup.options.probe_size)
    runs, warned = _build_runs(base, setup, si, comp)
    planned = [step_plan.describe()] if step_plan.budget is not None else []  # once the inputs proved valid
    for line in [*planned, *comp.describe(setup.plan.iters_per_epoch), f"data: {data.where}"]:
        log(line)
    return _Prepared(comp, runs, make_stream, probe, planned + warned)


def _train(setup: _Setup, prep: _Prepared, on_step: Callable[[int, int], None] | None) -> TrajectoryReport:
    """Train the runs in lockstep, set the tolerance from the noise floor, compare eval mode."""
    plan, comp, opts, runs = setup.plan, prep.comp, setup.options, prep.runs
    cuda = [torch.cuda.current_device()] if setup.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # the runs reseed the RNG every step: leave the caller's alone
        names, decay = setups.norm_set(runs[1])
        setups.attach_norm_set(runs, names)
        predicted = setups.predicted_ratios(plan, comp.schedule, decay, comp.steps)
        stream = (batch.to(setup.device, setup.dtype) for batch in prep.make_stream())
        runner_opts = RunnerOptions(comp.steps, opts.seed, plan.grad_clip_norm, predicted, setup.where)
        records = run_lockstep(runs, stream, prep.probe, runner_opts,
                               on_step=lambda t: on_step(t, comp.steps) if on_step else None)
        noise = [(r.step, r.noise) for r in records if r.noise is not None]
        floor = noise_floor_of(noise) if setup.noise_twin else None
        tol = tolerance_for(setup.device, setup.precision, floor.value if floor is not None else None,
                            opts.noise_multiplier, opts.tolerance)
        recalibration = [next(stream) for _ in range(RECALIBRATION_BATCHES)]
        eval_mode = compare_eval_mode(runs[0].model, runs[1].model, prep.probe, recalibration, tol.value, opts.seed)
    return _report(setup, prep, records, tol, floor, eval_mode)


def _report(setup: _Setup, prep: _Prepared, records: list[StepRecord], tol: Tolerance, floor: NoiseFloor | None,
            eval_mode: EvalModeResult) -> TrajectoryReport:
    plan, comp, runs = setup.plan, prep.comp, prep.runs
    judged = verdict([(r.step, r.rel_deviation) for r in records], tol, floor)
    n_params = sum(1 for _ in runs[0].model.parameters())
    n_si = sum(len(g["params"]) for g in runs[1].optimizer.param_groups if g.get(SI_TAG))
    return TrajectoryReport(
        model=setup.name, config=plan.path, format=plan.format, device=str(setup.device),
        dtype=setup.precision, steps=comp.steps, passed=judged == PASS, verdict=judged,
        noise_jump_step=floor.jump_step if floor is not None else None,
        noise_jump_max=floor.jump_max if floor is not None else None,
        max_rel_deviation=max(r.rel_deviation for r in records),
        tolerance=tol.value, tolerance_reason=tol.reason, noise_floor=floor.value if floor is not None else None,
        compression=comp.describe(plan.iters_per_epoch), phases_hit=comp.phases_hit,
        phases_total=comp.phases_total, si_params=n_si, total_params=n_params,
        growth_per_epoch=setup.growth_per_epoch, iters_per_epoch=plan.iters_per_epoch,
        records=records, eval_mode=eval_mode)


def _diagnosis(setup: _Setup, report: TrajectoryReport, prep: _Prepared, audit_si: set[str] | None) -> Diagnosis:
    """Why the check failed, from what it measured and the trained original (diagnose.py)."""
    tagged = [n for g in prep.runs[1].optimizer.param_groups if g.get(SI_TAG) for n in g["param_names"]]
    jump = None
    if report.noise_jump_step is not None and report.noise_jump_max is not None:
        jump = (report.noise_jump_step, report.noise_jump_max)
    return diagnose(Evidence(setup.plan, report.records, report.tolerance, tagged, audit_si, prep.runs[0].model,
                             prep.probe, jump, report.outcome, setup.dtype, setup.amp.dtype if setup.amp else None))


def verify_converted(converted: ConvertedPlan, model: str, *, options: CheckOptions = CheckOptions(),
                     on_step: Callable[[int, int], None] | None = None,
                     log: Callable[[str], None] = lambda line: None) -> TrajectoryReport:
    """`explr convert --verify`: the short trajectory check of a just-converted config (configs.ConvertedPlan),
    on the SI set the conversion used (its audit, lock or names), within the default time budget."""
    si = {"model": converted.si.names, "names": converted.si.names, "lock": converted.si.lock}.get(converted.si.how)
    options = dataclasses.replace(options, approximate=converted.approximate)
    return check(model, converted.plan, si=si, options=options, on_step=on_step, log=log)
