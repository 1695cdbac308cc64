"""DenseNet (Huang et al. 2016), torchvision's layout and names.

In a dense block every layer sees the concatenation of the block's input and of all
earlier layers' outputs, and adds ``growth_rate`` new channels (BN -> ReLU -> 1x1 conv to
``bn_size * growth_rate`` -> BN -> ReLU -> 3x3 conv to ``growth_rate``): features are
reused instead of re-learnt, and every layer has a short path to the loss. Transitions
between blocks halve the channels (1x1 conv) and the size (2x2 average pool).

``densenet121`` is torchvision's (7,978,856 parameters, keys such as
``features.denseblock1.denselayer1.conv1.weight``); ``densenet_cifar`` is a small model of
three blocks for 32x32 images (3x3 stem, growth rate 12).
"""
from collections import OrderedDict

from .. import nn
from .._ops.shape import cat
from ..nn import functional as F
from . import register_model

__all__ = ["DenseNet", "densenet121", "densenet_cifar"]


class _DenseLayer(nn.Module):
    """BN -> ReLU -> conv 1x1 (bottleneck) -> BN -> ReLU -> conv 3x3, on the concatenation
    of every earlier feature map of the block; returns ``growth_rate`` new channels."""

    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features):
        x = cat(features, 1) if isinstance(features, (list, tuple)) else features
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; output channels = input + num_layers * growth_rate."""

    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(num_input_features + i * growth_rate, growth_rate,
                                                              bn_size, drop_rate))

    def forward(self, init_features):
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return cat(features, 1)


class _Transition(nn.Sequential):
    """BN -> ReLU -> 1x1 conv (fewer channels) -> 2x2 average pool (half the size)."""

    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """stem -> [dense block -> transition] * (len(block_config) - 1) -> dense block -> BN ->
    ReLU -> global average pool -> classifier.

    >>> net = DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, num_classes=3, cifar_stem=True)
    >>> net(pydl.randn(2, 3, 8, 8)).shape
    (2, 3)
    """

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4, drop_rate=0.0,
                 num_classes=1000, in_channels=3, cifar_stem=False):
        super().__init__()
        if cifar_stem:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=3, stride=1, padding=1,
                                        bias=False))]
        else:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2, padding=3,
                                        bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]
        self.features = nn.Sequential(OrderedDict(stem))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features = num_features // 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        out = F.relu(self.features(x))
        out = F.adaptive_avg_pool2d(out, (1, 1)).flatten(1)
        return self.classifier(out)


@register_model("densenet121")
def densenet121(num_classes=1000, in_channels=3, drop_rate=0.0):
    """DenseNet-121: growth rate 32, blocks (6, 12, 24, 16); 7,978,856 parameters with 1000 classes."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels, drop_rate=drop_rate)


@register_model("densenet_cifar")
def densenet_cifar(num_classes=10, in_channels=3, growth_rate=12, block_config=(6, 6, 6), drop_rate=0.0):
    """A small DenseNet for 32x32 images: 3x3 stem, three dense blocks of growth rate 12."""
    return DenseNet(growth_rate, tuple(block_config), 2 * growth_rate, num_classes=num_classes,
                    in_channels=in_channels, cifar_stem=True, drop_rate=drop_rate)
