"""Static scale-invariance audit: capture (torch.fx) -> degrees -> solve -> verify -> AuditReport (explr.audit_report).

`explr.audit(model, example_inputs)` is `explr.audit.api.audit`; the package is callable (see
explr._callable_module).
"""
from explr._callable_module import make_callable

make_callable(__name__, "explr.audit.api:audit")
