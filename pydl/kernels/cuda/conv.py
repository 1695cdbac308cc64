"""conv2d and conv_transpose2d on the GPU (csrc/cuda/conv.cu): im2col + pydl's CUDA gemm,
forward and backward, one tile of images at a time.

Signatures and results are the reference's (:mod:`pydl.kernels.reference.conv`): NCHW
arrays, weight (K, C/groups, KH, KW) (conv_transpose2d: (C, K/groups, KH, KW)), backward
returns ``(grad_input, grad_weight, grad_bias)`` with None where ``needs`` is False. The
geometry (output size, padding 'same'/'valid', every argument check and its message) is
the reference's own; shapes are checked before the arrays' type, as on the CPU.

A transposed convolution is computed in the terms of the conv2d it transposes (its input
is that conv's output gradient, its output that conv's input gradient): forward = the
conv's input gradient, grad_input = the conv's forward of grad_out, grad_weight = the
conv's weight gradient with the two activations swapped. Bias terms are CuPy glue
(a broadcast add, a sum over (N, H, W)).

Workspace: the columns of ``nb`` images (and nb partial weight gradients), with nb the
largest tile that fits WORKSPACE_ELEMENTS (at least one image).
"""
from ..reference.conv import _conv_geometry, _transpose_geometry
from ._common import _C_cuda, cp, float_array, launcher, stream

OPS = ("conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward")

WORKSPACE_ELEMENTS = 1 << 24  # 64 MiB of float32 columns per call, or one image's worth when larger


def _check_ndim(op, x, w, x_name="input"):
    for name, a in ((x_name, x), ("weight", w)):
        if not hasattr(a, "ndim"):
            float_array(a, op, name)  # raises the TypeError naming what came
    if x.ndim != 4:
        raise ValueError(f"{op}: {x_name} must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}")
    if w.ndim != 4:
        raise ValueError(f"{op}: weight must have 4 dimensions, got shape {tuple(w.shape)}")


def _check_bias(op, bias, channels):
    if bias is not None and tuple(getattr(bias, "shape", ())) != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), got {tuple(getattr(bias, 'shape', ()))}")


def _arrays(op, named):
    """Contiguous copies of the named arrays (None passes), all of the first one's float dtype."""
    first_name, first = named[0]
    float_array(first, op, first_name)
    out = []
    for name, a in named:
        if a is None:
            out.append(None)
            continue
        float_array(a, op, name)
        if a.dtype != first.dtype:
            raise TypeError(f"{op}: {first_name} and {name} must have the same dtype, got {first.dtype} and {a.dtype}")
        out.append(cp.ascontiguousarray(a))
    return out


def _needs(op, needs):
    if not isinstance(needs, (tuple, list)) or len(needs) != 3:
        raise TypeError(f"{op}: needs must be a triple of bools (input, weight, bias), got {needs!r}")
    return tuple(bool(v) for v in needs)


def _check_grad_out(op, grad_out, shape):
    if tuple(getattr(grad_out, "shape", ())) != shape:
        raise ValueError(f"{op}: grad_out must have shape {shape}, got {tuple(getattr(grad_out, 'shape', ()))}")


class _Conv:
    """One conv2d problem in pydl::ConvGeometry's 16 ints, with its tile of nb images."""

    def __init__(self, N, C, H, W, K, OH, OW, KH, KW, stride, pad_top_left, dilation, groups):
        self.N, self.C, self.H, self.W, self.K, self.OH, self.OW = N, C, H, W, K, OH, OW
        self.geometry = [N, C, H, W, K, OH, OW, KH, KW, stride[0], stride[1], pad_top_left[0], pad_top_left[1],
                         dilation[0], dilation[1], groups]
        self.cols_per_image = _C_cuda.conv2d_columns_per_image(self.geometry, False)  # forward, input gradient
        self.cols_per_image_w = _C_cuda.conv2d_columns_per_image(self.geometry, True)  # weight gradient
        self.partial_per_image = K * (C // groups) * KH * KW

    def _tile(self, per_image):
        return max(1, min(self.N, WORKSPACE_ELEMENTS // max(1, per_image)))

    def _cols(self, nb, dtype):
        return cp.empty(nb * self.cols_per_image, dtype=dtype)

    def forward(self, x, w):
        """out (N, K, OH, OW) of x (N, C, H, W)."""
        out = cp.empty((self.N, self.K, self.OH, self.OW), dtype=x.dtype)
        nb = self._tile(self.cols_per_image)
        cols = self._cols(nb, x.dtype)
        launcher("conv2d_forward", x.dtype)(self.geometry, x.data.ptr, w.data.ptr, out.data.ptr, cols.data.ptr, nb,
                                            stream())
        return out

    def input_grad(self, dout, w):
        """dx (N, C, H, W) of dout (N, K, OH, OW)."""
        dx = cp.empty((self.N, self.C, self.H, self.W), dtype=dout.dtype)
        nb = self._tile(self.cols_per_image)
        cols = self._cols(nb, dout.dtype)
        launcher("conv2d_backward_input", dout.dtype)(self.geometry, dout.data.ptr, w.data.ptr, dx.data.ptr,
                                                      cols.data.ptr, nb, stream())
        return dx

    def weight_grad(self, dout, x, w_shape):
        """dw of the conv's weight shape from dout (N, K, OH, OW) and x (N, C, H, W)."""
        dw = cp.empty(w_shape, dtype=x.dtype)
        nb = self._tile(self.cols_per_image_w + self.partial_per_image)
        cols = cp.empty(nb * self.cols_per_image_w, dtype=x.dtype)
        partial = cp.empty(nb * self.partial_per_image if nb > 1 else 0, dtype=x.dtype)
        launcher("conv2d_backward_weight", x.dtype)(self.geometry, dout.data.ptr, x.data.ptr, dw.data.ptr,
                                                    cols.data.ptr, partial.data.ptr, nb, stream())
        return dw


def _conv2d(op, x, w, stride, padding, dilation, groups):
    pads, stride, dilation, (OH, OW) = _conv_geometry(op, tuple(x.shape), tuple(w.shape), stride, padding, dilation,
                                                      groups)
    N, C, H, W = x.shape
    K, _, KH, KW = w.shape
    return _Conv(N, C, H, W, K, OH, OW, KH, KW, stride, (pads[0], pads[2]), dilation, groups)


def _transposed(op, x, w, stride, padding, output_padding, groups, dilation):
    """The conv2d that conv_transpose2d transposes: its output is x, its input this op's output."""
    padding, stride, dilation, (HO, WO) = _transpose_geometry(op, tuple(x.shape), tuple(w.shape), stride, padding,
                                                              output_padding, groups, dilation)
    N, Cin, H, W = x.shape
    _, Kg, KH, KW = w.shape
    return _Conv(N, Kg * groups, HO, WO, Cin, H, W, KH, KW, stride, padding, dilation, groups)


def _add_bias(out, bias):
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def conv2d_forward(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation (PyTorch's conv2d): (N, C, H, W) -> (N, K, OH, OW)."""
    op = "conv2d"
    _check_ndim(op, input, weight)
    conv = _conv2d(op, input, weight, stride, padding, dilation, groups)
    _check_bias(op, bias, conv.K)
    x, w, b = _arrays(op, [("input", input), ("weight", weight), ("bias", bias)])
    return _add_bias(conv.forward(x, w), b)


def conv2d_backward(grad_out, input, weight, stride=1, padding=0, dilation=1, groups=1, needs=(True, True, True)):
    """``(grad_input, grad_weight, grad_bias)`` of conv2d_forward (None where needs is False)."""
    op = "conv2d_backward"
    _check_ndim(op, input, weight)
    need_x, need_w, need_b = _needs(op, needs)
    conv = _conv2d(op, input, weight, stride, padding, dilation, groups)
    _check_grad_out(op, grad_out, (conv.N, conv.K, conv.OH, conv.OW))
    x, w, g = _arrays(op, [("input", input), ("weight", weight), ("grad_out", grad_out)])
    grad_x = conv.input_grad(g, w) if need_x else None
    grad_w = conv.weight_grad(g, x, w.shape) if need_w else None
    grad_b = g.sum(axis=(0, 2, 3)) if need_b else None
    return grad_x, grad_w, grad_b


def conv_transpose2d_forward(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution: (N, C, H, W) -> (N, K, HO, WO), weight (C, K/groups, KH, KW)."""
    op = "conv_transpose2d"
    _check_ndim(op, input, weight)
    conv = _transposed(op, input, weight, stride, padding, output_padding, groups, dilation)
    _check_bias(op, bias, conv.C)
    x, w, b = _arrays(op, [("input", input), ("weight", weight), ("bias", bias)])
    return _add_bias(conv.input_grad(x, w), b)


def conv_transpose2d_backward(grad_out, input, weight, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                              needs=(True, True, True)):
    """``(grad_input, grad_weight, grad_bias)`` of conv_transpose2d_forward (None where needs is False)."""
    op = "conv_transpose2d_backward"
    _check_ndim(op, input, weight)
    need_x, need_w, need_b = _needs(op, needs)
    conv = _transposed(op, input, weight, stride, padding, output_padding, groups, dilation)
    _check_grad_out(op, grad_out, (conv.N, conv.C, conv.H, conv.W))
    x, w, g = _arrays(op, [("input", input), ("weight", weight), ("grad_out", grad_out)])
    grad_x = conv.forward(g, w) if need_x else None
    grad_w = conv.weight_grad(x, g, w.shape) if need_w else None
    grad_b = g.sum(axis=(0, 2, 3)) if need_b else None
    return grad_x, grad_w, grad_b
