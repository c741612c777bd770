"""Records the device a fresh tensor lands on while the model is built (meta builds allocate nothing)."""
import torch
from torch import nn

IMPORTED_ON = torch.empty(0).device.type


def build_model():
    model = nn.Linear(4, 2)
    model.built_on = torch.empty(0).device.type
    model.imported_on = IMPORTED_ON
    return model
