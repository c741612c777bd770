"""Surgical, comment-preserving YAML edits: change only the lines the conversion touches.

Why not a ruamel round trip: ruamel re-emits the whole document, so it normalises indentation of
sequences, spacing before comments, quoting, line wrapping and flow style. `diff input output` would
then show lines the conversion never meant to touch. Here ruamel is used only to *locate* keys
(line/column of each key and value); the edits splice new text into the original at those lines, so
every other byte — comments, key order, blank lines, formatting — is the user's, by construction.
New text is rendered in block style at the indentation of where it goes; the result is re-parsed.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter

from explr.configs.source import ConfigSource, KeyPath
from explr.errors import ConfigError

_COMMENT = re.compile(r"\s+#.*$")


def line_comment(line: str) -> str | None:
    """The comment on a YAML line (text after an unquoted `#` that starts the line or follows a space), else None."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"" and (i == 0 or line[i - 1] in " :[{,-"):
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i:]
    return None


def comments(text: str) -> list[str]:
    """Every comment of a YAML text, in order (`# ...`, as written)."""
    return [c for c in map(line_comment, text.splitlines()) if c is not None]


def leading_comments(text: str) -> list[str]:
    """The comment block that opens a file (blank lines inside it kept out)."""
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        if line.strip():
            out.append(line.strip())
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _flowed(value: Any) -> Any:
    """Short lists of scalars in flow style ([100, 150]), everything else in block style."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _flowed(v)
        return out
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(_flowed(v) for v in value)
        if all(not isinstance(v, (dict, list, tuple)) for v in value) and len(value) <= 8:
            seq.fa.set_flow_style()
        return seq
    return value


def float_text(value: float) -> str:
    """A float that YAML 1.1 (PyYAML: LightningCLI, OmegaConf) and 1.2 both read as a float: `1.0e-05`, not `1e-05`."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


class _Representer(RoundTripRepresenter):
    """ruamel's round-trip representer, with floats written by `float_text` (a subclass: nothing global changes)."""

    def represent_float(self, data: float):
        return self.represent_scalar("tag:yaml.org,2002:float", float_text(data))


_Representer.add_representer(float, _Representer.represent_float)


def render(value: Any, indent: int) -> list[str]:
    """`value` as block YAML lines, each indented by `indent` spaces."""
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    stream = io.StringIO()
    yaml.dump(_flowed(value), stream)
    lines = stream.getvalue().splitlines()
    if isinstance(value, (list, tuple)):  # a top-level sequence is dumped at the item offset (2): undo it
        lines = [line[2:] for line in lines]
    return [" " * indent + line if line else line for line in lines]


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int  # first replaced line (0-based)
    end: int  # one past the last replaced line
    lines: list[str]


class Rewriter:
    """Collects edits against the original text of `source`, then applies them bottom-up."""

    def __init__(self, source: ConfigSource):
        self.source = source
        self.lines = source.text.splitlines()
        self.edits: list[_Edit] = []

    # ---- locating ---------------------------------------------------------------------------------
    def key_position(self, keypath: KeyPath) -> tuple[int, int]:
        """(line, column) of the last key of `keypath`, 0-based."""
        parent = self.source.get(keypath[:-1])
        try:
            return tuple(parent.lc.key(keypath[-1]))
        except (AttributeError, KeyError, TypeError):
            raise ConfigError(f"{self.source.where(keypath)}: cannot locate {'.'.join(map(str, keypath))} "
                              "in the file to edit it (its value comes from an interpolation or another file): "
                              "write that key out in this file, then convert again") from None

    def block_end(self, line: int, column: int) -> int:
        """One past the last line of the value that starts at the key on `line` (trailing comments excluded)."""
        end, last = line + 1, line + 1
        while end < len(self.lines):
            text = self.lines[end]
            if not _is_filler(text):
                inside = _indent(text) > column or (_indent(text) == column and text.lstrip().startswith("- "))
                if not inside:
                    break
                last = end + 1
            end += 1
        return last

    # ---- edits ------------------------------------------------------------------------------------
    def replace_value(self, keypath: KeyPath, value: Any) -> None:
        """Replace the value of the key at `keypath`, keeping the key line's own comment and, as comment lines
        above the key, every comment of the replaced lines (the output's comments are a superset of the input's)."""
        line, column = self.key_position(keypath)
        end = self.block_end(line, column)
        head = self.lines[line]
        comment = _COMMENT.search(head[head.index(":", column) + 1:])
        key_text = head[: head.index(":", column) + 1]
        suffix = comment.group(0) if comment else ""
        start = len(key_text) - len(key_text.lstrip(" -"))  # "  - key:" -> the column of the dash
        kept = [" " * start + c for c in map(line_comment, self.lines[line + 1:end]) if c is not None]
        if not isinstance(value, (dict, list, tuple)):
            self.edits.append(_Edit(line, end, kept + [f"{key_text} {render(value, 0)[0]}{suffix}"]))
            return
        self.edits.append(_Edit(line, end, kept + [key_text + suffix] + render(value, column + 2)))

    def add_key(self, mapping: KeyPath, key: str, value: Any) -> None:
        """Add `key: value` as the last key of the block mapping at `mapping` (() = top level)."""
        node = self.source.get(mapping)
        if not isinstance(node, dict):
            raise ConfigError(f"{self.source.where(mapping)}: {'.'.join(map(str, mapping))} must be a mapping "
                              f"for explr to add {key!r} to it")
        # `trainer: {max_epochs: 3}`, or `trainer: ${base}` (a plain dict after interpolation, with no lines of its
        # own to add to): rewrite that value in block style. The top level is always a parsed CommentedMap.
        if not isinstance(node, CommentedMap) or mapping and node.fa.flow_style():
            self.replace_value(mapping, {**node, key: value})
            return
        if node:
            last_line, column = tuple(node.lc.key(list(node)[-1]))
            at = self.block_end(last_line, column)
        else:
            column, at = (self.key_position(mapping)[1] + 2 if mapping else 0), len(self.lines)
        self.edits.append(_Edit(at, at, render({key: value}, column)))

    def append_item(self, sequence: KeyPath, item: Any) -> None:
        """Append `item` to the block sequence at `sequence`."""
        node = self.source.get(sequence)
        if not isinstance(node, CommentedSeq) or node.fa.flow_style() or not node:  # a plain list came from ${...}
            raise ConfigError(f"{self.source.where(sequence)}: {'.'.join(map(str, sequence))} must be a non-empty "
                              "block list (one `- item` per line) for explr to append to it")
        last_line, column = tuple(node.lc.item(len(node) - 1))
        before = self.lines[last_line][:column].rstrip()  # "    -" of "    -   y: 2": the item's dash
        dash = len(before) - 1 if before.endswith("-") else column
        at = self.block_end(last_line, dash)
        self.edits.append(_Edit(at, at, render([item], dash)))

    # ---- result -----------------------------------------------------------------------------------
    def text(self) -> str:
        lines = list(self.lines)
        # bottom-up so earlier line numbers stay valid; at one insertion point the first-added edit comes first
        order = sorted(range(len(self.edits)), key=lambda i: (self.edits[i].start, self.edits[i].end, i), reverse=True)
        for edit in (self.edits[i] for i in order):
            lines[edit.start:edit.end] = edit.lines
        out = "\n".join(lines) + ("\n" if self.source.text.endswith("\n") or not self.source.text else "")
        ConfigSource.parse(out, self.source.path)  # the edit must leave valid YAML
        return out
