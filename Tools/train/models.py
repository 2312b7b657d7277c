"""Backbones with exclusion heads (PAPER.md): a head is global average pool -> one FC to K classes."""
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VGGS(nn.Module):
    """VGG-S for 1x28x28: three stages of two 3x3 conv+BN+ReLU (32, 64, 128), 2x2 max-pool after
    each stage, FC 1152->256, ReLU, FC 256->10; one head after every conv block (six)."""

    def __init__(self, classes=10):
        super().__init__()
        widths = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
        self.blocks = nn.ModuleList(conv_bn_relu(a, b) for a, b in widths)
        self.heads = nn.ModuleList(Head(b, classes) for _, b in widths)
        self.pool = nn.MaxPool2d(2)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.ReLU(inplace=True),
                                        nn.Linear(256, classes))

    def forward(self, x):
        head_logits = []
        for i, (block, head) in enumerate(zip(self.blocks, self.heads)):
            x = block(x)
            head_logits.append(head(x))
            if i % 2 == 1:
                x = self.pool(x)
        return self.classifier(x), head_logits


ARCHS = {"vgg-s": VGGS}
