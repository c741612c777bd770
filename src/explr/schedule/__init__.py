"""Exact schedule engine: phantom scalar, closed forms, runtime scheduler."""
from explr.schedule.phantom import Phantom, SGDHyper, converted_lrs

__all__ = ["Phantom", "SGDHyper", "converted_lrs"]
