"""Up-sampling: nearest and bilinear interpolation, and pixel (un)shuffle, PyTorch's rules.

Dimension legend: N images, C channels, (H, W) input plane, (OH, OW) output plane.

Each output pixel reads one (nearest) or four (bilinear) input pixels at a "source"
position computed from its own index; the backward sends the output gradient back to
those same inputs with the same weights (a scatter-add: several outputs read each input).

``scales`` is PyTorch's ``scale_factor`` when the caller gave one instead of a size
(``F.interpolate(x, scale_factor=s)``, recompute_scale_factor unset): the source index
then uses 1 / s rather than in / out, exactly as PyTorch does. Leave it None otherwise.
"""
import numpy as np


def _check(op, x, output_size):
    if x.ndim != 4:
        raise ValueError(f"{op}: input must have 4 dimensions (N, C, H, W), got shape {x.shape}")
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        OH, OW = (int(v) for v in output_size)
    else:
        raise ValueError(f"{op}: output_size must be a pair (OH, OW), got {output_size!r}")
    H, W = x.shape[2:]
    if min(H, W, OH, OW) <= 0:
        raise ValueError(f"{op}: input and output sizes must be positive, got input (H: {H}, W: {W}) "
                         f"output (H: {OH}, W: {OW})")
    return OH, OW


def _scales(op, scales):
    if scales is None:
        return None, None
    if len(scales) != 2:
        raise ValueError(f"{op}: scales must be a pair (scale_h, scale_w) or None, got {scales!r}")
    return tuple(None if s is None else float(s) for s in scales)


def nearest_source_index(out_size, in_size, scale=None):
    """PyTorch's 'nearest' rule: ``min(floor(dst * s), in - 1)`` in float32 with s = 1 / scale
    (or in / out), except out == in (copy) and out == 2 in (dst >> 1)."""
    dst = np.arange(out_size)
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(in_size) / np.float32(out_size)
    return np.minimum(np.floor(dst.astype(np.float32) * s).astype(np.int64), in_size - 1)


def bilinear_source(out_size, in_size, align_corners, scale=None):
    """For each output index: the two input indices (i0, i1) and their weights (l0, l1).

    align_corners: src = dst * (in - 1) / (out - 1) (the corner pixels' centres line up);
    else src = max((dst + 0.5) * r - 0.5, 0) with r = 1 / scale or in / out (the pixel
    areas line up). i0 = floor(src), i1 = i0 + 1 clamped to the edge, l1 = src - i0.
    """
    dst = np.arange(out_size, dtype=np.float64)
    if out_size == in_size:
        i = np.arange(out_size)
        return i, i, np.ones(out_size), np.zeros(out_size)
    if align_corners:
        r = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = r * dst
    else:
        r = 1.0 / scale if scale is not None and scale > 0 else in_size / out_size
        src = np.maximum(r * (dst + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    l1 = np.clip(src - i0, 0.0, 1.0)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    return i0, i1, 1.0 - l1, l1


def upsample_nearest2d_forward(input, output_size, scales=None):
    """Nearest-neighbour resize: out[n, c, i, j] = x[n, c, src_h(i), src_w(j)].

    input: (N, C, H, W); output_size: (OH, OW). Returns (N, C, OH, OW) float64.

    >>> upsample_nearest2d_forward(np.array([[[[1.0, 2.0]]]]), (1, 4))
    array([[[[1., 1., 2., 2.]]]])
    """
    op = "upsample_nearest2d"
    x = np.asarray(input, dtype=np.float64)
    OH, OW = _check(op, x, output_size)
    sh, sw = _scales(op, scales)
    rows = nearest_source_index(OH, x.shape[2], sh)
    cols = nearest_source_index(OW, x.shape[3], sw)
    return x[:, :, rows[:, None], cols[None, :]]


def upsample_nearest2d_backward(grad_out, input_size, scales=None):
    """Gradient of upsample_nearest2d: each input sums the gradients of the outputs that copied it.

    grad_out: (N, C, OH, OW); input_size: (N, C, H, W) (or (H, W)). Returns (N, C, H, W).

    >>> upsample_nearest2d_backward(np.array([[[[1.0, 2.0, 3.0, 4.0]]]]), (1, 1, 1, 2))
    array([[[[3., 7.]]]])
    """
    op = "upsample_nearest2d_backward"
    g = np.asarray(grad_out, dtype=np.float64)
    H, W = (int(v) for v in tuple(input_size)[-2:])
    OH, OW = _check(op, np.empty(g.shape[:2] + (H, W)), g.shape[2:] if g.ndim == 4 else None)
    sh, sw = _scales(op, scales)
    rows = nearest_source_index(OH, H, sh)
    cols = nearest_source_index(OW, W, sw)
    grad_in = np.zeros(g.shape[:2] + (H, W))
    for i in range(OH):
        for j in range(OW):
            grad_in[:, :, rows[i], cols[j]] += g[:, :, i, j]
    return grad_in


def upsample_bilinear2d_forward(input, output_size, align_corners, scales=None):
    """Bilinear resize (PyTorch's mode='bilinear'): a weighted mean of the 2x2 inputs around
    each output's source position (see :func:`bilinear_source`).

    input: (N, C, H, W); output_size: (OH, OW). Returns (N, C, OH, OW) float64.

    >>> upsample_bilinear2d_forward(np.array([[[[0.0, 1.0]]]]), (1, 3), align_corners=True)
    array([[[[0. , 0.5, 1. ]]]])
    """
    op = "upsample_bilinear2d"
    x = np.asarray(input, dtype=np.float64)
    OH, OW = _check(op, x, output_size)
    sh, sw = _scales(op, scales)
    h0, h1, a0, a1 = bilinear_source(OH, x.shape[2], align_corners, sh)
    w0, w1, b0, b1 = bilinear_source(OW, x.shape[3], align_corners, sw)
    out = np.zeros(x.shape[:2] + (OH, OW))
    for i in range(OH):
        for j in range(OW):
            out[:, :, i, j] = (a0[i] * (b0[j] * x[:, :, h0[i], w0[j]] + b1[j] * x[:, :, h0[i], w1[j]])
                               + a1[i] * (b0[j] * x[:, :, h1[i], w0[j]] + b1[j] * x[:, :, h1[i], w1[j]]))
    return out


def upsample_bilinear2d_backward(grad_out, input_size, align_corners, scales=None):
    """Gradient of upsample_bilinear2d: each output's gradient to its four inputs, weighted.

    grad_out: (N, C, OH, OW); input_size: (N, C, H, W) (or (H, W)). Returns (N, C, H, W).

    >>> upsample_bilinear2d_backward(np.array([[[[1.0, 1.0, 1.0]]]]), (1, 1, 1, 2), True)
    array([[[[1.5, 1.5]]]])
    """
    op = "upsample_bilinear2d_backward"
    g = np.asarray(grad_out, dtype=np.float64)
    H, W = (int(v) for v in tuple(input_size)[-2:])
    OH, OW = _check(op, np.empty(g.shape[:2] + (H, W)), g.shape[2:] if g.ndim == 4 else None)
    sh, sw = _scales(op, scales)
    h0, h1, a0, a1 = bilinear_source(OH, H, align_corners, sh)
    w0, w1, b0, b1 = bilinear_source(OW, W, align_corners, sw)
    grad_in = np.zeros(g.shape[:2] + (H, W))
    for i in range(OH):
        for j in range(OW):
            gij = g[:, :, i, j]
            grad_in[:, :, h0[i], w0[j]] += a0[i] * b0[j] * gij
            grad_in[:, :, h0[i], w1[j]] += a0[i] * b1[j] * gij
            grad_in[:, :, h1[i], w0[j]] += a1[i] * b0[j] * gij
            grad_in[:, :, h1[i], w1[j]] += a1[i] * b1[j] * gij
    return grad_in


def _shuffle_check(op, x, r, name):
    r = int(r)
    if r <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {r}")
    if x.ndim < 3:
        raise ValueError(f"{op}: input must have at least 3 dimensions (*, C, H, W), got shape {x.shape}")
    return r


def pixel_shuffle_forward(input, upscale_factor):
    """Sub-pixel rearrangement: (*, C r^2, H, W) -> (*, C, H r, W r),
    out[..., c, h r + i, w r + j] = x[..., c r^2 + i r + j, h, w].

    >>> pixel_shuffle_forward(np.arange(4.0).reshape(1, 4, 1, 1), 2)
    array([[[[0., 1.],
             [2., 3.]]]])
    """
    op = "pixel_shuffle"
    x = np.asarray(input, dtype=np.float64)
    r = _shuffle_check(op, x, upscale_factor, "upscale_factor")
    *lead, Cr, H, W = x.shape
    if Cr % (r * r):
        raise ValueError(f"{op}: the input's {Cr} channels must be divisible by upscale_factor**2 = {r * r}")
    C = Cr // (r * r)
    y = x.reshape(*lead, C, r, r, H, W)
    nl = len(lead)
    y = y.transpose(*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2)  # (*, C, H, r, W, r)
    return y.reshape(*lead, C, H * r, W * r).copy()


def pixel_unshuffle_forward(input, downscale_factor):
    """The inverse of pixel_shuffle: (*, C, H r, W r) -> (*, C r^2, H, W).

    >>> pixel_unshuffle_forward(np.array([[[[0.0, 1.0], [2.0, 3.0]]]]), 2).ravel()
    array([0., 1., 2., 3.])
    """
    op = "pixel_unshuffle"
    x = np.asarray(input, dtype=np.float64)
    r = _shuffle_check(op, x, downscale_factor, "downscale_factor")
    *lead, C, Hr, Wr = x.shape
    if Hr % r or Wr % r:
        raise ValueError(f"{op}: the input's height {Hr} and width {Wr} must be divisible by downscale_factor {r}")
    H, W = Hr // r, Wr // r
    y = x.reshape(*lead, C, H, r, W, r)
    nl = len(lead)
    y = y.transpose(*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3)  # (*, C, r, r, H, W)
    return y.reshape(*lead, C * r * r, H, W).copy()


def pixel_shuffle_backward(grad_out, upscale_factor):
    """Gradient of pixel_shuffle: a permutation's gradient is the inverse permutation."""
    return pixel_unshuffle_forward(grad_out, upscale_factor)


def pixel_unshuffle_backward(grad_out, downscale_factor):
    """Gradient of pixel_unshuffle: pixel_shuffle of the gradient."""
    return pixel_shuffle_forward(grad_out, downscale_factor)
