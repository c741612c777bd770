"""Writing outputs: atomically (temp file in the same directory + os.replace), never half a file."""
from __future__ import annotations

import os
import pathlib
import tempfile

from explr.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: pathlib.Path, text: str | bytes) -> None:
    """Write `text` (or an image's bytes) to `path` via a temp file in the same directory and os.replace,
    with the mode a plain open() would give (an existing file keeps its own); OutputError if impossible."""
    directory = path.parent if str(path.parent) else pathlib.Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror}); choose another -o path") from None
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
        os.chmod(temp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(temp, path)
    except OSError as exc:
        pathlib.Path(temp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror}); choose another -o path") from None


def refuse_input(output: pathlib.Path | None, option: str, inputs: dict[str, str | pathlib.Path | None]) -> None:
    """OutputError when `output` is one of the `inputs` (what -> path): an output never replaces an input."""
    if output is None:
        return
    for what, path in inputs.items():
        if path is not None and pathlib.Path(path).resolve() == output.resolve():
            raise OutputError(f"{option} {output} is the {what}; an output never overwrites an input: choose another path")
