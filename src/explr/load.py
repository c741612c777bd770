"""Model spec -> nn.Module + example inputs (what `explr audit MODEL` is handed).

Spec forms: `path/to/file.py` (module-level `model`, a zero-argument factory such as
`build_model()`, or the one nn.Module subclass constructible without arguments),
`path/to/file.py:NAME` (attribute, class or callable) and `package.module:NAME`.
Every failure is a one-line LoadError naming the file, attribute or module.
"""
from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import itertools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from explr.errors import LoadError, quote_error

FACTORY_NAMES = ("build_model", "create_model", "make_model", "get_model")
INPUTS_FUNCTION = "example_inputs"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_unique_ids = itertools.count()


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    example_inputs: tuple[Any, ...]
    inputs_note: str  # how the inputs were chosen, stated in the report
    name: str  # the spec as the user wrote it
    path: str | None  # the model's source file, when known (SARIF locations)


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


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise LoadError(f"--input-shape {text!r} is not a shape: write comma-separated positive "
                        "integers such as 2,3,32,32")
    return dims


# ---------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class ModelSpec:
    target: str  # a file path or a dotted module name
    attr: str | None
    is_file: bool


def parse_spec(spec: str) -> ModelSpec:
    target, sep, name = spec.rpartition(":")
    attr: str | None = name
    if not sep or not _IDENTIFIER.fullmatch(name):  # no ':NAME' suffix (or a Windows drive letter)
        target, attr = spec, None
    looks_like_file = target.endswith(".py") or "/" in target or "\\" in target or Path(target).exists()
    if not target:
        raise LoadError(f"model spec {spec!r} names no file or module; write path/to/file.py[:NAME] "
                        "or package.module:NAME")
    return ModelSpec(target, attr, looks_like_file)


# ---------------------------------------------------------------------------------- importing


@contextlib.contextmanager
def _isolated_import_path(directory: Path) -> Iterator[None]:
    """Put the model file's directory on sys.path for the load, then forget its sibling modules."""
    before = set(sys.modules)
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(directory))
        for name in set(sys.modules) - before:
            if _is_sibling(name, directory):
                del sys.modules[name]  # the next model file may have its own `blocks.py`


def _is_sibling(module_name: str, directory: Path) -> bool:
    """A module (or package) that lives right beside the model file, not an installed library below it."""
    top = module_name.partition(".")[0]
    return not module_name.startswith("_explr_model_") and (
        (directory / f"{top}.py").is_file() or (directory / top / "__init__.py").is_file())


def _import_file(path: Path) -> ModuleType:
    if path.is_dir():
        raise LoadError(f"model file {path} is a directory; give the .py file that defines the model "
                        "(spec: path/to/file.py[:NAME])")
    if not path.is_file():
        raise LoadError(f"model file {path} does not exist; check the path (spec: path/to/file.py[:NAME])")
    module_name = f"_explr_model_{path.stem}_{next(_unique_ids)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path} cannot be imported as Python; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        where = path if exc.filename is None or Path(exc.filename).resolve() == path.resolve() else exc.filename
        line = f":{exc.lineno}" if exc.lineno else ""  # a binary file has no line to point at
        raise LoadError(f"{where}{line}: syntax error: {exc.msg}; fix the model file (is it Python source?)") from None
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        raise LoadError(f"{path}: importing the model file raised {quote_error(exc)}; "
                        "fix the model file (rerun with --debug for the traceback)") from exc
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise LoadError(f"module {name!r} not found; install it, or give a file as "
                            "path/to/file.py[:NAME]") from None
        raise LoadError(f"module {name!r}: importing it raised {quote_error(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise LoadError(f"module {name!r}: importing it raised {quote_error(exc)}") from exc


@contextlib.contextmanager
def _imported(spec: ModelSpec) -> Iterator[ModuleType]:
    """Import the spec's file or module; its directory (or the cwd) is importable during the load."""
    if spec.is_file:
        path = Path(spec.target).expanduser()
        with _isolated_import_path(path.resolve().parent):
            yield _import_file(path)
        return
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)  # `package.module:NAME` from the working directory, as `python -m` would
    try:
        yield _import_module(spec.target)
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


# ---------------------------------------------------------------------------- finding the model


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


def _resolve(module: ModuleType, spec: ModelSpec, kwargs: dict[str, Any]) -> tuple[str, nn.Module]:
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


# -------------------------------------------------------------------------------- example inputs

_SPATIAL_DEFAULT = {1: (64,), 2: (32, 32), 3: (16, 16, 16)}  # Conv1d / Conv2d / Conv3d
_BATCH, _TOKENS = 2, 16  # batch 2: train-mode BatchNorm needs more than one value per channel


def _first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    for name, layer in model.named_modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear, nn.Embedding, nn.EmbeddingBag)):
            return name, layer
    return None


def _default_shape(layer: nn.Module) -> tuple[int, ...]:
    if isinstance(layer, nn.modules.conv._ConvNd):
        return (_BATCH, layer.in_channels, *_SPATIAL_DEFAULT[len(layer.kernel_size)])
    if isinstance(layer, nn.Linear):
        return (_BATCH, layer.in_features)
    return (_BATCH, _TOKENS)  # Embedding: a batch of token ids


def _float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())


def _random_input(shape: tuple[int, ...], model: nn.Module, first: nn.Module | None,
                  device: torch.device, generator: torch.Generator) -> torch.Tensor:
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        if device.type == "meta":
            return torch.empty(shape, dtype=torch.long, device=device)
        return torch.randint(0, first.num_embeddings, shape, generator=generator).to(device)
    if device.type == "meta":
        return torch.empty(shape, dtype=_float_dtype(model), device=device)
    return torch.randn(shape, generator=generator, dtype=_float_dtype(model)).to(device)


def describe_inputs(inputs: Sequence[Any]) -> str:
    def one(x: Any) -> str:
        if isinstance(x, torch.Tensor):
            return f"{str(x.dtype).removeprefix('torch.')}[{', '.join(map(str, x.shape))}]"
        return type(x).__name__
    return ", ".join(one(x) for x in inputs)


def _inputs_from_file(module: ModuleType, where: str, device: torch.device) -> tuple[Any, ...]:
    try:
        value = getattr(module, INPUTS_FUNCTION)()
    except (Exception, SystemExit) as exc:
        raise LoadError(f"{where}: {INPUTS_FUNCTION}() raised {quote_error(exc)}; fix it or pass --input-shape") from exc
    inputs = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise LoadError(f"{where}: {INPUTS_FUNCTION}() must return a tensor or a tuple of tensors, "
                        f"not {type(value).__name__}")
    return tuple(x.to(device) for x in inputs)


def _example_inputs(model: nn.Module, module: ModuleType, where: str, shapes: Sequence[tuple[int, ...]],
                    device: torch.device) -> tuple[tuple[Any, ...], str]:
    """Inputs and a note saying where they came from: --input-shape, example_inputs(), or the first layer."""
    found = _first_layer(model)
    first = found[1] if found else None
    generator = torch.Generator().manual_seed(0)
    if shapes:
        inputs = tuple(_random_input(s, model, first, device, generator) for s in shapes)
        return inputs, f"{describe_inputs(inputs)} (from --input-shape)"
    if callable(getattr(module, INPUTS_FUNCTION, None)):
        inputs = _inputs_from_file(module, where, device)
        return inputs, f"{describe_inputs(inputs)} (from {INPUTS_FUNCTION}() in {where})"
    if found is None:
        raise LoadError(f"{where}: cannot infer example inputs (no Conv, Linear or Embedding layer); "
                        f"pass --input-shape or define {INPUTS_FUNCTION}() in the model file")
    name, layer = found
    inputs = (_random_input(_default_shape(layer), model, layer, device, generator),)
    return inputs, (f"{describe_inputs(inputs)} (inferred from the first layer {name or '<root>'}: "
                    f"{type(layer).__name__}; pass --input-shape to change)")


# ------------------------------------------------------------------------------------ entry point


def load_model(spec: str, *, kwargs: dict[str, Any] | None = None,
               input_shapes: Sequence[tuple[int, ...]] = (), device: str = "cpu") -> LoadedModel:
    """Build the model a spec names and example inputs for it (see the module docstring).

    device="meta": import and build under `torch.device("meta")`, so no weight is allocated;
    the inputs are meta tensors too. The model is not run here: the audit runs it first and
    quotes the model's own error when it rejects the inputs.
    """
    parsed = parse_spec(spec)
    target = torch.device(device)
    build_context = torch.device("meta") if target.type == "meta" else contextlib.nullcontext()
    with build_context, _imported(parsed) as module:
        where, model = _resolve(module, parsed, kwargs or {})
        model = model.to(target)
        inputs, note = _example_inputs(model, module, parsed.target, input_shapes, target)
    path = module.__file__ if parsed.is_file else getattr(module, "__file__", None)
    return LoadedModel(model, inputs, note, spec, path)
