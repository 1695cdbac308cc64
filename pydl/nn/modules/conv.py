"""Conv2d and ConvTranspose2d (PyTorch's names, arguments, defaults and state_dict keys)."""
import math

import numpy as np

from ...tensor import _Defaults
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(value, name, cls):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{cls}: {name} must be an int or a pair of ints, got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value), int(value))


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: arguments, parameters, initialisation, repr."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed, output_padding,
                 groups, bias, padding_mode, device=None, dtype=None):
        super().__init__()
        cls = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"{cls}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{cls}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of {_PADDING_MODES}, but got padding_mode="
                             f"'{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", cls)
        self.stride = _pair(stride, "stride", cls)
        self.dilation = _pair(dilation, "dilation", cls)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{cls}: Invalid padding string {padding!r}, should be one of ['same', 'valid']")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{cls}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding", cls)
        self.transposed = transposed
        self.output_padding = _pair(output_padding, "output_padding", cls)
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's (left, right, top, bottom) for the non-zero padding modes
        if self.padding == "valid":
            self._reversed_padding_repeated_twice = (0, 0, 0, 0)
        elif self.padding == "same":
            pads = []
            for d, k in zip(reversed(self.dilation), reversed(self.kernel_size)):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            self._reversed_padding_repeated_twice = tuple(pads)
        else:
            ph, pw = self.padding
            self._reversed_padding_repeated_twice = (pw, pw, ph, ph)
        dt = _Defaults.float_dtype if dtype is None else np.dtype(dtype)
        if transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((out_channels,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) -- U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        -- for the weight, and the same bound for the bias (fan_in from the weight's layout)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution: (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2P - D (K - 1) - 1) // S + 1.

    weight: (out_channels, in_channels / groups, KH, KW), bias: (out_channels,); both start
    as PyTorch's (kaiming_uniform_ with a = sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
    padding: int, pair, ``'same'`` or ``'valid'``; padding_mode: ``'zeros'`` (the kernel pads),
    ``'reflect'``, ``'replicate'`` or ``'circular'`` (F.pad first). groups = in_channels is a
    depthwise convolution; kernel_size 1 a 1x1 (bottleneck) convolution.

    The seeds' example: 10 filters of 5x5 on a 3x32x32 image with padding 2 keep 32x32 and
    have 10 * (5 * 5 * 3 + 1) = 760 parameters.

    >>> conv = pydl.nn.Conv2d(3, 10, 5, padding=2)
    >>> conv(pydl.randn(1, 3, 32, 32)).shape, sum(p.numel() for p in conv.parameters())
    ((1, 10, 32, 32), 760)
    >>> conv
    Conv2d(3, 10, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0, groups, bias,
                         padding_mode, device, dtype)

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            return F.conv2d(F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode), weight, bias,
                            self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class ConvTranspose2d(_ConvNd):
    """Transposed convolution (learnable up-sampling): (N, C_in, H, W) -> (N, C_out, HO, WO),
    HO = (H - 1) S - 2 P + D (K - 1) + output_padding + 1.

    weight: (in_channels, out_channels / groups, KH, KW). ``forward(input, output_size)``
    picks the output_padding that gives ``output_size``.

    >>> up = pydl.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    >>> up(pydl.randn(1, 8, 5, 5), output_size=(10, 10)).shape
    (1, 4, 10, 10)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a pair of ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                         groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)
        if len(size) == input.ndim:
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must have 2 or {input.ndim} elements (got {len(size)})")
        res = []
        for d in range(2):
            n = input.shape[input.ndim - 2 + d]
            lo = ((n - 1) * self.stride[d] - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= size[d] <= hi:
                raise ValueError(f"ConvTranspose2d: requested an output size of {size}, but valid sizes range from "
                                 f"{(lo,)} to {(hi,)} in dimension {d} (for an input of {tuple(input.shape[-2:])})")
            res.append(size[d] - lo)
        return tuple(res)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)
