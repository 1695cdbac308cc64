"""Pooling: max, average, adaptive, fractional max, and max-unpooling, with PyTorch's rules.

The seeds' pooling layer: slide a window over every channel of every image and keep one
number per window -- the largest (max pooling) or the mean (average pooling). Pooling has
no weights; it shrinks the spatial size and gives a little translation invariance.

Dimension legend: N images, C channels, (H, W) input plane, (OH, OW) output plane,
(KH, KW) window, stride (SH, SW), padding (PH, PW), dilation (DH, DW).

Backward is the seeds' "max routes" gate: a max-pooled gradient goes only to the input
that won its window (its flat index ``h * W + w`` in the plane is kept in ``indices``, as
PyTorch's ``return_indices=True`` returns it); an average-pooled gradient is spread evenly
over the window.

Ties and NaN follow PyTorch's CPU kernel: the scan goes row by row through the window and
an element replaces the current best when ``value > best or isnan(value)``, so the first
maximum in scan order wins a tie and the last NaN wins over everything.
"""
import numpy as np

from ._pool_rules import (
    adaptive_end, adaptive_start, as_float64, check_input, fractional_intervals, pair,
    pool_output_size, pool_params, spatial_batch, unbatch,
)


# ---------------------------------------------------------------------------------------
# max_pool2d
# ---------------------------------------------------------------------------------------

def max_pool2d_forward(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling; returns ``(out, indices)``.

    input: (N, C, H, W) or (C, H, W) -> out: (N, C, OH, OW) (or (C, OH, OW)), float64;
    indices: the same shape, int64, the flat index ``h * W + w`` of each window's maximum
    within its input plane. Output size per axis:
    ``floor((H + 2 PH - DH (KH - 1) - 1 [+ SH - 1 if ceil_mode]) / SH) + 1``, minus one when
    ceil_mode would start the last window in the padding. Padding counts as -inf.

    >>> x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 6.0]]]])
    >>> out, idx = max_pool2d_forward(x, 2)
    >>> out, idx
    (array([[[[5., 8.]]]]), array([[[[1, 6]]]]))
    """
    op = "max_pool2d"
    x = as_float64(input)
    check_input(x, op)
    k, s, p, d = pool_params(op, kernel_size, stride, padding, dilation)
    xb, batched = spatial_batch(x)
    N, C, H, W = xb.shape
    OH, OW = pool_output_size(op, (H, W), k, s, p, d, ceil_mode)
    out = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), dtype=np.int64)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            hs = [h for h in range(h0, h0 + d[0] * (k[0] - 1) + 1, d[0]) if 0 <= h < H]
            ws = [w for w in range(w0, w0 + d[1] * (k[1] - 1) + 1, d[1]) if 0 <= w < W]
            best = np.full((N, C), -np.inf)
            best_idx = np.full((N, C), hs[0] * W + ws[0], dtype=np.int64)
            for h in hs:
                for w in ws:
                    v = xb[:, :, h, w]
                    better = (v > best) | np.isnan(v)
                    best = np.where(better, v, best)
                    best_idx = np.where(better, h * W + w, best_idx)
            out[:, :, oh, ow] = best
            idx[:, :, oh, ow] = best_idx
    return unbatch(out, batched), unbatch(idx, batched)


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of max pooling: each output's gradient goes to the input its index names.

    grad_out, indices: (N, C, OH, OW) (or unbatched); input_shape: the shape of the
    pooled input, (N, C, H, W) or (C, H, W). Returns grad_input of input_shape, float64.
    Windows that overlap add their gradients. Shared by adaptive and fractional max
    pooling, whose indices mean the same.

    >>> max_pool2d_backward(np.array([[[[1.0, 2.0]]]]), np.array([[[[1, 6]]]]), (1, 1, 2, 4))
    array([[[[0., 1., 0., 0.],
             [0., 0., 2., 0.]]]])
    """
    op = "max_pool2d_backward"
    g = as_float64(grad_out)
    idx = np.asarray(indices)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) not in (3, 4) or g.ndim != len(shape):
        raise ValueError(f"{op}: input_shape {shape} and grad_out of shape {g.shape} must both be "
                         "(N, C, H, W) or (C, H, W)")
    if idx.shape != g.shape:
        raise ValueError(f"{op}: indices must have the shape of grad_out {g.shape}, got {idx.shape}")
    if g.shape[:-2] != shape[:-2]:
        raise ValueError(f"{op}: grad_out of shape {g.shape} does not match input_shape {shape}")
    H, W = shape[-2:]
    if idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(f"{op}: indices must lie in [0, {H * W}) (the input plane of {H}x{W}), "
                         f"found {int(idx.min())}..{int(idx.max())}")
    grad_in = np.zeros(shape[:-2] + (H * W,))
    gflat = g.reshape(g.shape[:-2] + (-1,))
    iflat = idx.reshape(idx.shape[:-2] + (-1,))
    lead = np.ndindex(*shape[:-2])
    for pos in lead:
        np.add.at(grad_in[pos], iflat[pos], gflat[pos])  # the max routes: scatter-add
    return grad_in.reshape(shape)


# ---------------------------------------------------------------------------------------
# max_unpool2d
# ---------------------------------------------------------------------------------------

def max_unpool2d_forward(input, indices, output_size):
    """The partial inverse of max pooling: put each value back where its index says.

    input, indices: (N, C, H, W) (or (C, H, W)); output_size: (OH, OW). Returns (N, C,
    OH, OW) float64, zero wherever no index points (when two indices coincide, the later
    value in scan order wins, as in PyTorch's CPU kernel).

    >>> max_unpool2d_forward(np.array([[[[5.0, 8.0]]]]), np.array([[[[1, 6]]]]), (2, 4))
    array([[[[0., 5., 0., 0.],
             [0., 0., 8., 0.]]]])
    """
    op = "max_unpool2d"
    x = as_float64(input)
    idx = np.asarray(indices)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must have 3 or 4 dimensions, (C, H, W) or (N, C, H, W), got shape {x.shape}")
    if idx.shape != x.shape:
        raise ValueError(f"{op}: indices must have the shape of input {x.shape}, got {idx.shape}")
    OH, OW = pair(op, "output_size", output_size)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{op}: output_size must be positive, got {(OH, OW)}")
    if idx.size and (idx.min() < 0 or idx.max() >= OH * OW):
        bad = int(idx.max()) if idx.max() >= OH * OW else int(idx.min())
        raise ValueError(f"{op}: found an invalid max index {bad} (the output planes are {OH}x{OW})")
    out = np.zeros(x.shape[:-2] + (OH * OW,))
    xflat = x.reshape(x.shape[:-2] + (-1,))
    iflat = idx.reshape(idx.shape[:-2] + (-1,))
    for pos in np.ndindex(*x.shape[:-2]):
        for j in range(xflat.shape[-1]):
            out[pos + (iflat[pos + (j,)],)] = xflat[pos + (j,)]
    return out.reshape(x.shape[:-2] + (OH, OW))


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max_unpool2d: each input reads the output gradient at its index.

    grad_out: (N, C, OH, OW); indices: (N, C, H, W). Returns (N, C, H, W) float64.

    >>> max_unpool2d_backward(np.arange(8.0).reshape(1, 1, 2, 4), np.array([[[[1, 6]]]]))
    array([[[[1., 6.]]]])
    """
    op = "max_unpool2d_backward"
    g = as_float64(grad_out)
    idx = np.asarray(indices)
    if g.ndim not in (3, 4) or idx.ndim != g.ndim or idx.shape[:-2] != g.shape[:-2]:
        raise ValueError(f"{op}: grad_out {g.shape} and indices {idx.shape} must be (N, C, *, *) "
                         "or (C, *, *) with the same leading dimensions")
    OH, OW = g.shape[-2:]
    if idx.size and (idx.min() < 0 or idx.max() >= OH * OW):
        raise ValueError(f"{op}: indices must lie in [0, {OH * OW}), found {int(idx.min())}..{int(idx.max())}")
    gflat = g.reshape(g.shape[:-2] + (-1,))
    iflat = idx.reshape(idx.shape[:-2] + (-1,))
    return np.take_along_axis(gflat, iflat, axis=-1).reshape(idx.shape)


# ---------------------------------------------------------------------------------------
# avg_pool2d
# ---------------------------------------------------------------------------------------

def _avg_windows(H, W, OH, OW, k, s, p, count_include_pad, divisor_override):
    """For each output (oh, ow): the clipped rows/cols of its window and its divisor."""
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            pool_size = (h1 - h0) * (w1 - w0)  # the window, padding included, clipped at the far pad
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = pool_size
            else:
                div = (h1 - h0) * (w1 - w0)
            yield oh, ow, h0, h1, w0, w1, div


def _avg_checks(op, divisor_override):
    if divisor_override is not None and int(divisor_override) == 0:
        raise ValueError(f"{op}: divisor_override must not be zero")


def avg_pool2d_forward(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Average pooling (PyTorch's avg_pool2d).

    input: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW), float64. Each output is the sum of
    its window's inputs divided by ``divisor_override`` when given, else by the window's
    size counting the zero padding (``count_include_pad=True``; a ceil_mode window that
    hangs past the padding counts only up to it), else by the number of real inputs.

    >>> avg_pool2d_forward(np.arange(8.0).reshape(1, 1, 2, 4), 2)
    array([[[[2.5, 4.5]]]])
    """
    op = "avg_pool2d"
    x = as_float64(input)
    check_input(x, op)
    _avg_checks(op, divisor_override)
    k, s, p, _ = pool_params(op, kernel_size, stride, padding, 1)
    xb, batched = spatial_batch(x)
    N, C, H, W = xb.shape
    OH, OW = pool_output_size(op, (H, W), k, s, p, (1, 1), ceil_mode)
    out = np.zeros((N, C, OH, OW))
    for oh, ow, h0, h1, w0, w1, div in _avg_windows(H, W, OH, OW, k, s, p, count_include_pad, divisor_override):
        if h0 < h1 and w0 < w1:
            out[:, :, oh, ow] = xb[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return unbatch(out, batched)


def avg_backward_geometry(op, grad_shape, input_shape, kernel_size, stride, padding, ceil_mode, divisor_override):
    """(input shape, k, s, p, (OH, OW)) of an avg_pool2d backward, every argument checked."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"{op}: input_shape must be (N, C, H, W) or (C, H, W), got {shape}")
    _avg_checks(op, divisor_override)
    k, s, p, _ = pool_params(op, kernel_size, stride, padding, 1)
    OH, OW = pool_output_size(op, shape[-2:], k, s, p, (1, 1), ceil_mode)
    if tuple(grad_shape) != shape[:-2] + (OH, OW):
        raise ValueError(f"{op}: grad_out must have shape {shape[:-2] + (OH, OW)}, got {tuple(grad_shape)}")
    return shape, k, s, p, (OH, OW)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d: each output's gradient, divided by its divisor, to its window.

    grad_out: (N, C, OH, OW) (or unbatched); input_shape: (N, C, H, W) or (C, H, W); the
    other arguments as given to the forward. Returns grad_input of input_shape, float64.

    >>> avg_pool2d_backward(np.array([[[[4.0, 8.0]]]]), (1, 1, 2, 4), 2)
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
    """
    op = "avg_pool2d_backward"
    g = as_float64(grad_out)
    shape, k, s, p, (OH, OW) = avg_backward_geometry(op, g.shape, input_shape, kernel_size, stride, padding,
                                                     ceil_mode, divisor_override)
    H, W = shape[-2:]
    gb, batched = spatial_batch(g)
    grad_in = np.zeros(gb.shape[:2] + (H, W))
    for oh, ow, h0, h1, w0, w1, div in _avg_windows(H, W, OH, OW, k, s, p, count_include_pad, divisor_override):
        if h0 < h1 and w0 < w1:
            grad_in[:, :, h0:h1, w0:w1] += (gb[:, :, oh, ow] / div)[:, :, None, None]
    return unbatch(grad_in, batched)


# ---------------------------------------------------------------------------------------
# adaptive pooling: window i of n over a size-L axis is [floor(i L / n), ceil((i + 1) L / n))
# ---------------------------------------------------------------------------------------

def _adaptive_size(op, x, output_size):
    H, W = x.shape[-2:]
    if output_size is None:
        raise ValueError(f"{op}: output_size is required")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    oh = H if oh is None else int(oh)
    ow = W if ow is None else int(ow)
    if oh < 0 or ow < 0:
        raise ValueError(f"{op}: output_size must be non-negative, got {(oh, ow)}")
    return oh, ow


def adaptive_avg_pool2d_forward(input, output_size):
    """Adaptive average pooling: OH x OW windows that tile the input as evenly as they can.

    input: (N, C, H, W) or (C, H, W); output_size: int, (OH, OW), or a pair with None for
    "keep that size". Window i of n along an axis of length L is
    ``[floor(i L / n), ceil((i + 1) L / n))``. Returns (N, C, OH, OW) float64.

    >>> adaptive_avg_pool2d_forward(np.arange(6.0).reshape(1, 1, 1, 6), (1, 4))
    array([[[[0.5, 1.5, 3.5, 4.5]]]])
    """
    op = "adaptive_avg_pool2d"
    x = as_float64(input)
    check_input(x, op)
    OH, OW = _adaptive_size(op, x, output_size)
    xb, batched = spatial_batch(x)
    N, C, H, W = xb.shape
    out = np.empty((N, C, OH, OW))
    for oh in range(OH):
        h0, h1 = adaptive_start(oh, H, OH), adaptive_end(oh, H, OH)
        for ow in range(OW):
            w0, w1 = adaptive_start(ow, W, OW), adaptive_end(ow, W, OW)
            out[:, :, oh, ow] = xb[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return unbatch(out, batched)


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Gradient of adaptive_avg_pool2d: spread each output's gradient evenly over its window.

    grad_out: (N, C, OH, OW) (or unbatched); input_shape: (N, C, H, W) or (C, H, W).

    >>> adaptive_avg_pool2d_backward(np.array([[[[2.0, 4.0]]]]), (1, 1, 1, 4))
    array([[[[1., 1., 2., 2.]]]])
    """
    op = "adaptive_avg_pool2d_backward"
    g = as_float64(grad_out)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) not in (3, 4) or g.ndim != len(shape) or g.shape[:-2] != shape[:-2]:
        raise ValueError(f"{op}: grad_out of shape {g.shape} does not match input_shape {shape}")
    gb, batched = spatial_batch(g)
    OH, OW = gb.shape[-2:]
    H, W = shape[-2:]
    grad_in = np.zeros(gb.shape[:2] + (H, W))
    for oh in range(OH):
        h0, h1 = adaptive_start(oh, H, OH), adaptive_end(oh, H, OH)
        for ow in range(OW):
            w0, w1 = adaptive_start(ow, W, OW), adaptive_end(ow, W, OW)
            grad_in[:, :, h0:h1, w0:w1] += (gb[:, :, oh, ow] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return unbatch(grad_in, batched)


def _max_over_windows(xb, rows, cols):
    """Max pooling over explicit windows: rows[oh] and cols[ow] list the input rows/cols."""
    N, C, H, W = xb.shape
    out = np.empty((N, C, len(rows), len(cols)))
    idx = np.empty((N, C, len(rows), len(cols)), dtype=np.int64)
    for oh, hs in enumerate(rows):
        for ow, ws in enumerate(cols):
            best = np.full((N, C), -np.inf)
            best_idx = np.full((N, C), hs[0] * W + ws[0], dtype=np.int64)
            for h in hs:
                for w in ws:
                    v = xb[:, :, h, w]
                    better = (v > best) | np.isnan(v)
                    best = np.where(better, v, best)
                    best_idx = np.where(better, h * W + w, best_idx)
            out[:, :, oh, ow] = best
            idx[:, :, oh, ow] = best_idx
    return out, idx


def adaptive_max_pool2d_forward(input, output_size):
    """Adaptive max pooling; returns ``(out, indices)`` (indices as in max_pool2d_forward).

    The windows are adaptive_avg_pool2d's; the backward is :func:`max_pool2d_backward`.

    >>> out, idx = adaptive_max_pool2d_forward(np.array([[[[1.0, 3.0, 2.0, 0.0]]]]), (1, 2))
    >>> out, idx
    (array([[[[3., 2.]]]]), array([[[[1, 2]]]]))
    """
    op = "adaptive_max_pool2d"
    x = as_float64(input)
    check_input(x, op)
    OH, OW = _adaptive_size(op, x, output_size)
    xb, batched = spatial_batch(x)
    H, W = xb.shape[-2:]
    rows = [range(adaptive_start(i, H, OH), adaptive_end(i, H, OH)) for i in range(OH)]
    cols = [range(adaptive_start(j, W, OW), adaptive_end(j, W, OW)) for j in range(OW)]
    out, idx = _max_over_windows(xb, rows, cols)
    return unbatch(out, batched), unbatch(idx, batched)


def adaptive_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of adaptive_max_pool2d: the same routing as :func:`max_pool2d_backward`."""
    return max_pool2d_backward(grad_out, indices, input_shape)


# ---------------------------------------------------------------------------------------
# fractional_max_pool2d (Graham, "Fractional Max-Pooling", 2014)
# ---------------------------------------------------------------------------------------

def fractional_geometry(op, H, W, kernel_size, output_size, output_ratio):
    """(KH, KW, OH, OW) of fractional max pooling over an H x W plane, every argument checked."""
    KH, KW = pair(op, "kernel_size", kernel_size)
    if KH <= 0 or KW <= 0:
        raise ValueError(f"{op}: kernel_size must be positive, got {(KH, KW)}")
    OH, OW = fractional_output_size(op, H, W, output_size, output_ratio)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{op}: output_size must be positive, got {(OH, OW)}")
    if OH + KH - 1 > H:
        raise ValueError(f"{op}: kernel height {KH} too large for output height {OH} from input height {H} "
                         f"(needs output_size + kernel_size - 1 <= input size)")
    if OW + KW - 1 > W:
        raise ValueError(f"{op}: kernel width {KW} too large for output width {OW} from input width {W} "
                         f"(needs output_size + kernel_size - 1 <= input size)")
    return KH, KW, OH, OW


def fractional_output_size(op, H, W, output_size, output_ratio):
    """(OH, OW) from exactly one of output_size and output_ratio (int(size * ratio))."""
    if (output_size is None) == (output_ratio is None):
        raise ValueError(f"{op}: give exactly one of output_size and output_ratio")
    if output_size is not None:
        return pair(op, "output_size", output_size)
    rh, rw = (output_ratio, output_ratio) if np.isscalar(output_ratio) else tuple(output_ratio)
    if not (0 < rh < 1 and 0 < rw < 1):
        raise ValueError(f"{op}: output_ratio must lie in (0, 1), got {(rh, rw)}")
    return int(H * rh), int(W * rw)


def fractional_max_pool2d_forward(input, kernel_size, output_size=None, output_ratio=None, samples=None):
    """Fractional max pooling with PyTorch's pseudo-random window starts; ``(out, indices)``.

    input: (N, C, H, W) or (C, H, W); kernel_size: (KH, KW); exactly one of output_size
    (OH, OW) and output_ratio (OH = int(H * ratio)); samples: (N, C, 2) (or (1, C, 2) /
    (C, 2) for an unbatched input), uniform in [0, 1), drawn by the caller -- sample
    [..., 0] places the columns, [..., 1] the rows. With u a sample and
    ``alpha = (L - K) / (n - 1)``, window i of n starts at ``int((i + u) alpha) - int(u alpha)``
    and the last one at ``L - K`` (PyTorch's ``generate_intervals``, computed in the
    samples' dtype as PyTorch computes it in the input's). Windows are K long, so they
    overlap when the ratio is above 1/2 (the paper's "overlapping" variant).

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, idx = fractional_max_pool2d_forward(x, 2, output_size=3, samples=np.full((1, 1, 2), 0.5))
    >>> out
    array([[[[ 5.,  6.,  7.],
             [ 9., 10., 11.],
             [13., 14., 15.]]]])
    """
    op = "fractional_max_pool2d"
    x = as_float64(input)
    check_input(x, op)
    xb, batched = spatial_batch(x)
    N, C, H, W = xb.shape
    KH, KW, OH, OW = fractional_geometry(op, H, W, kernel_size, output_size, output_ratio)
    if samples is None:
        raise ValueError(f"{op}: samples (N, C, 2), uniform in [0, 1), are required: draw them from "
                         "pydl's generator")
    u = np.asarray(samples)
    if u.dtype not in (np.float32, np.float64):
        u = u.astype(np.float64)
    if not batched and u.shape == (C, 2):
        u = u[None]
    if u.shape != (N, C, 2):
        raise ValueError(f"{op}: samples must have shape {(N, C, 2)}, got {np.shape(samples)}")
    out = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            starts_w = fractional_intervals(u[n, c, 0], W, OW, KW)
            starts_h = fractional_intervals(u[n, c, 1], H, OH, KH)
            rows = [range(h, h + KH) for h in starts_h]
            cols = [range(w, w + KW) for w in starts_w]
            o, i = _max_over_windows(xb[n:n + 1, c:c + 1], rows, cols)
            out[n, c], idx[n, c] = o[0, 0], i[0, 0]
    return unbatch(out, batched), unbatch(idx, batched)


def fractional_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of fractional_max_pool2d: the same routing as :func:`max_pool2d_backward`."""
    return max_pool2d_backward(grad_out, indices, input_shape)
