"""conv2d and conv_transpose2d: the textbook im2col version, forward and backward, in float64.

Legend: N images, C input channels, H x W input size, K output channels (filters),
KH x KW kernel size, OH x OW output size, G groups (C/G input and K/G output channels
per group), S stride, P padding, D dilation.

A convolution is a matrix product once every receptive field is laid out as a column
(the seeds' "im2col"): the column of output pixel (oh, ow) holds the C/G * KH * KW input
values its filter sees,

    cols[n, c, kh, kw, oh, ow] = x_padded[n, c, oh * S + kh * D, ow * S + kw * D]
    out[n, k, oh, ow]          = sum_{c, kh, kw} w[k, c, kh, kw] * cols[n, c, kh, kw, oh, ow] + b[k]

(c and k running over one group), so that out = W @ cols per group. The backward pass is
the same product read the two other ways (the seeds' matmul rule):

    dW = dout @ cols^T      dcols = W^T @ dout      dx = col2im(dcols)

where col2im is im2col's adjoint: every column entry adds back into the input pixel it
was copied from (a pixel seen by several filters positions collects several terms).
The transposed convolution is exactly that gradient map run forward: its forward is
conv2d's input gradient (W^T @ x, then col2im), its input gradient is conv2d's forward.

This module is the specification the C++ kernels are tested against: readable, not fast
(it builds the columns of the whole batch at once).
"""
import numpy as np

__all__ = ["conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward"]


# ---------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------

def _pair(value, op, name):
    """An int or a pair of ints -> (vertical, horizontal)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def _check_arrays(op, x, w, x_name="input"):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"{op}: {x_name} must have 4 dimensions (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{op}: weight must have 4 dimensions, got shape {w.shape}")
    return x, w


def _check_groups(op, groups, c_in, c_out):
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be positive, got {groups}")
    if c_in % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({c_in})")
    if c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide the output channels ({c_out})")


def _check_bias(op, bias, channels):
    if bias is None:
        return None
    bias = np.asarray(bias, dtype=np.float64)
    if bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), got {bias.shape}")
    return bias


def _conv_geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """Padding (top, bottom, left, right), stride, dilation and (OH, OW) of conv2d."""
    N, C, H, W = x_shape
    K, Cg, KH, KW = w_shape
    stride, dilation = _pair(stride, op, "stride"), _pair(dilation, op, "dilation")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be positive, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation must be positive, got {dilation}")
    _check_groups(op, groups, C, K)
    if C != Cg * groups:
        raise ValueError(f"{op}: input has {C} channels but weight expects {Cg * groups}"
                         + (f" ({Cg} per group x {groups} groups)" if groups > 1 else ""))
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride})")
            # PyTorch's split: the odd pixel of an even total goes to the bottom / right.
            th, tw = dilation[0] * (KH - 1), dilation[1] * (KW - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _pair(padding, op, "padding")
        if min(ph, pw) < 0:
            raise ValueError(f"{op}: padding must be non-negative, got {(ph, pw)}")
        pads = (ph, ph, pw, pw)
    eff_h, eff_w = dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1
    padded_h, padded_w = H + pads[0] + pads[1], W + pads[2] + pads[3]
    if eff_h > padded_h or eff_w > padded_w or KH < 1 or KW < 1:
        raise ValueError(f"{op}: output size would be non-positive: kernel {KH}x{KW} (dilated {eff_h}x{eff_w}) "
                         f"is larger than the padded input {padded_h}x{padded_w}")
    OH = (padded_h - eff_h) // stride[0] + 1
    OW = (padded_w - eff_w) // stride[1] + 1
    return pads, stride, dilation, (OH, OW)


def _transpose_geometry(op, x_shape, w_shape, stride, padding, output_padding, groups, dilation):
    """Padding, stride, dilation and output size (HO, WO) of conv_transpose2d."""
    N, C, H, W = x_shape
    Cin, Kg, KH, KW = w_shape
    stride, dilation = _pair(stride, op, "stride"), _pair(dilation, op, "dilation")
    padding, output_padding = _pair(padding, op, "padding"), _pair(output_padding, op, "output_padding")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be positive, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation must be positive, got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    if min(output_padding) < 0:
        raise ValueError(f"{op}: output_padding must be non-negative, got {output_padding}")
    for i in range(2):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either stride "
                             f"{stride} or dilation {dilation}")
    _check_groups(op, groups, C, Kg * groups)
    if C != Cin:
        raise ValueError(f"{op}: input has {C} channels but weight expects {Cin}")
    HO = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (KH - 1) + output_padding[0] + 1
    WO = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (KW - 1) + output_padding[1] + 1
    if HO < 1 or WO < 1 or KH < 1 or KW < 1:
        raise ValueError(f"{op}: output size would be non-positive: {HO}x{WO}")
    return padding, stride, dilation, (HO, WO)


# ---------------------------------------------------------------------------------------
# im2col and its adjoint
# ---------------------------------------------------------------------------------------

def _im2col(xp, KH, KW, stride, dilation, OH, OW):
    """Padded images (N, C, Hp, Wp) -> columns (N, C, KH, KW, OH, OW).

    cols[n, c, kh, kw, oh, ow] = xp[n, c, oh * SH + kh * DH, ow * SW + kw * DW]: for each
    kernel tap (kh, kw), the strided window of the image that tap sees.
    """
    (sh, sw), (dh, dw) = stride, dilation
    N, C = xp.shape[:2]
    cols = np.zeros((N, C, KH, KW, OH, OW))
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dh, kw * dw
            cols[:, :, kh, kw] = xp[:, :, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw]
    return cols


def _col2im(cols, padded_shape, stride, dilation):
    """The adjoint of _im2col: columns (N, C, KH, KW, OH, OW) -> padded images, summed."""
    (sh, sw), (dh, dw) = stride, dilation
    N, C, KH, KW, OH, OW = cols.shape
    xp = np.zeros(padded_shape)
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dh, kw * dw
            xp[:, :, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw] += cols[:, :, kh, kw]
    return xp


def _pad(x, pads):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _crop(xp, pads, H, W):
    top, _, left, _ = pads
    return xp[:, :, top:top + H, left:left + W]


# Per group g: W_g is (K/G, C/G, KH, KW), cols_g is (N, C/G, KH, KW, OH, OW).
def _cols_product(w, cols, groups):
    """out[n, k, oh, ow] = sum_{c, kh, kw} w[k, c, kh, kw] cols[n, c, kh, kw, oh, ow], per group."""
    Kg, Cg = w.shape[0] // groups, w.shape[1]
    return np.concatenate([np.einsum("kcij,ncijhw->nkhw", w[g * Kg:(g + 1) * Kg], cols[:, g * Cg:(g + 1) * Cg])
                           for g in range(groups)], axis=1)


def _cols_grad(w, dout, groups):
    """dcols[n, c, kh, kw, oh, ow] = sum_k w[k, c, kh, kw] dout[n, k, oh, ow], per group (W^T @ dout)."""
    Kg = w.shape[0] // groups
    return np.concatenate([np.einsum("kcij,nkhw->ncijhw", w[g * Kg:(g + 1) * Kg], dout[:, g * Kg:(g + 1) * Kg])
                           for g in range(groups)], axis=1)


def _weight_grad(dout, cols, groups):
    """dw[k, c, kh, kw] = sum_{n, oh, ow} dout[n, k, oh, ow] cols[n, c, kh, kw, oh, ow], per group."""
    Kg, Cg = dout.shape[1] // groups, cols.shape[1] // groups
    return np.concatenate([np.einsum("nkhw,ncijhw->kcij", dout[:, g * Kg:(g + 1) * Kg], cols[:, g * Cg:(g + 1) * Cg])
                           for g in range(groups)], axis=0)


# ---------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------

def conv2d_forward(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation (PyTorch's conv2d): (N, C, H, W) -> (N, K, OH, OW).

    weight: (K, C/groups, KH, KW); bias: (K,) or None. stride, dilation: int or pair;
    padding: int, pair, 'valid' (0) or 'same' (output size = input size, stride 1 only;
    an odd total padding puts the extra pixel at the bottom / right, as PyTorch does).
    OH = (H + pad_top + pad_bottom - DH * (KH - 1) - 1) // SH + 1, likewise OW.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d_forward(x, np.ones((1, 1, 2, 2)), stride=2)
    array([[[[10., 18.],
             [42., 50.]]]])
    """
    op = "conv2d"
    x, w = _check_arrays(op, input, weight)
    pads, stride, dilation, (OH, OW) = _conv_geometry(op, x.shape, w.shape, stride, padding, dilation, groups)
    bias = _check_bias(op, bias, w.shape[0])
    cols = _im2col(_pad(x, pads), w.shape[2], w.shape[3], stride, dilation, OH, OW)
    out = _cols_product(w, cols, groups) if x.shape[0] else np.zeros((0, w.shape[0], OH, OW))
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


def conv2d_backward(grad_out, input, weight, stride=1, padding=0, dilation=1, groups=1, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of conv2d_forward given dL/dout.

    grad_out: (N, K, OH, OW); input: (N, C, H, W); weight: (K, C/groups, KH, KW).
    Returns (N, C, H, W), (K, C/groups, KH, KW), (K,); an entry is None where
    ``needs`` (input, weight, bias) is False.

        grad_bias  = sum_{n, oh, ow} dout           (add distributes)
        grad_weight = dout @ cols^T                  (mul swaps: the other operand)
        grad_input = col2im(W^T @ dout)              (copy adds: a pixel in several columns)

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> gx, gw, gb = conv2d_backward(np.ones((1, 1, 2, 2)), x, np.ones((1, 1, 2, 2)), stride=2)
    >>> gw[0, 0], gb
    (array([[20., 24.],
           [36., 40.]]), array([4.]))
    """
    op = "conv2d_backward"
    x, w = _check_arrays(op, input, weight)
    pads, stride, dilation, (OH, OW) = _conv_geometry(op, x.shape, w.shape, stride, padding, dilation, groups)
    N, C, H, W = x.shape
    K, _, KH, KW = w.shape
    g = np.asarray(grad_out, dtype=np.float64)
    if g.shape != (N, K, OH, OW):
        raise ValueError(f"{op}: grad_out must have shape {(N, K, OH, OW)}, got {g.shape}")
    need_x, need_w, need_b = needs
    grad_x = grad_w = grad_b = None
    if need_b:
        grad_b = g.sum(axis=(0, 2, 3))
    if need_w:
        cols = _im2col(_pad(x, pads), KH, KW, stride, dilation, OH, OW)
        grad_w = _weight_grad(g, cols, groups)
    if need_x:
        dcols = _cols_grad(w, g, groups) if N else np.zeros((0, C, KH, KW, OH, OW))
        padded = (N, C, H + pads[0] + pads[1], W + pads[2] + pads[3])
        grad_x = _crop(_col2im(dcols, padded, stride, dilation), pads, H, W)
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------------------
# conv_transpose2d: conv2d's input gradient run forward
# ---------------------------------------------------------------------------------------

def conv_transpose2d_forward(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution (PyTorch's conv_transpose2d): (N, C, H, W) -> (N, K, HO, WO).

    weight: (C, K/groups, KH, KW); bias: (K,) or None. Every input pixel scatters a copy of
    its filter, scaled by its value, into the output at stride S (the "fractionally strided"
    up-sampling of the seeds): the adjoint of conv2d with the same weight.
    HO = (H - 1) * SH - 2 * PH + DH * (KH - 1) + output_padding + 1, likewise WO;
    output_padding (smaller than the stride or the dilation) picks among the output sizes
    that a stride-S conv2d maps back to H.

    >>> conv_transpose2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    op = "conv_transpose2d"
    x, w = _check_arrays(op, input, weight)
    padding, stride, dilation, (HO, WO) = _transpose_geometry(op, x.shape, w.shape, stride, padding,
                                                              output_padding, groups, dilation)
    N, C, H, W = x.shape
    _, Kg, KH, KW = w.shape
    bias = _check_bias(op, bias, Kg * groups)
    pads = (padding[0], padding[0], padding[1], padding[1])
    # The output of the conv2d this transposes is x: columns over an H x W grid.
    dcols = _cols_grad(w, x, groups) if N else np.zeros((0, Kg * groups, KH, KW, H, W))
    padded = (N, Kg * groups, HO + 2 * padding[0], WO + 2 * padding[1])
    out = _crop(_col2im(dcols, padded, stride, dilation), pads, HO, WO)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


def conv_transpose2d_backward(grad_out, input, weight, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                              needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of conv_transpose2d_forward.

    grad_out: (N, K, HO, WO); input: (N, C, H, W); weight: (C, K/groups, KH, KW).
    Returns (N, C, H, W), (C, K/groups, KH, KW), (K,) (None where ``needs`` is False).
    grad_input is conv2d of grad_out with the same weight; grad_weight is conv2d's weight
    gradient with the roles of input and output swapped.

    >>> gx, gw, gb = conv_transpose2d_backward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)),
    ...                                        np.ones((1, 1, 2, 2)), stride=2)
    >>> gx[0, 0], gb
    (array([[4., 4.],
           [4., 4.]]), array([16.]))
    """
    op = "conv_transpose2d_backward"
    x, w = _check_arrays(op, input, weight)
    padding, stride, dilation, (HO, WO) = _transpose_geometry(op, x.shape, w.shape, stride, padding,
                                                              output_padding, groups, dilation)
    N, C, H, W = x.shape
    _, Kg, KH, KW = w.shape
    g = np.asarray(grad_out, dtype=np.float64)
    if g.shape != (N, Kg * groups, HO, WO):
        raise ValueError(f"{op}: grad_out must have shape {(N, Kg * groups, HO, WO)}, got {g.shape}")
    pads = (padding[0], padding[0], padding[1], padding[1])
    need_x, need_w, need_b = needs
    grad_x = grad_w = grad_b = None
    if need_b:
        grad_b = g.sum(axis=(0, 2, 3))
    if need_x or need_w:
        gcols = _im2col(_pad(g, pads), KH, KW, stride, dilation, H, W)  # (N, K, KH, KW, H, W)
    if need_x:
        grad_x = _cols_product(w, gcols, groups) if N else np.zeros((0, C, H, W))
    if need_w:
        grad_w = _weight_grad(x, gcols, groups)
    return grad_x, grad_w, grad_b
