"""Static scale-invariance audit: capture (torch.fx) -> degrees -> solve -> verify -> AuditReport."""
from explr.audit.report import AuditReport, Group, ParamVerdict, Verification

__all__ = ["AuditReport", "Group", "ParamVerdict", "Verification"]
