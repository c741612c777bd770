"""No normalization anywhere: nothing is scale-invariant (the audit warns)."""
from torch import nn

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
