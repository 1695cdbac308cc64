"""Pooling with autograd: max (indices kept for the backward and for max-unpooling),
average, adaptive average / max, fractional max, and max-unpooling.

Max pooling's backward is the seeds' "max routes" gate: the node keeps only the arg-max
indices and the input's shape (never the input), and the kernel scatters each output's
gradient to the input that won its window. Average pooling spreads it evenly over the
window (its node keeps nothing but the arguments).
"""
import numpy as np

from ... import random as _random
from ..._device import asarray_on
from ...autograd.function import Node
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make
from ._dispatch import as_float, kernel, tensor_arg

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "fractional_max_pool2d", "max_pool2d",
           "max_pool2d_with_indices", "max_unpool2d"]


def _input(op, input):
    tensor_arg(input, op)
    return as_float(op, input)[0]


def _record(input, out, node):
    if GradMode.enabled and input.requires_grad:
        node.next_edges = (input.grad_fn or input,)
        return _make(out, node)
    return _make(out)


class MaxPool2DWithIndicesBackward(Node):
    """Max routes: each output's gradient goes to the input its index names (overlapping
    windows add up); shared by max, adaptive max and fractional max pooling."""

    def __init__(self, indices, input_shape, name="MaxPool2DWithIndicesBackward0"):
        self.indices, self.input_shape, self._name = indices, input_shape, name

    def name(self):
        return self._name

    def backward(self, grad):
        return (kernel("max_pool2d_backward", grad)(grad, self.indices, self.input_shape),)


def _with_indices(input, out, idx, return_indices, name):
    res = _record(input, out, MaxPool2DWithIndicesBackward(idx, input.data.shape, name))
    return (res, _make(idx)) if return_indices else res


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling: (N, C, H, W) -> (N, C, OH, OW) (or unbatched (C, H, W)), the largest
    value of each KH x KW window.

    stride defaults to kernel_size; padding counts as -inf; ``OH = floor((H + 2P - D (KH - 1)
    - 1) / S) + 1`` (ceil with ``ceil_mode``). With ``return_indices`` also returns the flat
    index ``h * W + w`` of each maximum in its input plane (int64), what max_unpool2d takes.

    >>> F = pydl.nn.functional
    >>> x = pydl.tensor([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 6.0]]]])
    >>> F.max_pool2d(x, 2, return_indices=True)
    (tensor([[[[5., 8.]]]]), tensor([[[[1, 6]]]]))
    """
    x = _input("max_pool2d", input)
    out, idx = kernel("max_pool2d_forward", x)(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _with_indices(input, out, idx, return_indices, "MaxPool2DWithIndicesBackward0")


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """``max_pool2d(..., return_indices=True)``: ``(out, indices)``."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


class MaxUnpool2DBackward(Node):
    """The adjoint of a scatter is a gather: each input reads the gradient at its index."""

    def __init__(self, indices):
        self.indices = indices

    def name(self):
        return "MaxUnpool2DBackward0"

    def backward(self, grad):
        return (kernel("max_unpool2d_backward", grad)(grad, self.indices),)


def _pair(v):
    return (v, v) if not isinstance(v, (tuple, list)) else tuple(v)


def _unpool_output_size(op, x, kernel_size, stride, padding, output_size):
    k, p = _pair(kernel_size), _pair(padding)
    s = k if stride is None else _pair(stride)
    default = tuple((x.shape[-2 + i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(2))
    if output_size is None:
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == x.ndim:
        size = size[-2:]
    if len(size) != 2:
        raise ValueError(f"{op}: output_size must have 2 elements (or {x.ndim} with the leading ones), "
                         f"got {tuple(output_size)}")
    for i in range(2):
        lo, hi = default[i] - s[i], default[i] + s[i]
        if not lo < size[i] < hi:
            raise ValueError(f"{op}: invalid output_size {size} (dim {i} must be between {lo + 1} and {hi - 1})")
    return size


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool2d: each value goes back to the position its index
    names, zeros elsewhere. (N, C, H, W) -> (N, C, OH, OW) with by default
    ``OH = (H - 1) S - 2 P + KH`` (``output_size`` picks another size the pooling maps to H).

    >>> F = pydl.nn.functional
    >>> out, idx = F.max_pool2d(pydl.tensor([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 6.0]]]]), 2,
    ...                         return_indices=True)
    >>> F.max_unpool2d(out, idx, 2)
    tensor([[[[0., 5., 0., 0.],
              [0., 0., 8., 0.]]]])
    """
    op = "max_unpool2d"
    x = _input(op, input)
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor, got {idx.dtype}")
    if idx.dtype != np.int64:
        idx = idx.astype(np.int64)
    size = _unpool_output_size(op, x, kernel_size, stride, padding, output_size)
    out = kernel("max_unpool2d_forward", x)(x, idx, size)
    return _record(input, out, MaxUnpool2DBackward(idx))


class AvgPool2DBackward(Node):
    """Each output's gradient, divided by its window's divisor, to every input of its window."""

    def __init__(self, input_shape, args):
        self.input_shape, self.args = input_shape, args

    def name(self):
        return "AvgPool2DBackward0"

    def backward(self, grad):
        return (kernel("avg_pool2d_backward", grad)(grad, self.input_shape, *self.args),)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling: (N, C, H, W) -> (N, C, OH, OW), the mean of each window (the divisor
    counts the zero padding unless ``count_include_pad=False``; ``divisor_override`` fixes it).

    >>> pydl.nn.functional.avg_pool2d(pydl.arange(8.0).reshape(1, 1, 2, 4), 2)
    tensor([[[[2.5000, 4.5000]]]])
    """
    x = _input("avg_pool2d", input)
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    out = kernel("avg_pool2d_forward", x)(x, *args)
    return _record(input, out, AvgPool2DBackward(x.shape, args))


class AdaptiveAvgPool2DBackward(Node):
    def __init__(self, input_shape):
        self.input_shape = input_shape

    def name(self):
        return "AdaptiveAvgPool2DBackward0"

    def backward(self, grad):
        return (kernel("adaptive_avg_pool2d_backward", grad)(grad, self.input_shape),)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling to a fixed ``output_size`` (int, pair, None in a pair keeps
    that size): window i of n over a size-L axis is ``[floor(i L / n), ceil((i + 1) L / n))``.
    ``output_size=1`` is global average pooling.

    >>> pydl.nn.functional.adaptive_avg_pool2d(pydl.ones(2, 3, 7, 5), 1).shape
    (2, 3, 1, 1)
    """
    x = _input("adaptive_avg_pool2d", input)
    out = kernel("adaptive_avg_pool2d_forward", x)(x, output_size)
    return _record(input, out, AdaptiveAvgPool2DBackward(x.shape))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling (adaptive_avg_pool2d's windows, the max of each); with
    ``return_indices`` also the indices as max_pool2d returns them.

    >>> pydl.nn.functional.adaptive_max_pool2d(pydl.tensor([[[[1.0, 3.0, 2.0, 0.0]]]]), (1, 2))
    tensor([[[[3., 2.]]]])
    """
    x = _input("adaptive_max_pool2d", input)
    out, idx = kernel("adaptive_max_pool2d_forward", x)(x, output_size)
    return _with_indices(input, out, idx, return_indices, "AdaptiveMaxPool2DBackward0")


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling (Graham, 2014; the seeds mention it): KH x KW windows at
    pseudo-random, overlapping starts, shrinking the input by a non-integer factor.

    Exactly one of ``output_size`` (OH, OW) and ``output_ratio`` (OH = int(H * ratio)).
    The window placement of each (image, channel) comes from a uniform sample in [0, 1)
    drawn from pydl's global generator (``pydl.manual_seed`` makes it reproducible) unless
    ``_random_samples`` (N, C, 2) is given.

    >>> _ = pydl.manual_seed(0)
    >>> pydl.nn.functional.fractional_max_pool2d(pydl.randn(1, 2, 10, 10), 2, output_ratio=0.5).shape
    (1, 2, 5, 5)
    """
    op = "fractional_max_pool2d"
    x = _input(op, input)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must have 3 or 4 dimensions, (C, H, W) or (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    n, c = (x.shape[0], x.shape[1]) if x.ndim == 4 else (1, x.shape[0])
    if _random_samples is None:
        samples = _random.default_generator().random((n, c, 2), dtype=x.dtype)
    else:
        samples = _random_samples.data if isinstance(_random_samples, Tensor) else np.asarray(_random_samples)
        samples = samples.astype(x.dtype, copy=False)
    if x.ndim == 3 and samples.ndim == 3:
        samples = samples.reshape(samples.shape[-2:]) if samples.shape[0] == 1 else samples
    samples = asarray_on(x, samples)  # host draws go to the GPU with a GPU input
    out, idx = kernel("fractional_max_pool2d_forward", x)(x, kernel_size, output_size, output_ratio, samples)
    return _with_indices(input, out, idx, return_indices, "FractionalMaxPool2DBackward0")
