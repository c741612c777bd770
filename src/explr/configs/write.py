"""Writing a ConvertedPlan: the converted config in its own format, or the explr-native plan.

"rewrite" formats (configs/formats.py) edit the user's file surgically (configs/rewrite.py) through
their adapter's `rewrite(converted) -> (text, notes)`; "plan" formats get the explr-native plan,
generically; "inherit" formats (mmengine, detectron2) get a new config that inherits the input. Output goes to
stdout, `-o FILE`, or — only with --in-place — over the input (for "plan" formats: next to it, as
NAME.explr.yaml; for "inherit" formats: NAME_explr.py). Every write is atomic (temp file + os.replace).
"""
from __future__ import annotations

import difflib
import os
import pathlib
from dataclasses import dataclass

from explr.configs.convert import ConvertedPlan
from explr.configs.explr_format import plan_document
from explr.configs.rewrite import leading_comments, render
from explr.configs.texp_args import texp_section
from explr.errors import ConfigError

USE_PLAN = ("optimizer, scheduler = explr.integrations.build(model, {path!r}, example_inputs=batch)  # replaces "
            "the framework's optimizer + scheduler; the LR then follows every optimizer.step()")
SIDE_FILES = {"plan": ".explr.yaml", "inherit": "_explr{suffix}"}  # --in-place output next to the input
DIFF_LINES = 40  # --check shows this much of the diff: enough to see what changed, short in a CI log


@dataclass(frozen=True, slots=True)
class Written:
    text: str
    path: pathlib.Path | None  # None: stdout
    notes: list[str]  # what the user has to know or do (stderr)


def plan_text(converted: ConvertedPlan, use_path: str) -> str:
    """The explr-native plan; it repeats the source's leading comment block (what the run is, its provenance)."""
    source_head = "".join(f"{line}\n" for line in leading_comments(converted.source.text))
    header = (f"# explr plan converted from {converted.plan.path} ({converted.detected.name}).\n"
              f"# Use: {USE_PLAN.format(path=use_path)}\n{source_head}")
    return header + "\n".join(render({**plan_document(converted.plan), "texp": texp_section(converted)}, 0)) + "\n"


def destination(converted: ConvertedPlan, output: str | None, in_place: bool) -> pathlib.Path | None:
    source_path = converted.source.path.resolve()
    if output and in_place:
        raise ConfigError("give either -o FILE or --in-place, not both")
    if output:
        path = pathlib.Path(output)
        if path.resolve() == source_path:
            raise ConfigError(f"{output}: -o names the input file; pass --in-place to overwrite it")
        return path
    if not in_place:
        return None
    writes = converted.detected.entry.writes
    if converted.source.composed and writes != "plan":
        raise ConfigError(f"{converted.source.path}: the converted config is Hydra's composition of this config and "
                          "its groups; write it with -o FILE (then run with --config-name FILE), not --in-place")
    if writes in SIDE_FILES:  # never over the input: a plan next to it, or a config that inherits it
        source = converted.source.path
        return source.with_name(source.stem + SIDE_FILES[writes].format(suffix=source.suffix))
    return converted.source.path


def base_path(source: pathlib.Path, output: pathlib.Path | None) -> str:
    """`source` relative to the directory of `output`, for an inheriting config (stdout: saved next to it)."""
    start = (output.parent if output is not None else source.parent).resolve()
    relative = pathlib.Path(os.path.relpath(source.resolve(), start)).as_posix()
    return relative if relative.startswith("../") else "./" + relative


def converted_output(converted: ConvertedPlan, output: str | None = None, in_place: bool = False) -> Written:
    """The text to write and where; nothing is written yet (so every error comes before any write)."""
    path = destination(converted, output, in_place)
    if converted.detected.entry.writes == "plan":
        use_path = str(path) if path else f"{converted.source.path.stem}.explr.yaml"
        note = f"{converted.detected.name} builds its optimizer in code: " + USE_PLAN.format(path=use_path)
        return Written(plan_text(converted, use_path), path, [note])
    text, notes = converted.detected.entry.write(converted, path)
    return Written(text, path, notes)


def committed_output(converted: ConvertedPlan, output: str | None) -> Written:
    """What `convert -o OUTPUT` would write (plan formats: `--in-place`, NAME.explr.yaml), for --check."""
    if output is None and converted.detected.entry.writes not in SIDE_FILES:
        raise ConfigError(f"{converted.source.path}: --check compares with the committed converted "
                          f"{converted.detected.name} config: pass -o COMMITTED_FILE")
    return converted_output(converted, output, in_place=output is None)


def staleness(written: Written) -> str | None:
    """None when the file at written.path already holds written.text; else a reason and a short unified diff."""
    path = written.path
    if path is None:  # `-o ""`: no file to compare with
        raise ConfigError("--check compares with the committed converted config: pass -o COMMITTED_FILE")
    if not path.is_file():
        return f"{path}: no committed converted config; run explr convert to write it"
    try:
        committed = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the committed converted config: {exc}") from None
    if committed == written.text:
        return None
    diff = list(difflib.unified_diff(committed.splitlines(keepends=True), written.text.splitlines(keepends=True),
                                     f"{path} (committed)", f"{path} (convert now)", n=1))
    more = [f"... ({len(diff) - DIFF_LINES} more diff lines)\n"] if len(diff) > DIFF_LINES else []
    body = "".join(line if line.endswith("\n") else line + "\n" for line in diff[:DIFF_LINES] + more)
    return f"{path} is stale: re-run explr convert to update it\n" + body
