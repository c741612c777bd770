"""A module-level `model` instance and its own example_inputs()."""
import torch
from torch import nn

model = nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.Linear(6, 2))


def example_inputs():
    return (torch.randn(3, 5),)
