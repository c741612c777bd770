"""What a TEXP checkpoint must match to be resumed exactly: the param-group layout and the original LRs so far.

The LR digest is a rolling hash over the float64 bits of every group's original LR, index by index, so a
checkpoint of a run with another schedule (a milestone moved by one iteration, another base LR, another
warmup) is refused on resume instead of silently continuing a different run.
"""
from __future__ import annotations

import struct
from typing import Callable

_MODULUS = (1 << 61) - 1
_BASE = 1_000_003


def fold(digest: int, lrs: list[float]) -> int:
    """The digest after one more iteration's original LRs."""
    for lr in lrs:
        (bits,) = struct.unpack("<Q", struct.pack("<d", float(lr)))
        digest = (digest * _BASE + bits + 1) % _MODULUS
    return digest


def digest_of(lrs_at: Callable[[int], list[float]], n: int) -> int:
    """The digest of iterations 0..n-1."""
    digest = 0
    for i in range(n):
        digest = fold(digest, lrs_at(i))
    return digest


def group_layout(param_groups: list[dict], si_tag: str) -> list[list]:
    """Per param group: [SI?, number of tensors, number of elements] — what a checkpoint's groups must match."""
    return [[bool(g.get(si_tag)), len(g["params"]), sum(p.numel() for p in g["params"])] for g in param_groups]


def first_difference(saved: list, here: list, what: str) -> str | None:
    """A description of the first entry where two layouts differ, or None."""
    if len(saved) != len(here):
        return f"the checkpoint has {len(saved)} {what}, this run {len(here)}"
    for i, (a, b) in enumerate(zip(saved, here)):
        if list(a) != list(b):
            return f"{what} {i} is {a} in the checkpoint, {b} here"
    return None
