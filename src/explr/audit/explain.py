"""Turn a solution into AuditReport verdicts: one-line reasons, groups and facts for the rules."""
from __future__ import annotations

import functools
import inspect

import torch

from explr.audit.solve import Solution
from explr.audit.transfer import Ctx, Origin
from explr.audit_report import Group, HandWrittenEps, Normalizer, ParamVerdict, UnknownOp
from explr.findings import Location

_MAX_NAMED = 3


def _short(op: str) -> str:
    return op.split(".", 1)[1] if "." in op else op


def _where(module: str) -> str:
    return f" in {module}" if module else ""


# Origin kind -> why a variable had to be 0, in the words of the report ({op} is the short op name).
_FORCING = {
    "output": "model output",
    "opaque": "{full_op}",
    "unreached": "{full_op}",
    "opaque-input": "input of the opaque module {module}",
    "opaque-call-input": "input of the opaque call {full_op}(){where}",
    "opaque-read": "read by the opaque module {module}",
    "unaccounted": "operand {detail} of {op}{where} is not accounted for by its rule (degree forced to 0)",
    "rule-error": "the rule of {full_op}{where} failed (inputs constrained to degree 0)",
    "refuted": "{detail}",
    "unknown": "unknown op {full_op}{where} (inputs constrained to degree 0)",
    "nonhomogeneous": "{op}{where}{detail_suffix}",
    "normalized-group": "terms of different degree normalized together by {module_or_op}",
    "sum": "{op}{where} adds terms of different degree",
    "affine": "the affine of {module} adds terms of different degree",
}
_FORCING_OTHER = "{op}{where} mixes terms of different degree"


def describe_forcing(o: Origin) -> str:
    """Why a variable had to be 0, in the words of the report."""
    op = _short(o.op)
    return _FORCING.get(o.kind, _FORCING_OTHER).format(
        full_op=o.op, op=op, module=o.module, where=_where(o.module), module_or_op=o.module or op,
        detail=o.detail, detail_suffix=f" ({o.detail})" if o.detail else "")


def _common_module(modules: list[str]) -> str:
    parts = [m.split(".") for m in modules]
    common = []
    for atoms in zip(*parts):
        if len(set(atoms)) > 1:
            break
        common.append(atoms[0])
    return ".".join(common)


def _describe_link(o: Origin, group_links: list[Origin]) -> str:
    if o.kind == "sum":
        stream = _common_module([g.module for g in group_links if g.kind == "sum"])
        return f"writes the residual stream of {stream or 'the model'}"
    if o.kind == "affine":
        return f"forms the affine of {o.module}"
    if o.kind == "normalized-group":
        return f"varies inside the groups normalized by {o.module}"
    return f"meets the others in {_short(o.op)}{_where(o.module)}"


def _names(vs, names: list[str]) -> str:
    listed = [names[v] for v in vs[:_MAX_NAMED]]
    more = len(vs) - len(listed)
    return ", ".join(listed) + (f" (+{more} more)" if more else "")


def _chosen_neighbour(v: int, sol: Solution, ctx: Ctx) -> int | None:
    """A chosen variable sharing a constraint with v, or with a variable that shares one with v."""
    near = {u for c in ctx.constraints if v in c.form for u in c.form}
    for hop in (near, {u for c in ctx.constraints if near & c.form.keys() for u in c.form}):
        found = sorted(hop & sol.chosen)
        if found:
            return found[0]
    return None


def reason_for(v: int, sol: Solution, ctx: Ctx, names: list[str], group: list[int] | None) -> str:
    if v in sol.forced:
        return describe_forcing(sol.forced[v])
    if v in sol.left_out:
        rival = _chosen_neighbour(v, sol, ctx)
        where = f" of {names[rival]}" if rival is not None else ""
        return (f"left out of the maximal set: it could join the group{where} only in place of "
                f"parameters with more elements (either, not both)")
    norms = ctx.normalized_by.get(v, [])
    if v in sol.individually:
        if v in ctx.dropped and not norms:
            return f"inert: its per-channel term is cancelled by {ctx.dropped[v]}"
        if v in ctx.cancelled and not norms:
            return f"inert: {ctx.cancelled[v]}"
        return f"normalized by {norms[0]}" if norms else "scale-free: no path of its scale to the output"
    others = [u for u in (group or []) if u != v]
    links = sol.links.get(v, [])
    group_links = [o for u in (group or []) for o in sol.links.get(u, [])]
    link = next((o for o in group_links if o.kind == "sum"), links[0] if links else None)
    how = _describe_link(link, group_links) if link else "constrained with others"
    tail = f"; normalized by {norms[0]}" if norms else ""
    return f"only jointly: {how} together with {_names(others, names)}{tail}"


def verdicts(params: list[tuple[str, torch.Tensor]], sol: Solution, ctx: Ctx):
    """(ParamVerdicts in named_parameters order, Groups)."""
    names = [n for n, _ in params]
    group_of: dict[int, int] = {}
    groups: list[Group] = []
    for gid, members in enumerate(sol.groups):
        for v in members:
            group_of[v] = gid
        norms: list[str] = []
        for v in members:
            norms += [m for m in ctx.normalized_by.get(v, []) if m not in norms]
        groups.append(Group(gid, tuple(names[v] for v in members), tuple(norms)))
    out = []
    for v, (name, p) in enumerate(params):
        group_id = group_of.get(v)
        group = sol.groups[group_id] if group_id is not None else None
        out.append(ParamVerdict(name, tuple(p.shape), p.numel(), v in sol.chosen,
                                v in sol.individually and v in sol.chosen, group_id,
                                reason_for(v, sol, ctx, names, group)))
    return out, groups


def hand_written_eps(sites, sol: Solution, names: list[str]) -> list[HandWrittenEps]:
    """The hand-written eps sites some claimed parameter relies on (one per eps and module)."""
    out: dict[tuple, HandWrittenEps] = {}
    for site in sites:
        relying = tuple(names[v] for v in sorted(site.vars) if v in sol.chosen)
        if relying:
            key = (site.eps, site.module)
            before = out[key].params if key in out else ()
            out[key] = HandWrittenEps(site.eps, site.module, tuple(dict.fromkeys(before + relying)))
    return list(out.values())


def inert_params(sol: Solution, ctx: Ctx, names: list[str]) -> list[str]:
    return [names[v] for v in sorted(ctx.dropped) if v in sol.individually and not ctx.normalized_by.get(v)]


def output_params(sol: Solution, names: list[str]) -> list[str]:
    """Parameters that are not SI because they reach the model output unnormalized."""
    return [names[v] for v, o in sorted(sol.forced.items()) if o.kind == "output"]


def unique_unknown_ops(ops: list[UnknownOp]) -> list[UnknownOp]:
    return list(dict.fromkeys(ops))


def unique_normalizers(norms: list[Normalizer]) -> list[Normalizer]:
    seen, out = set(), []
    for n in norms:
        if (n.module, n.kind) not in seen:
            seen.add((n.module, n.kind))
            out.append(n)
    return out


@functools.lru_cache(maxsize=None)
def _class_location(cls: type) -> Location | None:
    try:
        return Location(inspect.getsourcefile(cls), inspect.getsourcelines(cls)[1])
    except (TypeError, OSError):
        return None


def module_locations(root: torch.nn.Module) -> dict[str, Location]:
    """Module name -> where its class is defined (the first line of `class ...`)."""
    out = {}
    for name, m in root.named_modules():
        # a class is hashable; mypy checks type[Module] against Hashable with the instance's __hash__
        loc = _class_location(type(m))  # type: ignore[arg-type]
        if loc is not None:
            out[name] = loc
    return out
