"""OmegaConf interpolations (`lr: ${optim.lr}`) in a loaded config, resolved by omegaconf itself.

The config that Hydra's `--cfg job` prints, or that a run saves as `.hydra/config.yaml`, keeps its
interpolations; the values the framework trains with are what OmegaConf resolves them to, so
omegaconf (the library made for this) decides, never a re-implementation. Values are resolved in the
ruamel tree in place (key positions stay, so facts keep their file:line). A value that cannot be
resolved (missing key, a resolver only the training code registers, `???`) stays an `Unresolved`
string and is an error only where explr reads it: the line then names the key and why.
"""
from __future__ import annotations

from typing import Any, Iterator

KeyPath = tuple[Any, ...]

FRAMEWORKS_EXTRA = "pip install 'explr[frameworks]'"


class Unresolved(str):
    """A config value omegaconf could not resolve; `reason` says why (one clause)."""

    reason: str

    def __new__(cls, raw: str, reason: str) -> "Unresolved":
        value = super().__new__(cls, raw)
        value.reason = reason
        return value


def needs_resolving(value: Any) -> bool:
    return isinstance(value, str) and not isinstance(value, Unresolved) and ("${" in value or value == "???")


def _leaves(node: Any, path: KeyPath = ()) -> Iterator[tuple[Any, Any, KeyPath]]:
    """(container, key, key path) of every string leaf that needs resolving."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        if needs_resolving(child):
            yield node, key, path + (key,)
        else:
            yield from _leaves(child, path + (key,))


def _put(parent: Any, key: Any, value: Any) -> None:
    """parent[key] = value, past ruamel's __setitem__ (it re-wraps a str in the old value's quoting class)."""
    (dict if isinstance(parent, dict) else list).__setitem__(parent, key, value)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if type(exc).__name__ == "UnsupportedInterpolationType":
        return f"{text}: a custom resolver registered by the training code; replace it with its value"
    if type(exc).__name__ == "MissingMandatoryValue":
        return "is ??? (a mandatory value given on the command line); set it in the config"
    return f"{text}; fix the interpolation or write the value"


def _omegaconf_tree(text: str, data: Any):
    """The config as OmegaConf loads it (its own YAML reading, as Hydra does); from `data` if it cannot."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.create(text)
    except Exception:  # noqa: BLE001 - a YAML construct OmegaConf rejects: fall back to ruamel's values
        return OmegaConf.create(_plain(data))


def resolve_in_place(data: Any, text: str) -> None:
    """Replace every `${...}` leaf of `data` (a ruamel tree of `text`) by omegaconf's resolution, or an Unresolved."""
    found = list(_leaves(data))
    if not found:
        return
    try:
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:
        for parent, key, _ in found:
            _put(parent, key, Unresolved(parent[key], f"interpolations need omegaconf ({FRAMEWORKS_EXTRA})"))
        return
    config = _omegaconf_tree(text, data)
    for parent, key, path in found:
        try:
            node = config
            for part in path[:-1]:
                node = node[part]
            value = node[path[-1]]
            _put(parent, key, OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value)
        except (OmegaConfBaseException, ValueError, TypeError, KeyError) as exc:
            _put(parent, key, Unresolved(parent[key], _reason(exc)))


def unresolved_in(node: Any, path: KeyPath = ()) -> tuple[KeyPath, Unresolved] | None:
    """The first Unresolved value at or under `node` (its key path and value), else None."""
    if isinstance(node, Unresolved):
        return path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found = unresolved_in(child, path + (key,))
        if found:
            return found
    return None
