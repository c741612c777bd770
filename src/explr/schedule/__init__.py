"""Exact schedule engine: phantom scalar, closed forms, horizons, runtime scheduler (TEXP) and param groups.

The original schedule it works from is the LRSchedule value type (explr.lr_schedule).

Only the pure engine is imported here; `explr.TEXP` / `explr.param_groups` load the runtime lazily.
"""
from explr.schedule.closed_form import alpha, growth_per_epoch, growth_per_step, phase_table
from explr.schedule.phantom import Phantom, SGDHyper, converted_lrs, trace

__all__ = ["Phantom", "SGDHyper", "alpha", "converted_lrs", "growth_per_epoch", "growth_per_step", "phase_table",
           "trace"]
