"""Linear(8 -> 4): any input whose last dimension is not 8 is rejected by the model itself."""
from torch import nn

model = nn.Sequential(nn.Linear(8, 4))
