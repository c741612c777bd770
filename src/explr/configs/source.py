"""A loaded YAML config: its text, its round-trip tree, and file:line of any key path.

ruamel.yaml's round-trip loader is used because it keeps line/column of every key, which gives
TrainingPlan facts their file:line and lets the writer edit in place.
"""
from __future__ import annotations

import io
import pathlib
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from explr.errors import ConfigError
from explr.findings import Location

KeyPath = tuple[Any, ...]  # e.g. ("SOLVER", "BASE_LR") or ("optimizer", "init_args", "lr")


def round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return yaml


@dataclass
class ConfigSource:
    path: pathlib.Path
    text: str
    data: Any  # ruamel CommentedMap (behaves like a dict)

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "ConfigSource":
        path = pathlib.Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file; pass the path of a training config") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        if path.suffix == ".py":  # a Python config (mmengine): its own adapter executes it; no YAML tree
            return cls(path, text, {})
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str | pathlib.Path = "<string>") -> "ConfigSource":
        path = pathlib.Path(path)
        try:
            data = round_trip_yaml().load(io.StringIO(text))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}; fix the syntax there") from None
        if data is None:
            raise ConfigError(f"{path}: the file is empty; pass a training config")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
        return cls(path, text, data)

    def get(self, keypath: KeyPath, default: Any = None) -> Any:
        node = self.data
        for key in keypath:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
                node = node[key]
            else:
                return default
        return node

    def has(self, keypath: KeyPath) -> bool:
        sentinel = object()
        return self.get(keypath, sentinel) is not sentinel

    def location(self, keypath: KeyPath) -> Location:
        """file:line of the key at `keypath` (1-based); the file alone when unknown."""
        parent = self.get(keypath[:-1]) if keypath else None
        line = None
        lc = getattr(parent, "lc", None)
        if lc is not None:
            try:
                line = (lc.key(keypath[-1]) if isinstance(parent, dict) else lc.item(keypath[-1]))[0] + 1
            except (KeyError, IndexError, TypeError):
                line = None
        return Location(str(self.path), line)

    def where(self, keypath: KeyPath) -> str:
        return str(self.location(keypath))
