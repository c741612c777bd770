"""The lock file: a committed baseline of a model's SI set, groups and structure (schema explr.lock/1).

`explr audit MODEL --write-lock explr.lock.json` records it; `explr audit MODEL --lock ...` fails
(EXP301, exit 1) with a readable diff when the model changed since — "someone added a bias or
removed a BN, and the converted schedule is now wrong". The runtime's `param_groups` reads it
with `read_lock` and refuses a model that no longer matches (`LockFile.check_model`). The EXP301
findings made from a difference are rules (explr.rules.lock); this module sits below them.

The structural fingerprint is the sorted parameter names + shapes and submodule names + types,
hashed (sha256 of their canonical JSON); the readable lists are stored beside the hash.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from explr.audit_report import AuditReport
from explr.errors import ExplrError, OutputError
from explr.fileio import write_atomic

SCHEMA = "explr.lock/1"
_SCHEMA_PREFIX, _VERSION = SCHEMA.split("/")


class LockError(ExplrError):
    """A missing, corrupt or newer-schema lock file, or a model that does not match it."""


@dataclass(frozen=True, slots=True)
class Structure:
    parameters: dict[str, tuple[int, ...]]  # name -> shape
    modules: dict[str, str]  # submodule name -> class name (the root module itself is left out)

    @classmethod
    def of(cls, model: nn.Module) -> "Structure":
        return cls({name: tuple(p.shape) for name, p in model.named_parameters()},
                   {name: type(m).__name__ for name, m in model.named_modules() if name})

    @property
    def sha256(self) -> str:
        canonical = json.dumps([sorted((n, list(s)) for n, s in self.parameters.items()),
                                sorted(self.modules.items())], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LockFile:
    path: Path
    model: str
    si: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]  # members of each joint group
    fingerprint: str  # sha256 of the structure
    structure: Structure

    def check_model(self, model: nn.Module) -> None:
        """LockError listing the differences when `model`'s structure is not the locked one."""
        lines = structure_diff(self.structure, Structure.of(model), si_now=None)
        if lines:
            raise LockError(f"{self.path}: the model does not match this lock file ({'; '.join(lines)}); "
                            "re-run `explr audit MODEL --write-lock FILE` and re-convert if the change is intended")


# ---- writing and reading ------------------------------------------------------------------------

def lock_json(report: AuditReport, model: nn.Module) -> str:
    """The lock file text: one parameter/module/group per line, so that `git diff` stays readable."""
    structure = Structure.of(model)
    head = {"schema": SCHEMA, "model": report.model, "fingerprint": structure.sha256}
    lists: dict[str, list[Any]] = {
        "si": report.si_names,
        "groups": [list(g.members) for g in report.groups],
        "parameters": [[n, list(s)] for n, s in structure.parameters.items()],
        "modules": [[n, t] for n, t in structure.modules.items()],
    }
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    for key, items in lists.items():
        body = ",\n".join(f"    {json.dumps(item)}" for item in items)
        lines.append(f"  {json.dumps(key)}: [\n{body}\n  ]" if items else f"  {json.dumps(key)}: []")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_lock(report: AuditReport, model: nn.Module, path: str | Path) -> LockFile:
    """Write the lock file atomically (explr.fileio) and return it as read back."""
    path = Path(path)
    if not path.parent.is_dir():
        raise LockError(f"{path}: cannot write the lock file: directory {path.parent} does not exist; create it first")
    try:
        write_atomic(path, lock_json(report, model))
    except OutputError:
        raise LockError(f"{path}: cannot write the lock file; check that {path.parent} is writable") from None
    return read_lock(path)


def read_lock(path: str | Path) -> LockFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(f"{path}: no such lock file; create it with `explr audit MODEL --write-lock {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: cannot read the lock file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LockError(f"{path}:{exc.lineno}: corrupt lock file (invalid JSON: {exc.msg}); "
                        f"re-create it with `explr audit MODEL --write-lock {path}`") from None
    _check_schema(data, path)
    return _parse(data, path)


def _check_schema(data, path: Path) -> None:
    schema = data.get("schema") if isinstance(data, dict) else None
    prefix, _, version = str(schema).partition("/")
    if prefix != _SCHEMA_PREFIX or not version.isdigit():
        raise LockError(f"{path}: not an explr lock file (expected \"schema\": \"{SCHEMA}\", found {schema!r})")
    if int(version) > int(_VERSION):
        raise LockError(f"{path}: lock schema {schema} is newer than this explr understands ({SCHEMA}); "
                        "upgrade explr (pip install -U explr)")


def _parse(data: dict, path: Path) -> LockFile:
    def corrupt(key: str, what: str) -> LockError:
        return LockError(f"{path}: corrupt lock file: {key!r} must be {what}; "
                         f"re-create it with `explr audit MODEL --write-lock {path}`")

    def names(value) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    if not names(data.get("si")):
        raise corrupt("si", "a list of parameter names")
    groups = data.get("groups")
    if not isinstance(groups, list) or not all(names(g) for g in groups):
        raise corrupt("groups", "a list of lists of parameter names")
    try:
        structure = Structure({n: tuple(int(d) for d in s) for n, s in data["parameters"]},
                              {str(n): str(t) for n, t in data["modules"]})
    except (KeyError, TypeError, ValueError):
        raise corrupt("parameters/modules", "lists of [name, shape] and [name, type] pairs") from None
    if data.get("fingerprint") != structure.sha256:
        raise corrupt("fingerprint", "the sha256 of its parameter and module lists (was the file edited by hand?)")
    return LockFile(path, str(data.get("model", "")), tuple(data["si"]), tuple(tuple(g) for g in groups),
                    structure.sha256, structure)


# ---- comparing ------------------------------------------------------------------------------------

def _fmt(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _owner(param: str) -> str:
    return param.rpartition(".")[0]


def _outermost(modules: set[str]) -> list[str]:
    """Sorted module names without an ancestor in the set (layer4 stands for layer4.0, layer4.0.conv...)."""
    def ancestors(name):
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}
    return sorted(m for m in modules if not ancestors(m) & modules)


def structure_diff(locked: Structure, now: Structure, si_now: set[str] | None) -> list[str]:
    """Readable lines: modules added/removed/retyped, then parameters outside those modules."""
    added, removed = now.modules.keys() - locked.modules.keys(), locked.modules.keys() - now.modules.keys()
    moved = added | removed  # their parameters and submodules are folded into one line per top module
    lines = [f"+ {name} ({now.modules[name]}, new module)" for name in _outermost(added)]
    lines += [f"- {name} removed ({locked.modules[name]})" for name in _outermost(removed)]
    for name in sorted(locked.modules.keys() & now.modules.keys()):
        if locked.modules[name] != now.modules[name]:
            lines.append(f"~ {name}: {locked.modules[name]} -> {now.modules[name]}")
    for name in sorted(now.parameters.keys() - locked.parameters.keys()):
        if _owner(name) not in moved:
            si = "" if si_now is None else (", SI" if name in si_now else ", not SI")
            lines.append(f"+ {name} {_fmt(now.parameters[name])} (new{si})")
    for name in sorted(locked.parameters.keys() - now.parameters.keys()):
        if _owner(name) not in moved:
            lines.append(f"- {name} removed")
    for name in sorted(locked.parameters.keys() & now.parameters.keys()):
        if locked.parameters[name] != now.parameters[name]:
            lines.append(f"~ {name} shape {_fmt(locked.parameters[name])} -> {_fmt(now.parameters[name])}")
    return lines


def si_diff(lock: LockFile, report: AuditReport) -> list[str]:
    """SI verdict and group changes of parameters present both in the lock and in the report."""
    common = set(lock.structure.parameters) & {p.name for p in report.parameters}
    was, now = set(lock.si) & common, set(report.si_names) & common
    lines = [f"si changed: {p.name} SI -> not SI ({p.reason})" for p in report.parameters if p.name in was - now]
    lines += [f"si changed: {p.name} not SI -> SI ({p.reason})" for p in report.parameters if p.name in now - was]
    stable = was & now  # a group change is only news for parameters whose verdict did not change
    locked_groups = {frozenset(g) & stable for g in lock.groups} - {frozenset()}
    current = {frozenset(g.members) & stable for g in report.groups} - {frozenset()}
    if locked_groups != current:
        def show(groups):
            return " + ".join("[" + ", ".join(sorted(g)) + "]" for g in sorted(groups, key=sorted))
        lines.append(f"groups changed: locked {show(locked_groups - current)}; now {show(current - locked_groups)}")
    return lines


def lock_diff(lock: LockFile, report: AuditReport, model: nn.Module) -> list[str]:
    return structure_diff(lock.structure, Structure.of(model), set(report.si_names)) + si_diff(lock, report)

