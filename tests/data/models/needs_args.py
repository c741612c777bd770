"""A factory with a required argument."""
from torch import nn


def build_model(width, depth=2):
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])
