"""What a converted config tells explr's runtime: TEXPScheduler's constructor arguments (framework
configs) and the `texp:` section (explr-format plans). Shared by configs/write.py and the adapters'
`rewrite`, below both, so neither imports the other.
"""
from __future__ import annotations

from explr.configs.convert import ConvertedPlan


def si_init_args(converted: ConvertedPlan) -> dict:
    """How the runtime learns which parameters are SI, as constructor arguments of TEXPScheduler."""
    si = converted.si
    if si.how == "lock":
        args: dict = {"lock": si.lock}
    else:
        args = {"si": list(si.names)} if si.names else {"si": "audit"}
    if not converted.exact:
        args["approximate"] = True
    return args


def texp_section(converted: ConvertedPlan) -> dict:
    """The `texp:` section of an explr-format document."""
    si = converted.si
    section: dict = {"si": "audit" if si.how == "audit-at-start" else si.how}
    if si.lock:
        section["lock"] = si.lock
    if si.names and si.how != "lock":
        section["params"] = list(si.names)
    section["exact"] = converted.exact
    if converted.not_exact_because:
        section["deviations"] = list(converted.not_exact_because)
    return section
