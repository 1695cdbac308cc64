"""conv2d and conv_transpose2d through the conv kernels (im2col + gemm), with autograd.

The forward and backward kernels take the arrays as they are (no copies here); the node
keeps the input and the weight -- exactly what the backward reads (dW = dout @ cols^T
rebuilds the columns from the input, dX = col2im(W^T dout)) -- and asks the kernel only
for the gradients some edge needs (``needs=``).
"""
import numpy as np

from ..._device import array_module
from ...autograd.function import Node
from ...autograd.grad_mode import GradMode
from ...tensor import _make
from ._dispatch import as_float, edge, kernel, needs_of, tensor_arg

__all__ = ["conv2d", "conv_transpose2d", "pad"]


class ConvolutionBackward(Node):
    """y = conv(x, W) + b: dX = col2im(W^T dY), dW = dY cols^T, db = sum dY (the seeds'
    matmul rule on the im2col product, and the add gate for the bias)."""

    def __init__(self, edges, x, w, args, transposed, unbatched):
        self.next_edges = edges
        self.x, self.w, self.args = x, w, args
        self.transposed, self.unbatched = transposed, unbatched

    def name(self):
        return "ConvolutionBackward0"

    def backward(self, grad):
        x, w = self.x, self.w
        if grad.dtype != x.dtype:
            grad = grad.astype(x.dtype)
        if self.unbatched:
            grad = grad[None]
        op = "conv_transpose2d_backward" if self.transposed else "conv2d_backward"
        gx, gw, gb = kernel(op, x)(grad, x, w, *self.args, needs=needs_of(self.next_edges))
        if gx is not None and self.unbatched:
            gx = gx[0]
        return gx, gw, gb


def _prepare(op, input, weight, bias):
    tensor_arg(input, op)
    tensor_arg(weight, op, "weight")
    x, w, b = as_float(op, input, weight, bias)
    if x.ndim == 3:  # an unbatched (C, H, W) image
        return x[None], w, b, True
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
    return x, w, b, False


def _finish(out, input, weight, bias, x, w, args, transposed, unbatched):
    if unbatched:
        out = out[0]
    if GradMode.enabled and (input.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        edges = (edge(input), edge(weight), edge(bias))
        return _make(out, ConvolutionBackward(edges, x, w, args, transposed, unbatched))
    return _make(out)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), PyTorch's ``conv2d``: (N, C, H, W) -> (N, K, OH, OW).

    weight: (K, C / groups, KH, KW); bias: (K,) or None; stride, dilation: int or pair;
    padding: int, pair, ``'valid'`` (none) or ``'same'`` (output size = input size,
    stride 1 only). The seeds' output-size rule, per axis:
    ``OH = (H + 2 P - D (KH - 1) - 1) // S + 1`` (with D = 1: (W - K + 2P) / S + 1).
    groups = C = K is a depthwise convolution. A (C, H, W) input gives a (K, OH, OW) output.

    >>> F = pydl.nn.functional
    >>> x = pydl.arange(16.0).reshape(1, 1, 4, 4)
    >>> F.conv2d(x, pydl.ones(1, 1, 2, 2), stride=2)
    tensor([[[[10., 18.],
              [42., 50.]]]])
    >>> F.conv2d(pydl.ones(1, 3, 32, 32), pydl.ones(10, 3, 5, 5), padding=2).shape
    (1, 10, 32, 32)
    """
    op = "conv2d"
    x, w, b, unbatched = _prepare(op, input, weight, bias)
    out = kernel("conv2d_forward", x)(x, w, b, stride, padding, dilation, groups)
    return _finish(out, input, weight, bias, x, w, (stride, padding, dilation, groups), False, unbatched)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, PyTorch's ``conv_transpose2d``: (N, C, H, W) -> (N, K, HO, WO).

    weight: (C, K / groups, KH, KW) (the layout of the conv2d it transposes); bias: (K,).
    ``HO = (H - 1) S - 2 P + D (KH - 1) + output_padding + 1``: conv2d's input gradient
    run forward, the learnable up-sampling of the seeds.

    >>> F = pydl.nn.functional
    >>> F.conv_transpose2d(pydl.ones(1, 1, 2, 2), pydl.ones(1, 1, 2, 2), stride=2)
    tensor([[[[1., 1., 1., 1.],
              [1., 1., 1., 1.],
              [1., 1., 1., 1.],
              [1., 1., 1., 1.]]]])
    """
    op = "conv_transpose2d"
    x, w, b, unbatched = _prepare(op, input, weight, bias)
    out = kernel("conv_transpose2d_forward", x)(x, w, b, stride, padding, output_padding, groups, dilation)
    return _finish(out, input, weight, bias, x, w, (stride, padding, output_padding, groups, dilation), True,
                   unbatched)


class ConstantPadBackward(Node):
    """The gradient of padding is the gradient's inner window (the pad values are constants)."""

    def __init__(self, edges, window):
        self.next_edges = edges
        self.window = window

    def name(self):
        return "ConstantPadNdBackward0"

    def backward(self, grad):
        return (grad[self.window],)


_INDEX_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions: ``pad = (left, right, top, bottom, ...)``
    starting from the last dimension, as PyTorch orders it.

    mode: ``'constant'`` (``value``, default 0), ``'reflect'`` (mirror without repeating the
    edge), ``'replicate'`` (repeat the edge), ``'circular'`` (wrap around). The non-constant
    modes gather the input through an index (their gradient scatters back and adds up).

    >>> F = pydl.nn.functional
    >>> F.pad(pydl.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect")
    tensor([[3., 2., 1., 2., 3., 2.]])
    >>> F.pad(pydl.tensor([[1.0, 2.0]]), (1, 1), value=9.0)
    tensor([[9., 1., 2., 9.]])
    """
    op = "pad"
    x = tensor_arg(input, op)
    pads = tuple(int(p) for p in pad)
    if len(pads) % 2 or len(pads) // 2 > x.ndim:
        raise ValueError(f"{op}: padding length must be even and at most twice the input's {x.ndim} dimensions, "
                         f"got {len(pads)}")
    if min(pads, default=0) < 0:
        raise ValueError(f"{op}: negative padding (cropping) is not supported, got {pads}")
    k = len(pads) // 2
    widths = [(0, 0)] * (x.ndim - k) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(k))]
    if mode == "constant":
        out = array_module(x).pad(x, widths, constant_values=0 if value is None else value)
        if GradMode.enabled and input.requires_grad:
            window = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
            return _make(out, ConstantPadBackward((edge(input),), window))
        return _make(out)
    if mode not in _INDEX_MODES:
        raise NotImplementedError(f"{op}: mode {mode!r} is not supported (constant, reflect, replicate, circular)")
    if value is not None and value != 0:
        raise ValueError(f"{op}: padding mode {mode!r} doesn't take in value argument")
    out = input
    for d in range(x.ndim - k, x.ndim):
        lo, hi = widths[d]
        if lo == hi == 0:
            continue
        n = x.shape[d]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"{op}: padding size should be less than the corresponding input dimension, but got: "
                             f"padding ({lo}, {hi}) at dimension {d} of input {tuple(x.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise ValueError(f"{op}: padding value causes wrapping around more than once (padding ({lo}, {hi}) "
                             f"at dimension {d} of input {tuple(x.shape)})")
        idx = np.pad(np.arange(n), (lo, hi), mode=_INDEX_MODES[mode])
        out = out[(slice(None),) * d + (idx,)]
    return out
