"""MobileNetV2 (Sandler et al. 2018), torchvision's layout and names.

Depthwise separable convolution: a 3x3 depthwise convolution (groups = channels: one
filter per channel, 9 multiply-adds per output) followed by a 1x1 pointwise one mixing the
channels -- about k^2 times cheaper than a full k x k convolution. MobileNetV2's inverted
residual block expands the channels by t with a 1x1 (ReLU6), filters them depthwise (ReLU6),
and projects back with a linear 1x1 (no activation: the "linear bottleneck"); a shortcut
adds the input when the shape allows.

state_dict keys are torchvision's (``features.0.0.weight``, ``features.1.conv.0.0.weight``,
``features.2.conv.3.running_var``, ``classifier.1.weight``); 3,504,872 parameters with
1000 classes and width 1.0.
"""
from .. import nn
from . import register_model

__all__ = ["Conv2dNormActivation", "InvertedResidual", "MobileNetV2", "mobilenet_v2"]


def _make_divisible(v, divisor, min_value=None):
    """v rounded to a multiple of divisor, never down by more than 10% (torchvision's rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """conv (bias only without a norm layer) -> norm -> activation, "same" padding
    (torchvision.ops' block; keys ``0.weight``, ``1.weight``, ...)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation=1, inplace=True, bias=None):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups,
                            bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer(inplace=inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """1x1 expand (x expand_ratio, ReLU6) -> 3x3 depthwise (stride, ReLU6) -> 1x1 linear
    projection -> BN, plus the input when stride is 1 and the widths match.

    >>> InvertedResidual(16, 16, 1, expand_ratio=6)(pydl.randn(1, 16, 8, 8)).shape
    (1, 16, 8, 8)
    """

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None, stochastic_depth_prob=0.0):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, norm_layer=norm_layer,
                                 activation_layer=nn.ReLU6),  # depthwise
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),  # pointwise, linear
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self.stochastic_depth = (nn.StochasticDepth(stochastic_depth_prob)
                                 if stochastic_depth_prob > 0 and self.use_res_connect else None)

    def forward(self, x):
        out = self.conv(x)
        if not self.use_res_connect:
            return out
        if self.stochastic_depth is not None:
            out = self.stochastic_depth(out)
        return x + out


class MobileNetV2(nn.Module):
    """stem (3x3/2, 32) -> 17 inverted residual blocks -> 1x1 to 1280 -> global average pool
    -> dropout -> classifier. ``width_mult`` scales every width (rounded to multiples of 8).

    >>> net = MobileNetV2(num_classes=10, width_mult=0.25)
    >>> net(pydl.randn(2, 3, 32, 32)).shape
    (2, 10)
    """

    def __init__(self, num_classes=1000, width_mult=1.0, inverted_residual_setting=None, round_nearest=8, block=None,
                 norm_layer=None, dropout=0.2, in_channels=3, stochastic_depth_prob=0.0):
        super().__init__()
        block = block or InvertedResidual
        norm_layer = norm_layer or nn.BatchNorm2d
        input_channel, last_channel = 32, 1280
        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t (expansion), c (channels), n (blocks), s (first stride)
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
        if len(inverted_residual_setting) == 0 or len(inverted_residual_setting[0]) != 4:
            raise ValueError(f"inverted_residual_setting should be non-empty or a 4-element list, got "
                             f"{inverted_residual_setting}")
        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(in_channels, input_channel, stride=2, norm_layer=norm_layer,
                                         activation_layer=nn.ReLU6)]
        total = sum(n for _, _, n, _ in inverted_residual_setting)
        index = 0
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                sd = stochastic_depth_prob * index / max(total - 1, 1)
                extra = {"stochastic_depth_prob": sd} if sd > 0 else {}
                features.append(block(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t,
                                      norm_layer=norm_layer, **extra))
                input_channel = output_channel
                index += 1
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return self.classifier(x)


@register_model("mobilenet_v2")
def mobilenet_v2(num_classes=1000, in_channels=3, width_mult=1.0, dropout=0.2, stochastic_depth_prob=0.0):
    """MobileNetV2 (torchvision's layout): 3,504,872 parameters with 1000 classes."""
    return MobileNetV2(num_classes, width_mult, dropout=dropout, in_channels=in_channels,
                       stochastic_depth_prob=stochastic_depth_prob)
