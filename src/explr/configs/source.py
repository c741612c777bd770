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
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from explr.configs.interpolation import Unresolved, resolve_in_place
from explr.errors import ConfigError
from explr.findings import Location

KeyPath = tuple[Any, ...]  # e.g. ("SOLVER", "BASE_LR") or ("optimizer", "init_args", "lr")


def round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return yaml


def decoded(raw: bytes, path: pathlib.Path) -> str:
    """The text of a config file; a binary or non-UTF-8 file is a ConfigError (YAML configs are UTF-8 text)."""
    if b"\x00" in raw:
        raise ConfigError(f"{path}: a binary file (it holds NUL bytes), not a YAML config; pass a training config")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          "save the config as UTF-8 or pass a training config") from None


@dataclass
class ConfigSource:
    path: pathlib.Path
    text: str
    data: Any  # ruamel CommentedMap (behaves like a dict)
    composed: bool = False  # composed by Hydra from `path` and its config groups: lines are not `path`'s

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "ConfigSource":
        path = pathlib.Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file; pass the path of a training config") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        text = decoded(raw, path)
        if path.suffix == ".py":  # a Python config (mmengine): its own adapter executes it; no YAML tree
            return cls(path, text, {})
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str | pathlib.Path = "<string>", composed: bool = False) -> "ConfigSource":
        path = pathlib.Path(path)
        try:
            data = round_trip_yaml().load(io.StringIO(text))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}; fix the syntax there") from None
        except YAMLError as exc:  # the reader's errors (control characters) carry no mark
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{path}: not a YAML text file ({first}); pass a training config") from None
        if data is None:
            raise ConfigError(f"{path}: the file is empty; pass a training config")
        if not isinstance(data, dict):
            kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
            raise ConfigError(f"{path}: the top level must be a mapping of keys, not {kind}; pass a training config")
        resolve_in_place(data, text)  # Hydra's `${...}`: the values the framework runs with
        return cls(path, text, data, composed)

    def get(self, keypath: KeyPath, default: Any = None) -> Any:
        """The value at `keypath` (`default` when absent); ConfigError when it holds an unresolvable interpolation."""
        value = self._lookup(keypath, default)
        if isinstance(value, Unresolved):
            raise self.unresolved_error(keypath, value)
        return value

    def unresolved_error(self, keypath: KeyPath, value: Unresolved) -> ConfigError:
        return ConfigError(f"{self.where(keypath)}: {'.'.join(map(str, keypath))}: cannot resolve {str(value)!r}: "
                           f"{value.reason}")

    def _lookup(self, keypath: KeyPath, default: Any = None) -> Any:
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
        return self._lookup(keypath, sentinel) is not sentinel

    def location(self, keypath: KeyPath) -> Location:
        """file:line of the key at `keypath` (1-based); the file alone when unknown."""
        parent = self._lookup(keypath[:-1]) if keypath and not self.composed else None
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
