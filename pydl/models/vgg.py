"""VGG (Simonyan & Zisserman 2014): only 3x3 convolutions (two stacked see 5x5, three see
7x7, with fewer parameters and more non-linearities) and 2x2 max-pools, doubling the width
after each pool. torchvision's layout and names (``features.0.weight``,
``classifier.6.bias``); the ``*_bn`` variants put a BatchNorm2d after every convolution.
"""
from .. import nn
from . import register_model

__all__ = ["VGG", "make_layers", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]

CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # vgg11
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # vgg16
}


def make_layers(cfg, batch_norm=False, in_channels=3):
    """The feature extractor: an int is a 3x3 convolution (+ batch norm) + ReLU of that
    width, "M" a 2x2 max-pool."""
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """features -> adaptive average pool to 7x7 -> 4096 -> 4096 -> num_classes (dropout
    between); torchvision's initialisation (Kaiming normal for convolutions, N(0, 0.01) for
    the linear layers).

    >>> net = VGG(make_layers([8, "M", 16, "M"]), num_classes=3)
    >>> net(pydl.randn(1, 3, 16, 16)).shape
    (1, 3)
    """

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        width = [m for m in features.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.classifier = nn.Sequential(
            nn.Linear(width * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier(x)


@register_model("vgg11")
def vgg11(num_classes=1000, in_channels=3, dropout=0.5):
    """VGG-11 (configuration A): 132,863,336 parameters with 1000 classes."""
    return VGG(make_layers(CFGS["A"], False, in_channels), num_classes, dropout=dropout)


@register_model("vgg11_bn")
def vgg11_bn(num_classes=1000, in_channels=3, dropout=0.5):
    """VGG-11 with batch norm after every convolution."""
    return VGG(make_layers(CFGS["A"], True, in_channels), num_classes, dropout=dropout)


@register_model("vgg16")
def vgg16(num_classes=1000, in_channels=3, dropout=0.5):
    """VGG-16 (configuration D): 138,357,544 parameters with 1000 classes."""
    return VGG(make_layers(CFGS["D"], False, in_channels), num_classes, dropout=dropout)


@register_model("vgg16_bn")
def vgg16_bn(num_classes=1000, in_channels=3, dropout=0.5):
    """VGG-16 with batch norm after every convolution."""
    return VGG(make_layers(CFGS["D"], True, in_channels), num_classes, dropout=dropout)
