"""Which object of the imported file or module is the model, and building it (with --kwargs).

Without a NAME in the spec: the module-level `model`, a conventional factory (build_model(), ...), the one
zero-argument function returning one of the file's model classes (kuangliu style: `def ResNet18()`), then the
top-level class constructible with the --kwargs (the one no other model class of the file uses).
"""
from __future__ import annotations

import ast
import inspect
import json
from types import ModuleType
from typing import Any

from torch import nn

from explr.errors import LoadError, quote_error
from explr.load.spec import ModelSpec

FACTORY_NAMES = ("build_model", "create_model", "make_model", "get_model")


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"--kwargs {text!r} is not valid JSON ({exc.msg} at column {exc.colno}); "
                        "write an object such as '{\"num_classes\": 10}'") from None
    if not isinstance(value, dict):
        raise LoadError(f"--kwargs {text!r} must be a JSON object such as '{{\"num_classes\": 10}}'")
    return value


def _unbound_arguments(obj: Any, kwargs: dict[str, Any]) -> str | None:
    """Why `obj(**kwargs)` cannot be called (missing or unexpected arguments), or None."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None  # builtins without a signature: just try the call
    try:
        signature.bind(**kwargs)
        return None
    except TypeError:
        pass
    required = [p.name for p in signature.parameters.values()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in kwargs]
    if required:
        example = ", ".join(f'"{name}": ...' for name in required)
        return f"needs argument{'s' if len(required) > 1 else ''} {', '.join(required)}; pass --kwargs '{{{example}}}'"
    accepted = ", ".join(signature.parameters) or "none"
    return f"does not accept --kwargs {', '.join(sorted(kwargs))} (it takes: {accepted})"


def _build(obj: Any, where: str, kwargs: dict[str, Any]) -> nn.Module:
    """An nn.Module instance as is; a class or factory called with --kwargs."""
    if isinstance(obj, nn.Module):
        if kwargs:
            raise LoadError(f"{where} is an already built model; --kwargs apply only to a class or factory")
        return obj
    if not callable(obj):
        raise LoadError(f"{where} is of type {type(obj).__name__}, not an nn.Module, class or factory; "
                        "name the model with FILE.py:NAME")
    problem = _unbound_arguments(obj, kwargs)
    if problem:
        raise LoadError(f"{where} {problem}")
    try:
        built = obj(**kwargs)
    except (Exception, SystemExit) as exc:
        raise LoadError(f"{where}(): building the model raised {quote_error(exc)}; "
                        "fix the model code or its --kwargs") from exc
    if not isinstance(built, nn.Module):
        raise LoadError(f"{where}() returned {type(built).__name__}, not an nn.Module; "
                        "name the model or its factory with FILE.py:NAME")
    return built


def _model_classes(module: ModuleType) -> list[tuple[str, type]]:
    """nn.Module subclasses defined (not imported) in the module, with a forward, in file order."""
    return [(name, obj) for name, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
            and obj.forward is not nn.Module.forward]


def _file_syntax(module: ModuleType) -> ast.Module | None:
    try:
        return ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return None  # no source at hand (a compiled module): only the conventional names are used


def _model_factories(module: ModuleType, tree: ast.Module | None, classes: list[str]) -> list[str]:
    """Functions defined in the file that return one of its model classes, kuangliu style:
    `def ResNet18(): return ResNet(BasicBlock, [2, 2, 2, 2])`. A `test()` that only runs one is not."""
    if tree is None:
        return []
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and callable(getattr(module, node.name, None)):
            returned = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
            if any(isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in classes
                   for v in returned):
                found.append(node.name)
    return found


def _top_level(candidates: list[str], tree: ast.Module | None) -> list[str]:
    """The candidate classes no other model class of the file refers to (the blocks are used by the model)."""
    if tree is None:
        return candidates
    bodies = {node.name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
              for node in tree.body if isinstance(node, ast.ClassDef)}
    return [c for c in candidates if not any(c in names for owner, names in bodies.items() if owner != c)]


def _choose(kind: str, names: list[str], spec: ModelSpec) -> str:
    if len(names) > 1:
        raise LoadError(f"{spec.target}: several {kind} ({', '.join(names)}); pick one with {spec.target}:{names[0]}")
    return names[0]


def _find_model(module: ModuleType, spec: ModelSpec, kwargs: dict[str, Any]) -> tuple[str, Any]:
    """The conventional model of a file: `model`, a conventional factory, the one zero-argument function
    returning a model class, then the top-level constructible class."""
    if hasattr(module, "model"):
        return "model", module.model
    factories = [name for name in FACTORY_NAMES if callable(getattr(module, name, None))]
    if factories:
        name = _choose("model factories", factories, spec)
        return name, getattr(module, name)
    tree, classes = _file_syntax(module), [n for n, _ in _model_classes(module)]
    factories = _model_factories(module, tree, classes)
    ready = [n for n in factories if _unbound_arguments(getattr(module, n), kwargs) is None]
    if ready:
        name = _choose("model factories", ready, spec)
        return name, getattr(module, name)
    constructible = [name for name in classes if _unbound_arguments(getattr(module, name), kwargs) is None]
    if constructible:
        name = _choose("candidate models", _top_level(constructible, tree) or constructible, spec)
        return name, getattr(module, name)
    needing = [f"factories {', '.join(factories)}"] if factories else []
    needing += [f"classes {', '.join(classes)}"] if classes else []
    others = f" (these need arguments: {'; '.join(needing)}; use NAME and --kwargs)" if needing else ""
    raise LoadError(f"{spec.target}: no model found: define `model`, a zero-argument build_model() or an "
                    f"nn.Module subclass, or name it with {spec.target}:NAME{others}")


def resolve_model(module: ModuleType, spec: ModelSpec, kwargs: dict[str, Any]) -> tuple[str, nn.Module]:
    """The spec's model built from the module, and where it was found ("file.py:NAME")."""
    if spec.attr is None:
        name, obj = _find_model(module, spec, kwargs)
    else:
        name, obj = spec.attr, module
        for part in spec.attr.split("."):
            if not hasattr(obj, part):
                found = [n for n, _ in _model_classes(module)] + [n for n in FACTORY_NAMES + ("model",) if hasattr(module, n)]
                hint = f"; models there: {', '.join(found)}" if found else ""
                raise LoadError(f"{spec.target} has no attribute {spec.attr!r}{hint}")
            obj = getattr(obj, part)
    where = f"{spec.target}:{name}"
    return where, _build(obj, where, kwargs)
