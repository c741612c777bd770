"""The sum rule's exact cancellation: `a - b` drops a pair of terms only when both are the same known
value (the same node, opposite signs). A value written after it was read (`r[i] = v`) is not known:
`(x + r) - r` then keeps r's old value minus its new one."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.audit.test_rules_linalg import assert_labels_hold, labels


class AddWriteSubtract(nn.Module):
    def __init__(self, write: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.GroupNorm(1, 4)
        self.w = nn.Parameter(torch.full((4, 1, 1), 0.7))
        self.head = nn.Linear(4, 2)
        self.write = write

    def forward(self, x):
        h = self.conv(x)
        r = self.w * torch.ones_like(h)  # one term: r's value is known
        s = h + r
        if self.write:
            r[:, :, 0] = 0.0  # r changes after s read it: s - r = h + w * (mask of row 0)
        return self.head(F.relu(self.norm(s - r)).mean((2, 3)))


X = (torch.randn(4, 3, 5, 5, dtype=torch.float64),)


def test_adding_and_subtracting_the_same_value_cancels_it():
    v, probe = labels(AddWriteSubtract(write=False), X)
    assert v["w"].individually_si and v["w"].reason.startswith("inert: its constant term is subtracted from itself")
    assert probe.has_no_effect("w")
    assert_labels_hold(v, probe)


def test_a_value_written_in_between_is_not_cancelled():
    v, probe = labels(AddWriteSubtract(write=True), X)
    assert not v["w"].individually_si
    assert probe.scaling_error(["w"], (2.9,)) > 1e-6
    assert_labels_hold(v, probe, precise=False)
