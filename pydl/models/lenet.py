"""LeNet-5 exactly as the seeds' table (a modern LeNet: ReLU and max-pooling).

=================================  ============  ================
layer                              output size   weight size
=================================  ============  ================
input                              1 x 28 x 28
conv (C_out = 20, K = 5, P = 2)    20 x 28 x 28  20 x 1 x 5 x 5
ReLU                               20 x 28 x 28
max-pool (K = 2, S = 2)            20 x 14 x 14
conv (C_out = 50, K = 5, P = 2)    50 x 14 x 14  50 x 20 x 5 x 5
ReLU                               50 x 14 x 14
max-pool (K = 2, S = 2)            50 x 7 x 7
flatten                            2450
linear (2450 -> 500)               500           2450 x 500
ReLU                               500
linear (500 -> 10)                 10            500 x 10
=================================  ============  ================
"""
from .. import nn
from . import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """The seeds' LeNet-5: (N, 1, 28, 28) -> (N, 10) class scores; 1,256,080 parameters.

    ``image_size`` (a multiple of 4) and ``in_channels`` adapt it to other images: the
    flattened size is 50 * (image_size / 4)^2 (2450 for 28).

    >>> net = LeNet5()
    >>> net(pydl.randn(2, 1, 28, 28)).shape
    (2, 10)
    >>> net.fc1
    Linear(in_features=2450, out_features=500, bias=True)
    """

    def __init__(self, num_classes=10, in_channels=1, image_size=28):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"LeNet5: image_size must be a multiple of 4 (two 2x2 poolings), got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, 20, kernel_size=5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5, padding=2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(50 * (image_size // 4) ** 2, 500)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc2(x)


@register_model("lenet5")
def lenet5(num_classes=10, in_channels=1, image_size=28):
    """LeNet-5 as the seeds' table: 1x28x28 -> conv 20 -> pool -> conv 50 -> pool -> 500 -> 10."""
    return LeNet5(num_classes, in_channels, image_size)
