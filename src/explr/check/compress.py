"""Compress a real LR schedule into the check's horizon so every phase boundary is exercised.

A CIFAR schedule has milestones tens of thousands of iterations away; a 200-step check that ran the
literal first 200 steps would only ever see the first phase at a constant LR. Instead every event
(warmup end, each milestone, the start and end of a cosine/linear decay) is mapped proportionally
into [0, steps), keeping at least `MIN_GAP` steps between consecutive events so no phase vanishes.
The LR values, gamma, momentum and weight decay are unchanged: only time is rescaled, so the check
still exercises the exact conversion through every kind of transition the real run goes through.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from explr.lr_chain import chain_events
from explr.lr_schedule import LRSchedule

MIN_GAP = 2  # steps between two mapped events (a phase of one step shows no transient)


@dataclass(frozen=True, slots=True)
class Boundary:
    label: str  # "warmup end", "milestone 1", "decay start", ...
    original_iter: int
    step: int | None  # where the check hits it; None when --no-compress leaves it beyond the horizon


@dataclass(frozen=True, slots=True)
class Compression:
    original: LRSchedule
    schedule: LRSchedule  # the schedule both runs of the check follow
    steps: int
    compressed: bool
    boundaries: tuple[Boundary, ...]

    @property
    def phases_hit(self) -> int:
        """Number of schedule phases the check runs through (boundaries reached + 1)."""
        return 1 + sum(1 for b in self.boundaries if b.step is not None)

    @property
    def phases_total(self) -> int:
        return 1 + len(self.boundaries)

    def describe(self, iters_per_epoch: int | None = None) -> list[str]:
        """One line per mapped event, e.g. 'milestone 1: iteration 31,280 (epoch 80) -> step 100'."""
        head = (f"schedule compressed {self.original.total_iters:,} iterations -> {self.steps} steps"
                if self.compressed else f"literal first {self.steps} of {self.original.total_iters:,} iterations")
        lines = [head]
        for b in self.boundaries:
            epoch = f" (epoch {b.original_iter / iters_per_epoch:g})" if iters_per_epoch else ""
            target = f"step {b.step}" if b.step is not None else "not reached (beyond --steps)"
            lines.append(f"  {b.label}: iteration {b.original_iter:,}{epoch} -> {target}")
        return lines


def schedule_events(schedule: LRSchedule) -> list[tuple[str, int]]:
    """(label, iteration) of every point where the LR's formula changes, in order."""
    if schedule.decay == "chain":
        return sorted(chain_events(schedule.chain, schedule.total_iters), key=lambda e: e[1])
    events: list[tuple[str, int]] = []
    if schedule.warmup_iters > 0:
        events.append(("warmup end", schedule.warmup_iters))
    if schedule.decay == "step":
        events += [(f"milestone {k + 1}", m) for k, m in enumerate(schedule.milestones)]
    elif schedule.decay in ("cosine", "linear"):
        if schedule.decay_start > 0:
            events.append(("decay start", schedule.decay_start))
        if schedule.decay_iters is not None and schedule.decay_start + schedule.decay_iters < schedule.total_iters:
            events.append(("decay end", schedule.decay_start + schedule.decay_iters))
    return sorted(events, key=lambda e: e[1])


def _spread(points: list[int], steps: int, total: int) -> dict[int, int]:
    """Map distinct original iterations into (0, steps) proportionally, keeping MIN_GAP between them."""
    gap = MIN_GAP if steps > MIN_GAP * (len(points) + 1) else 1
    mapped: list[int] = []
    for k, point in enumerate(points):
        low = mapped[-1] + gap if mapped else gap
        high = steps - gap * (len(points) - k)
        mapped.append(min(max(round(point * steps / total), low), high))
    return dict(zip(points, mapped))


def compress(schedule: LRSchedule, steps: int, *, enabled: bool = True) -> Compression:
    """The schedule the check runs for `steps` steps (see the module docstring)."""
    if steps <= 0:
        raise ValueError(f"--steps {steps} must be > 0")
    events = schedule_events(schedule)
    if not enabled or steps >= schedule.total_iters or schedule.decay == "chain":  # a replayed chain is not
        # rescaled (its schedulers count their own steps): the check runs its first steps as they are
        steps = min(steps, schedule.total_iters)
        hits = tuple(Boundary(label, it, it if it < steps else None) for label, it in events)
        return Compression(schedule, schedule, steps, False, hits)
    if steps <= len({it for _, it in events}):
        raise ValueError(f"--steps {steps} is too few to run the {len(events) + 1} phases of the schedule; "
                         f"use at least {2 * (len(events) + 1)}")
    where = _spread(sorted({it for _, it in events}), steps, schedule.total_iters)
    scale = steps / schedule.total_iters
    decay_start = where.get(schedule.decay_start, 0)
    decay_iters = None
    if schedule.decay_iters is not None:
        end = schedule.decay_start + schedule.decay_iters
        decay_iters = max(1, where.get(end, round(end * scale)) - decay_start)
    compressed = dataclasses.replace(
        schedule, total_iters=steps, warmup_iters=where.get(schedule.warmup_iters, 0),
        milestones=tuple(where[m] for m in schedule.milestones) if schedule.decay == "step" else (),
        decay_start=decay_start, decay_iters=decay_iters, step_every=max(1, round(schedule.step_every * scale)),
        warmup_every=None if schedule.warmup_every is None else max(1, round(schedule.warmup_every * scale)))
    compressed.validate()
    boundaries = tuple(Boundary(label, it, where[it]) for label, it in events)
    return Compression(schedule, compressed, steps, True, boundaries)
