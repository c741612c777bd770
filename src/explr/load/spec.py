"""Model spec -> the file or module it names, imported.

Spec forms: `path/to/file.py`, `path/to/file.py:NAME` and `package.module:NAME`. A file is imported under a
unique module name with its directory importable during the load; the sibling modules it imported are
forgotten afterwards. Every failure is a one-line LoadError naming the file or module.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

from explr.errors import LoadError, quote_error

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_unique_ids = itertools.count()


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
def imported(spec: ModelSpec) -> Iterator[ModuleType]:
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
