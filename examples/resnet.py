"""Networks to try `fnd init-sweep --model` on, written as a user would write them.

fnd init-sweep --model examples/resnet.py:ResNet --input-shape 64x3x32x32 --backward --plot
fnd init-sweep --model examples/resnet.py:resnet6 --input-shape 64x3x32x32 --backward
fnd init-sweep --model examples/resnet.py:deep_mlp --input-shape 64x100
fnd init-sweep --model examples/resnet.py:deep_mlp --input-shape 64x100 --scheme kaiming
fnd init-sweep --model examples/resnet.py:he_mlp_x01 --input-shape 64x100 --seeds 3
"""

from collections import OrderedDict

import torch
from torch import nn


def deep_mlp(depth=20, width=100):
    """A deep bias-free MLP with torch's default init, U(+-1/sqrt(fan_in)): m2 falls 6x a layer."""
    layers = [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), nn.ReLU()]
    return nn.Sequential(*layers)


class Block(nn.Module):
    """He et al. 2016's basic block: conv-BN-ReLU-conv-BN, plus the shortcut, then ReLU (one ReLU module,
    twice)."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.short = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))  # (B, c_out, H / stride, W / stride)
        out = self.bn2(self.conv2(out))
        out += self.short(x)
        return self.relu(out)


class ResNet(nn.Module):
    """A small ResNet for 32x32 images: a stem, three stages of `per_stage` blocks each, global pooling, 10
    classes."""

    def __init__(self, classes=10, per_stage=1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        stages = [(16, 16, 1), (16, 32, 2), (32, 64, 2)]
        self.blocks = nn.Sequential(
            *(
                Block(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1)
                for c_in, c_out, stride in stages
                for i in range(per_stage)
            )
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))  # (B, classes)


def resnet6():
    """The CIFAR-style ResNet with two blocks a stage: 13 BatchNorm layers on the main path (the stem's and
    two a block), 2 more on the shortcuts; at init its gradient grows about 10x back to the input, as
    BatchNorm predicts (x~1.2 a BatchNorm + ReLU layer)."""
    return ResNet(per_stage=2)


def he_mlp_x01(depth=10, width=100, scaled=4):
    """Ten Linear + ReLU blocks at He's init, one Linear's weights x0.1 (net.8): RMS x0.14 there."""
    net = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())])
    for linear in net[::2]:
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
    with torch.no_grad():
        net[2 * scaled].weight.mul_(0.1)
    return nn.Sequential(OrderedDict(net=net))
