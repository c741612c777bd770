"""A ResNet-18-sized benchmark model: basic blocks [2, 2, 2, 2], width 64, ImageNet stem, 224x224 (11.7M parameters).

Written here because torchvision is not importable beside this torch; same structure as torchvision's
resnet18 (post-activation basic blocks, 1x1 conv + BN projection shortcuts). The example input is a real
ImageNet-sized image, so `explr check` meets the per-step cost a user's ResNet-18 has.
"""
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), width: int = 64, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, in_ch = [], width
        for i, blocks in enumerate(layers):
            out_ch = width * 2 ** i
            stages.append(nn.Sequential(*[BasicBlock(in_ch if b == 0 else out_ch, out_ch, 2 if b == 0 and i > 0 else 1)
                                          for b in range(blocks)]))
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(num_classes: int = 1000) -> nn.Module:
    return ResNet18(num_classes=num_classes)


def example_inputs():
    return (torch.randn(2, 3, 224, 224),)
