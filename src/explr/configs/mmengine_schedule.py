"""mmengine `param_scheduler` lists -> one LRSchedule, modelled on mmengine's own source.

Read from mmengine 0.10 (optim/scheduler/param_scheduler.py, lr_scheduler.py; runner/runner.py
`_build_param_scheduler`; hooks/param_scheduler_hook.py):
- every scheduler is *chainable*: it multiplies the LR the previous one left, and only acts while
  `begin <= step < end` (its own `last_step` counts from 0 at `begin`; after `end` the LR is held);
- `by_epoch` (default True) schedulers step after each epoch, the others after each iteration;
  `end` defaults to the train loop's max_epochs / max_iters;
- `convert_to_iter_based=True` turns epochs into iterations: begin, end, milestones, step_size and
  T_max are multiplied by the epoch length (`build_iter_from_epoch`);
- LinearLR: factor start + (end_f - start)·k/(end-begin-1); ConstantLR: `factor` for k < end-begin-1;
  MultiStepLR: × gamma at k in milestones; StepLR: × gamma at every k multiple of step_size;
  CosineAnnealingLR: eta_min + (base-eta_min)(1+cos(πk/T_max))/2 (from the base when nothing else acts);
  ExponentialLR: × gamma per step; PolyLR: eta_min + (base-eta_min)(1-k/(end-begin-1))**power
  (the chained form telescopes to this closed form).

One warmup (LinearLR ending at factor 1, or ConstantLR, from step 0) and one decay read into LRSchedule's
closed forms; any other list of the schedulers in explr.lr_chain (restarts, OneCycleLR, QuadraticWarmupLR,
chained decays, overlaps with eta_min) is replayed step by step (configs/mmengine_chain.py). ReduceOnPlateau*
and schedulers of other parameters are refused by name, except momentum schedulers of an adaptive optimizer
(approximate anyway), which the converted config keeps (lr_schedulers).
"""
from __future__ import annotations

from typing import Any

from explr.configs.mmengine_chain import Loop, Span, chained_schedule, replayed_links
from explr.errors import ConfigError, UnsupportedError
from explr.lr_chain import INF, VALUES
from explr.lr_schedule import LRSchedule

# The generic ParamScheduler classes with param_name='lr' are the LR classes
LR_NAMES = {f"{name}ParamScheduler": f"{name}LR" for name in ("Constant", "Linear", "MultiStep", "Step", "Exponential",
                                                                "CosineAnnealing", "Poly", "OneCycle", "CosineRestart",
                                                                "QuadraticWarmup")}
SCOPES = ("mmengine", "mmdet")  # registry scopes of the classes explr models ('mmdet.QuadraticWarmupLR')
WARMUPS = ("LinearLR", "ConstantLR")
DECAYS = ("MultiStepLR", "StepLR", "CosineAnnealingLR", "ExponentialLR", "PolyLR")


class NotClosedForm(UnsupportedError):
    """The list is beyond LRSchedule's closed forms: mmengine_chain replays it instead."""


def _refuse(where: str, message: str) -> UnsupportedError:
    return UnsupportedError(f"{where}: {message}")


def _unclosed(where: str, message: str) -> NotClosedForm:
    return NotClosedForm(f"{where}: {message}")


def moved_parameter(cfg: dict) -> str:
    """What a scheduler moves: its param_name, the momentum for the ...Momentum classes, else the LR."""
    return str(cfg.get("param_name", "momentum" if "Momentum" in str(cfg.get("type")) else "lr"))


def lr_schedulers(schedulers: list[dict], optimizer: str, where: str) -> list[dict]:
    """The LR schedulers, once every other one is refused or kept. Kept: momentum schedulers of an optimizer other
    than SGD (Adam's beta1), whose conversion is approximate anyway; the converted config runs them unchanged."""
    for cfg in schedulers:
        kind, moved = cfg.get("type"), moved_parameter(cfg)
        if str(kind).rpartition(".")[2].startswith("ReduceOnPlateau"):
            what = "LR" if moved == "lr" else moved
            raise _refuse(where, f"param_scheduler type {kind!r} lowers the {what} when a validation metric stalls; "
                                 "the schedule is not known before training, so no conversion can be exact")
        if moved != "lr" and not (moved == "momentum" and optimizer != "sgd"):
            raise _refuse(where, f"param_scheduler type {kind!r} schedules {moved}: the conversion is exact only "
                                 f"with the phantom scalar following the same {moved} (docs/theory.md §3, §5), which "
                                 f"explr's TEXP does not do; remove it or convert by hand")
    return [cfg for cfg in schedulers if moved_parameter(cfg) == "lr"]


def kept_schedulers(schedulers: list[dict]) -> list[dict]:
    """The schedulers the converted config keeps beside TEXP (lr_schedulers allowed them)."""
    return [cfg for cfg in schedulers if moved_parameter(cfg) != "lr"]


def span_of(cfg: dict, loop: Loop, where: str) -> Span:
    """The scheduler `cfg` placed on the iteration axis, the way mmengine's Runner builds and steps it."""
    kind = cfg.get("type")
    scope, _, name = str(kind).rpartition(".")
    name = name if scope in SCOPES else str(kind)
    if name in LR_NAMES and "param_name" not in cfg:
        raise ConfigError(f"{where}: param_scheduler {name} needs param_name (mmengine would not build it)")
    kind = LR_NAMES.get(name, name)
    if kind not in VALUES:
        raise _refuse(where, f"param_scheduler type {kind!r} is not modelled by explr (it models "
                             f"{', '.join(VALUES)}); convert this schedule by hand or change it")
    by_epoch = bool(cfg.get("by_epoch", True))
    if by_epoch and not loop.by_epoch:
        raise _refuse(where, f"{kind} has by_epoch=True inside an IterBasedTrainLoop; set by_epoch=False")
    # Runner._build_param_scheduler: the default end is max_epochs for per-epoch schedulers, else max_iters
    begin, end = int(cfg.get("begin", 0)), int(cfg.get("end", loop.length if by_epoch else loop.total_iters))
    args = {k: v for k, v in cfg.items()
            if k not in ("type", "by_epoch", "begin", "end", "convert_to_iter_based", "param_name")}
    if not by_epoch:
        return Span(kind, args, begin, end, 1, 1)
    ipe = loop.iters_per_epoch
    if cfg.get("convert_to_iter_based", False):
        return Span(kind, args, int(begin * ipe), end if end == INF else int(end * ipe), 1, ipe)
    return Span(kind, args, begin, end, ipe, 1)


def _steps_run(span: Span, total_iters: int) -> int:
    """How many of its own steps the training iterations reach (steps 0 .. this - 1)."""
    return -(-total_iters // span.every)


def _last_step(span: Span, total_iters: int) -> int:
    """The last own step of `span` that any training iteration reaches (its LR is held after that)."""
    return min(span.end, _steps_run(span, total_iters)) - 1


def warmup_fields(span: Span, where: str) -> dict:
    if span.begin != 0:
        raise _unclosed(where, f"{span.kind} warmup with begin={span.begin}: explr models a warmup from step 0")
    length = span.end - span.begin - 1  # mmengine: total_iters = end - begin - 1
    if length <= 0:
        raise _unclosed(where, f"{span.kind} spans {span.end - span.begin} step: it would hold its start factor "
                             "for the whole run; give it end > begin + 1")
    if span.kind == "ConstantLR":
        return dict(warmup_iters=span.at(length), warmup_factor=float(span.args.get("factor", 1.0 / 3)),
                    warmup_method="constant", warmup_every=span.every)
    if float(span.args.get("end_factor", 1.0)) != 1.0:
        raise _unclosed(where, f"LinearLR end_factor={span.args['end_factor']}: explr models a warmup that ends at "
                             "factor 1")
    return dict(warmup_iters=span.at(length), warmup_factor=float(span.args.get("start_factor", 1.0 / 3)),
                warmup_method="linear", warmup_every=span.every)


def _milestones(span: Span, total_iters: int, where: str) -> tuple[int, ...]:
    last = _last_step(span, total_iters)
    if span.kind == "StepLR":
        size = int(span.args["step_size"]) * span.scale
        steps = list(range(size, last + 1, size)) if size > 0 else []
    else:
        marks = [int(m) * span.scale for m in span.args.get("milestones", ())]
        if len(set(marks)) != len(marks):
            raise _unclosed(where, f"MultiStepLR milestones {list(span.args['milestones'])} repeat a value; "
                                 "write gamma**count instead")
        steps = sorted(m for m in marks if 0 <= m <= last)  # later ones are never reached
    return tuple(span.at(span.begin + k) for k in steps)


def _cosine(span: Span, total_iters: int, base_lr: float, where: str) -> dict:
    t_max = int(span.args.get("T_max") or 0) * span.scale or (span.end - span.begin)
    if span.end < _steps_run(span, total_iters):
        raise _unclosed(where, f"CosineAnnealingLR ends (end={span.end}) before training does and holds its LR "
                             "there; explr models a cosine that runs to the end of training")
    if _last_step(span, total_iters) - span.begin > t_max:
        raise _unclosed(where, f"CosineAnnealingLR T_max={t_max} is shorter than its span: the LR would rise "
                             "again (restart), which explr does not model")
    eta_min = span.args.get("eta_min")
    ratio = span.args.get("eta_min_ratio")
    eta_min = base_lr * float(ratio) if ratio is not None else float(eta_min or 0.0)
    return dict(decay="cosine", eta_min=eta_min, decay_start=span.at(span.begin), decay_iters=span.at(t_max))


def decay_fields(span: Span, total_iters: int, base_lr: float, where: str) -> dict:
    length = span.end - span.begin - 1
    if span.kind in ("MultiStepLR", "StepLR"):
        return dict(decay="step", milestones=_milestones(span, total_iters, where),
                    gamma=float(span.args.get("gamma", 0.1)))
    if span.kind == "CosineAnnealingLR":
        return _cosine(span, total_iters, base_lr, where)
    if span.kind == "ExponentialLR":
        reach = min(length, _last_step(span, total_iters) - span.begin)
        if reach <= 0:
            return dict(decay="constant")
        eta_min = base_lr * float(span.args["gamma"]) ** reach  # held after `reach` steps, as mmengine holds it
        return dict(decay="exp", eta_min=eta_min, decay_start=span.at(span.begin), decay_iters=span.at(reach))
    return dict(decay="linear", eta_min=float(span.args.get("eta_min", 0.0)), decay_start=span.at(span.begin),
                decay_iters=span.at(length), power=float(span.args.get("power", 1.0)))


def schedule_from(schedulers: list[dict], loop: Loop, base_lr: float, where: str) -> LRSchedule:
    """The LRSchedule of mmengine's chained `schedulers` (as the Runner builds them); refusals name the type.
    A warmup and a decay get LRSchedule's closed forms, any other list the step-by-step replay."""
    spans = [span_of(dict(cfg), loop, where) for cfg in schedulers]
    links = replayed_links(spans, loop, base_lr, where)
    if all(s.kind in WARMUPS + DECAYS for s in spans):
        try:
            return closed_schedule(spans, loop, base_lr, where)
        except NotClosedForm:
            pass
    return chained_schedule(links, loop, base_lr)


def closed_schedule(spans: list[Span], loop: Loop, base_lr: float, where: str) -> LRSchedule:
    """One warmup and one decay as LRSchedule's closed forms; NotClosedForm for anything else."""
    warmups = [s for s in spans if s.kind in WARMUPS]
    decays = [s for s in spans if s.kind in DECAYS]
    if len(warmups) > 1 or len(decays) > 1:
        names = ", ".join(s.kind for s in spans)
        raise _unclosed(where, f"param_scheduler [{names}]: explr models one warmup (LinearLR/ConstantLR) followed "
                             "by one decay")
    total = loop.total_iters
    fields: dict[str, Any] = dict(base_lr=base_lr, total_iters=total, decay="constant")
    if decays:
        fields.update(decay_fields(decays[0], total, base_lr, where))
        if fields["decay"] != "step":  # milestones are already iterations; the others hold per epoch
            fields["step_every"] = decays[0].every
    if warmups:
        fields.update(warmup_fields(warmups[0], where))
        overlap = decays and fields["warmup_iters"] > fields.get("decay_start", 0)
        if overlap and fields.get("eta_min", 0.0) and fields["decay"] in ("cosine", "linear"):
            raise _unclosed(where, f"{warmups[0].kind} overlaps {decays[0].kind} with eta_min != 0: mmengine's "
                                 "chained form is then not a product; start the decay after the warmup")
        if fields["warmup_every"] == fields.get("step_every", 1):
            del fields["warmup_every"]
        if fields["warmup_iters"] >= total:
            raise _unclosed(where, f"the {warmups[0].kind} warmup lasts {fields['warmup_iters']} iterations, past "
                                 f"the {total} of training")
    return LRSchedule(**fields)
