"""`explr.convert(...)`: the library call behind `explr convert` (the CLI is a thin shell over it)."""
from __future__ import annotations

from explr.configs.adapter import ReadOptions
from explr.configs.convert import ConvertedPlan
from explr.configs.convert import convert as _convert
from explr.configs.write import Written, converted_output
from explr.fileio import write_atomic

__all__ = ["ConvertedPlan", "ReadOptions", "Written", "convert", "write_converted"]


def convert(config: str, *, format: str | None = None, model: str | None = None, lock: str | None = None,
            si=None, approximate: bool = False, **read_options) -> ConvertedPlan:
    """Read a training config and convert it exactly (see configs/convert.py).

    read_options: iters_per_epoch, dataset, dataset_size, batch_size, num_devices, drop_last,
    scheduler_interval (ReadOptions). Raises ConfigError/UnsupportedError (one line, file:line).
    """
    return _convert(config, format=format, options=ReadOptions(**read_options), model=model, lock=lock, si=si,
                    approximate=approximate)


def write_converted(converted: ConvertedPlan, output: str | None = None, in_place: bool = False) -> Written:
    """Render the converted config (or explr plan) and write it atomically when it has a path."""
    written = converted_output(converted, output, in_place)
    if written.path is not None:
        write_atomic(written.path, written.text)
    return written
