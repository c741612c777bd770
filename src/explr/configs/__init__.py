"""Training-config adapters: read a framework's config into a TrainingPlan (explr.plan), write the converted one back."""
