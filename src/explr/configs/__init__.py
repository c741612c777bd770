"""Training-config adapters: read a framework's config into a TrainingPlan, write the converted one back."""
from explr.configs.plan import DecayPolicy, TrainingPlan

__all__ = ["DecayPolicy", "TrainingPlan"]
