"""ResNet (He et al. 2015) and ResNeXt (Xie et al. 2016), torchvision's layout and names.

The seeds' residual idea: a block learns F(x) and outputs relu(F(x) + x), so an identity
mapping costs nothing and gradients flow through the shortcut (the add gate distributes).
BasicBlock: two 3x3 convolutions (resnet18/34). Bottleneck: 1x1 reduce -> 3x3 -> 1x1 expand
by 4 (resnet50+); ResNeXt makes its 3x3 a grouped convolution (32 groups of width 4).
When the shape changes, the shortcut is a strided 1x1 convolution + batch norm
(``downsample``).

state_dict keys are torchvision's (``conv1.weight``, ``bn1.running_mean``,
``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.bias``), so weights move
between the two. Options beyond torchvision: ``cifar_stem`` (a 3x3 stride-1 first
convolution and no max-pool, for 32x32 images -- the ``*_cifar`` builders),
``in_channels``, and ``stochastic_depth_prob`` (drop a block's residual branch per sample
with a probability rising linearly to that value in the last block; no new state_dict keys).
"""
from .. import nn
from . import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet18_cifar", "resnet34", "resnet34_cifar", "resnet50",
           "resnet50_cifar", "resnext50_32x4d"]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution with padding, no bias (a batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups, bias=False,
                     dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution (a projection: channels in, channels out, per pixel)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _residual(block, out, identity):
    if block.stochastic_depth is not None:
        out = block.stochastic_depth(out)
    return block.relu(out + identity)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), two 3x3 convolutions."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, stochastic_depth_prob=0.0):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob) if stochastic_depth_prob > 0 else None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return _residual(self, out, identity)


class Bottleneck(nn.Module):
    """1x1 (reduce to width) -> 3x3 (stride, groups) -> 1x1 (expand to 4 x planes), plus the
    shortcut; the stride sits on the 3x3 as in torchvision (ResNet v1.5)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, stochastic_depth_prob=0.0):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob) if stochastic_depth_prob > 0 else None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return _residual(self, out, identity)


class ResNet(nn.Module):
    """conv1 (7x7/2) -> bn1 -> relu -> maxpool (3x3/2) -> layer1..layer4 -> global average
    pool -> fc. ``layers``: blocks per stage; stages 2-4 halve the size and double the width.

    >>> net = resnet18(num_classes=10, cifar_stem=True)
    >>> net(pydl.randn(2, 3, 32, 32)).shape
    (2, 10)
    >>> [k for k in net.state_dict()][:3]
    ['conv1.weight', 'bn1.weight', 'bn1.bias']
    """

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
                 replace_stride_with_dilation=None, norm_layer=None, in_channels=3, cifar_stem=False,
                 stochastic_depth_prob=0.0):
        super().__init__()
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, got "
                             f"{replace_stride_with_dilation}")
        self.groups, self.base_width = groups, width_per_group
        self._sd_prob, self._sd_total, self._sd_index = stochastic_depth_prob, sum(layers), 0
        if cifar_stem:  # 32x32 inputs: keep the resolution for the first stage
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:  # each block starts as the identity
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        layers = []
        for i in range(blocks):
            sd = self._sd_prob * self._sd_index / max(self._sd_total - 1, 1)  # linear decay rule, 0 in block 0
            self._sd_index += 1
            if i == 0:
                layers.append(block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                                    previous_dilation, norm_layer, stochastic_depth_prob=sd))
                self.inplanes = planes * block.expansion
            else:
                layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                    dilation=self.dilation, norm_layer=norm_layer, stochastic_depth_prob=sd))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)
        return self.fc(x)


@register_model("resnet18")
def resnet18(num_classes=1000, in_channels=3, cifar_stem=False, stochastic_depth_prob=0.0, zero_init_residual=False):
    """ResNet-18: BasicBlocks [2, 2, 2, 2]; 11,689,512 parameters with 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, zero_init_residual, in_channels=in_channels,
                  cifar_stem=cifar_stem, stochastic_depth_prob=stochastic_depth_prob)


@register_model("resnet34")
def resnet34(num_classes=1000, in_channels=3, cifar_stem=False, stochastic_depth_prob=0.0, zero_init_residual=False):
    """ResNet-34: BasicBlocks [3, 4, 6, 3]; 21,797,672 parameters with 1000 classes."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, zero_init_residual, in_channels=in_channels,
                  cifar_stem=cifar_stem, stochastic_depth_prob=stochastic_depth_prob)


@register_model("resnet50")
def resnet50(num_classes=1000, in_channels=3, cifar_stem=False, stochastic_depth_prob=0.0, zero_init_residual=False):
    """ResNet-50: Bottlenecks [3, 4, 6, 3]; 25,557,032 parameters with 1000 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, zero_init_residual, in_channels=in_channels,
                  cifar_stem=cifar_stem, stochastic_depth_prob=stochastic_depth_prob)


@register_model("resnext50_32x4d")
def resnext50_32x4d(num_classes=1000, in_channels=3, cifar_stem=False, stochastic_depth_prob=0.0,
                    zero_init_residual=False):
    """ResNeXt-50 32x4d: Bottlenecks [3, 4, 6, 3] whose 3x3 is a grouped convolution (32
    groups, 4 channels each at the first stage); 25,028,904 parameters with 1000 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, zero_init_residual, groups=32, width_per_group=4,
                  in_channels=in_channels, cifar_stem=cifar_stem, stochastic_depth_prob=stochastic_depth_prob)


@register_model("resnet18_cifar")
def resnet18_cifar(num_classes=10, in_channels=3, stochastic_depth_prob=0.0):
    """ResNet-18 for 32x32 images: a 3x3 stride-1 stem and no max-pool (torchvision's keys)."""
    return resnet18(num_classes, in_channels, True, stochastic_depth_prob)


@register_model("resnet34_cifar")
def resnet34_cifar(num_classes=10, in_channels=3, stochastic_depth_prob=0.0):
    """ResNet-34 for 32x32 images (3x3 stem, no max-pool)."""
    return resnet34(num_classes, in_channels, True, stochastic_depth_prob)


@register_model("resnet50_cifar")
def resnet50_cifar(num_classes=10, in_channels=3, stochastic_depth_prob=0.0):
    """ResNet-50 for 32x32 images (3x3 stem, no max-pool)."""
    return resnet50(num_classes, in_channels, True, stochastic_depth_prob)
