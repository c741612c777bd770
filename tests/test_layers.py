"""The import graph of src/explr has no cycles and points only down the floors (docs: DESIGN floors).

Every `import` / `from ... import` in every module counts, including those inside functions (lazy
imports) and under `if TYPE_CHECKING:`; importing `a.b.c` also runs the packages `a` and `a.b`.
String imports (`importlib.import_module`, explr.__init__'s lazy table) are not seen.
"""
from __future__ import annotations

import ast
from pathlib import Path

import explr

SRC = Path(explr.__file__).resolve().parent

# Lowest floor first. A module's floor is that of the longest prefix listed here; a module may
# import only from its own floor or a lower one.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("core types", (
        "explr",  # the root package: its public names are lazy strings, it imports nothing
        "explr._callable_module", "explr.errors", "explr.findings", "explr.fileio", "explr.wording",
        "explr.plan", "explr.lr_schedule", "explr.audit_report",
        # Tools over torch that need nothing above errors and the value types, used from every
        # floor: copying a model, loading one from a file, the lock file (param_groups reads it).
        "explr.model_copy", "explr.load", "explr.lock",
    )),
    ("audit", ("explr.audit",)),
    ("schedule", ("explr.schedule",)),
    ("rules", (
        "explr.rules",
        "explr.settings",  # [tool.explr] is the rule selection
    )),
    # `explr.audit(model, ...)` is the analysis plus its numeric verification (EXP109) plus the
    # model rules: the entry point sits above the rules it runs, the analysis below them.
    ("audit entry", ("explr.audit.api", "explr.audit.verify")),
    ("render", ("explr.render",)),
    ("configs", ("explr.configs",)),
    ("integrations", ("explr.integrations",)),
    ("check, demo", ("explr.check", "explr.demo")),
    ("cli", ("explr.cli", "explr.__main__")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def floor_of(module: str) -> int:
    best, level = -1, None
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), index
    assert level is not None, f"{module} is on no floor: add it to FLOORS"
    return level


def _existing(name: str) -> str | None:
    """The module `name` denotes (an attribute import names its module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}


def _with_packages(target: str, source: str) -> set[str]:
    """`target` and the packages importing it runs, except the source's own packages."""
    parts = target.split(".")
    chain = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {m for m in chain if not (source == m or source.startswith(m + "."))}


def imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    names = {name for node in ast.walk(tree) for name in _imported(module, node)}
    targets = {_existing(name) for name in names if name == "explr" or name.startswith("explr.")}
    return {m for t in targets if t for m in _with_packages(t, module)}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_graph_is_read():
    assert len(MODULES) > 50
    assert "explr.audit.transfer" in GRAPH["explr.audit.rules_basic"]
    assert {"explr.check.api", "explr.check"} <= GRAPH["explr.cli.check"]  # importing a module runs its package
    assert "explr.configs.rewrite" in GRAPH["explr.configs.explr_format"]  # a function-level import


def test_every_module_is_on_a_floor():
    for module in MODULES:
        floor_of(module)


def test_imports_point_down_the_floors():
    upward = [f"{src} ({FLOORS[floor_of(src)][0]}) imports {dst} ({FLOORS[floor_of(dst)][0]})"
              for src, targets in sorted(GRAPH.items()) for dst in sorted(targets)
              if floor_of(dst) > floor_of(src)]
    assert upward == []


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
