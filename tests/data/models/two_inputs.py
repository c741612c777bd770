"""Two inputs (an image and a feature vector); no example_inputs(), so shapes come from --input-shape."""
from torch import nn


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.lin = nn.Linear(5, 4)

    def forward(self, image, features):
        return self.conv(image).mean(dim=(2, 3)) + self.lin(features)
