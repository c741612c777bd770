"""A VGG-11-BN-sized benchmark model (132.9M parameters, torchvision's vgg11_bn layout): eight
3x3 conv + BatchNorm + ReLU layers, five max-pools, adaptive average pool to 7x7 and the
25088 -> 4096 -> 4096 -> 1000 classifier with dropout. Written here because torchvision is not
importable beside this torch. Most weights sit in the classifier, so copying and perturbing
the weights weighs as much as the forward passes."""
import torch
from torch import nn

CONFIG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11BN(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers, in_ch = [], 3
        for v in CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                in_ch = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def example_inputs():
    return (torch.randn(2, 3, 64, 64),)
