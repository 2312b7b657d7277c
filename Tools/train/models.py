"""Backbones with exit heads: a head is global average pool (or a 2x2 grid) -> one FC to K classes."""
import torch
from torch import nn

from exits import Head, head_grid


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VGGS(nn.Module):
    """VGG-S for 1x28x28: three stages of two 3x3 conv+BN+ReLU (32, 64, 128), 2x2 max-pool after
    each stage, FC 1152->256, ReLU, FC 256->10; one head after every conv block (six)."""

    def __init__(self, classes=10, head_type="gap"):
        super().__init__()
        widths = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
        sides = [28, 28, 14, 14, 7, 7]
        self.blocks = nn.ModuleList(conv_bn_relu(a, b) for a, b in widths)
        self.heads = nn.ModuleList(Head(b, classes, head_grid(head_type, s, s)) for (_, b), s in zip(widths, sides))
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


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN with a residual Add (1x1 conv+BN shortcut when the shape changes), then ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else \
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNetS(nn.Module):
    """ResNet-S for 1x28x28: a 3x3 stem (32), then stages of one residual block each at 32 (28x28),
    64 (stride 2, 14x14) and 128 (stride 2, 7x7), global average pool, FC 128->10. Heads after the
    stem and after the first two stages (after the last one a head would duplicate the classifier)."""

    def __init__(self, classes=10, head_type="gap"):
        super().__init__()
        self.stem = conv_bn_relu(1, 32)
        self.stages = nn.ModuleList([BasicBlock(32, 32, 1), BasicBlock(32, 64, 2), BasicBlock(64, 128, 2)])
        self.heads = nn.ModuleList(Head(c, classes, head_grid(head_type, s, s)) for c, s in ((32, 28), (32, 28), (64, 14)))
        self.classifier = nn.Linear(128, classes)

    def forward(self, x):
        x = self.stem(x)
        head_logits = [self.heads[0](x)]
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i + 1 < len(self.heads):
                head_logits.append(self.heads[i + 1](x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x), head_logits


def separable(cin, cout, stride):
    """Depthwise 3x3 conv+BN+ReLU6, then pointwise 1x1 conv+BN+ReLU6."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class MobileNetS(nn.Module):
    """MobileNet-S for 1x28x28: a 3x3 stem (32, ReLU6), depthwise separable blocks 32->64 (28x28),
    64->128 (stride 2, 14x14), 128->128, 128->256 (stride 2, 7x7), 256->256, global average pool,
    FC 256->10. One head after each separable block but the last."""

    def __init__(self, classes=10, head_type="gap"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        plan = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1)]
        sides = [28, 14, 14, 7]
        self.blocks = nn.ModuleList(separable(a, b, s) for a, b, s in plan)
        self.heads = nn.ModuleList(Head(b, classes, head_grid(head_type, h, h)) for (_, b, _), h in zip(plan, sides))
        self.classifier = nn.Linear(256, classes)

    def forward(self, x):
        x = self.stem(x)
        head_logits = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.heads):
                head_logits.append(self.heads[i](x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x), head_logits


ARCHS = {"vgg-s": VGGS, "resnet-s": ResNetS, "mobilenet-s": MobileNetS}


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand conv+BN+ReLU6 (skipped when expand is 1), depthwise 3x3
    conv+BN+ReLU6, 1x1 project conv+BN (linear); the input is added back when the shape is kept."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        mid = cin * expand
        layers = [] if expand == 1 else \
            [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
                   nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class CameraMobileNet(nn.Module):
    """MobileNetV2-style network for 3x96x96 camera pictures (camera.py): a 3x3 stem 3->16 stride 2
    (48x48), inverted-residual stages at 16 (48x48, expand 1: the expansion would cost most of the
    MACs at this resolution), 24 (stride 2, 24x24), 32 (stride 2, 12x12), 64 (stride 2, 6x6), the
    last three of two blocks (expand 4, the second residual), 1x1 conv 64->256 + ReLU6, global
    average pool, FC 256->10. About 15 M MACs. One head after each of the first three stages."""

    size = 96
    channels = 3

    def __init__(self, classes=10, head_type="gap"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True))
        plan = [(16, 16, 1, 1, 1), (16, 24, 2, 4, 2), (24, 32, 2, 4, 2), (32, 64, 2, 4, 2)]  # cin, cout, stride, expand, blocks
        self.stages = nn.ModuleList(
            nn.Sequential(*(InvertedResidual(cin if b == 0 else cout, cout, stride if b == 0 else 1, expand)
                            for b in range(blocks)))
            for cin, cout, stride, expand, blocks in plan)
        self.heads = nn.ModuleList(Head(cout, classes, head_grid(head_type, side, side))
                                   for (_, cout, _, _, _), side in zip(plan, (48, 24, 12)))
        self.last = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU6(inplace=True))
        self.classifier = nn.Linear(256, classes)

    def forward(self, x):
        x = self.stem(x)
        head_logits = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.heads):
                head_logits.append(self.heads[i](x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(self.last(x), 1), 1)
        return self.classifier(x), head_logits


ARCHS["camera-mobilenet"] = CameraMobileNet
