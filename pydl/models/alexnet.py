"""AlexNet (Krizhevsky et al. 2012), torchvision's single-tower version and names.

features: conv 64 11x11/4 p2 -> ReLU -> max-pool 3/2 -> conv 192 5x5 p2 -> ReLU -> max-pool
-> conv 384 3x3 -> ReLU -> conv 256 3x3 -> ReLU -> conv 256 3x3 -> ReLU -> max-pool;
avgpool: adaptive to 6x6; classifier: dropout -> 4096 -> ReLU -> dropout -> 4096 -> ReLU ->
num_classes. The seeds' worked example is its first layer: 64 11x11 filters with stride 4
and padding 2 on a 3x227x227 image give 64x56x56 with 23,296 parameters.
"""
from .. import nn
from . import register_model

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """(N, 3, H, W) -> (N, num_classes); 61,100,840 parameters with 1000 classes. Any input
    of at least 63x63 works (the adaptive pool fixes the classifier's 256 * 6 * 6 inputs).

    >>> AlexNet(num_classes=10)(pydl.randn(1, 3, 64, 64)).shape
    (1, 10)
    """

    def __init__(self, num_classes=1000, dropout=0.5, in_channels=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier(x)


@register_model("alexnet")
def alexnet(num_classes=1000, in_channels=3, dropout=0.5):
    """AlexNet (torchvision's layout)."""
    return AlexNet(num_classes, dropout, in_channels)
