"""Runtime classes that converted configs point at (Lightning `class_path`, Hydra `_target_`) and the
few-line entry point for explr-native plans (frameworks whose own code builds the optimizer)."""
from explr.integrations.native import build
from explr.integrations.scheduler import TEXPScheduler

__all__ = ["TEXPScheduler", "build"]
