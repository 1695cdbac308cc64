"""Pooling on the GPU (csrc/cuda/pool.cu): max (with indices), average, adaptive, fractional
max and max-unpooling, forward and backward.

Signatures and results are the reference's (:mod:`pydl.kernels.reference.pool`): inputs
(N, C, H, W) or (C, H, W), outputs of the same rank, indices int64 flat positions
``h * W + w`` in a plane. Arguments are parsed by the reference's own rules
(``_pool_rules``: the same messages, the same output sizes); the kernels see contiguous
planes.
"""
from ..reference._pool_rules import check_input, pair, pool_output_size, pool_params
from ..reference.pool import _adaptive_size, _avg_checks, avg_backward_geometry, fractional_geometry
from ._common import cp, float_array, launcher, stream

OPS = ("max_pool2d_forward", "max_pool2d_backward", "max_unpool2d_forward", "max_unpool2d_backward",
       "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
       "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward", "fractional_max_pool2d_forward",
       "fractional_max_pool2d_backward")


def _input(x, op):
    """(contiguous x, planes P, H, W) of a checked (N, C, H, W) or (C, H, W) input."""
    float_array(x, op, "input")
    check_input(x, op)
    return cp.ascontiguousarray(x), x.size // (x.shape[-2] * x.shape[-1]), x.shape[-2], x.shape[-1]


def _shape(P, H, W, OH, OW, k=(0, 0), s=(0, 0), p=(0, 0), d=(1, 1)):
    """The 13 ints of pydl::Pool2dShape."""
    return [P, H, W, OH, OW, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1]]


def _indices(idx, op, like, like_name):
    """Contiguous int64 indices of the shape of ``like`` (named like_name in errors)."""
    if not isinstance(idx, cp.ndarray) or idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer array, got {getattr(idx, 'dtype', type(idx).__name__)}")
    if idx.shape != like.shape:
        raise ValueError(f"{op}: indices must have the shape of {like_name} {like.shape}, got {idx.shape}")
    return cp.ascontiguousarray(idx, dtype=cp.int64)


def _index_range(idx):
    """(min, max) of an index array (one device sync), or None when it is empty."""
    return (int(idx.min()), int(idx.max())) if idx.size else None


def _input_shape(input_shape, op):
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: input_shape must be a sequence of ints, got {input_shape!r}") from None
    if min(shape, default=0) < 0:
        raise ValueError(f"{op}: input_shape must not hold negative sizes")
    return shape


def _adaptive(op, input, output_size):
    """(contiguous x, its Pool2dShape ints, the empty output) of an adaptive pooling forward."""
    x, P, H, W = _input(input, op)
    OH, OW = _adaptive_size(op, x, output_size)
    return x, _shape(P, H, W, OH, OW), cp.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)


def _planes(shape):
    P = 1
    for v in shape[:-2]:
        P *= v
    return P


# ---------------------------------------------------------------------------------------
# max pooling (max_pool2d, adaptive and fractional share the backward)
# ---------------------------------------------------------------------------------------

def max_pool2d_forward(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling, ``(out, indices)``: (N, C, H, W) -> (N, C, OH, OW) twice (see the reference)."""
    op = "max_pool2d"
    x, P, H, W = _input(input, op)
    k, s, p, d = pool_params(op, kernel_size, stride, padding, dilation)
    OH, OW = pool_output_size(op, (H, W), k, s, p, d, ceil_mode)
    out = cp.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    idx = cp.empty(out.shape, dtype=cp.int64)
    launcher("max_pool2d_forward", x.dtype)(_shape(P, H, W, OH, OW, k, s, p, d), x.data.ptr, out.data.ptr,
                                            idx.data.ptr, stream())
    return out, idx


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of max pooling: ``grad_in[p, indices] += grad_out`` (windows that overlap add)."""
    op = "max_pool2d_backward"
    float_array(grad_out, op, "grad_out")
    shape = _input_shape(input_shape, op)
    if len(shape) not in (3, 4) or grad_out.ndim != len(shape):
        raise ValueError(f"{op}: input_shape {shape} and grad_out of shape {grad_out.shape} must both be "
                         "(N, C, H, W) or (C, H, W)")
    idx = _indices(indices, op, grad_out, "grad_out")
    if grad_out.shape[:-2] != shape[:-2]:
        raise ValueError(f"{op}: grad_out of shape {grad_out.shape} does not match input_shape {shape}")
    H, W = shape[-2:]
    span = _index_range(idx)
    if span and (span[0] < 0 or span[1] >= H * W):
        raise ValueError(f"{op}: indices must lie in [0, {H * W}) (the input plane of {H}x{W}), "
                         f"found {span[0]}..{span[1]}")
    g = cp.ascontiguousarray(grad_out)
    grad_in = cp.empty(shape, dtype=g.dtype)
    launcher("max_pool2d_backward", g.dtype)(_planes(shape), H * W, g.shape[-2] * g.shape[-1], g.data.ptr,
                                             idx.data.ptr, grad_in.data.ptr, stream())
    return grad_in


def adaptive_max_pool2d_forward(input, output_size):
    """Adaptive max pooling, ``(out, indices)`` (windows as adaptive_avg_pool2d's)."""
    x, shape, out = _adaptive("adaptive_max_pool2d", input, output_size)
    idx = cp.empty(out.shape, dtype=cp.int64)
    launcher("adaptive_max_pool2d_forward", x.dtype)(shape, x.data.ptr, out.data.ptr, idx.data.ptr, stream())
    return out, idx


def adaptive_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of adaptive_max_pool2d: the routing of :func:`max_pool2d_backward`."""
    return max_pool2d_backward(grad_out, indices, input_shape)


def fractional_max_pool2d_forward(input, kernel_size, output_size=None, output_ratio=None, samples=None):
    """Fractional max pooling with the caller's samples (N, C, 2), ``(out, indices)``."""
    op = "fractional_max_pool2d"
    x, P, H, W = _input(input, op)
    KH, KW, OH, OW = fractional_geometry(op, H, W, kernel_size, output_size, output_ratio)
    if samples is None:
        raise ValueError(f"{op}: samples (N, C, 2), uniform in [0, 1), are required: draw them from "
                         "pydl's generator")
    u = cp.asarray(samples)
    N, C = (x.shape[0], x.shape[1]) if x.ndim == 4 else (1, x.shape[0])
    if u.shape != (N, C, 2) and not (x.ndim == 3 and u.shape == (C, 2)):
        raise ValueError(f"{op}: samples must have shape {(N, C, 2)}, got {u.shape}")
    u = cp.ascontiguousarray(u, dtype=x.dtype)  # window starts computed in the input's type
    out = cp.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    idx = cp.empty(out.shape, dtype=cp.int64)
    launcher("fractional_max_pool2d_forward", x.dtype)(_shape(P, H, W, OH, OW, (KH, KW)), u.data.ptr, x.data.ptr,
                                                       out.data.ptr, idx.data.ptr, stream())
    return out, idx


def fractional_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of fractional_max_pool2d: the routing of :func:`max_pool2d_backward`."""
    return max_pool2d_backward(grad_out, indices, input_shape)


# ---------------------------------------------------------------------------------------
# max_unpool2d
# ---------------------------------------------------------------------------------------

def max_unpool2d_forward(input, indices, output_size):
    """Puts each value where its index says in zero planes of output_size (OH, OW)."""
    op = "max_unpool2d"
    float_array(input, op, "input")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input must have 3 or 4 dimensions, (C, H, W) or (N, C, H, W), "
                         f"got shape {input.shape}")
    idx = _indices(indices, op, input, "input")
    OH, OW = pair(op, "output_size", output_size)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{op}: output_size must be positive, got {(OH, OW)}")
    span = _index_range(idx)
    if span and (span[0] < 0 or span[1] >= OH * OW):
        bad = span[1] if span[1] >= OH * OW else span[0]
        raise ValueError(f"{op}: found an invalid max index {bad} (the output planes are {OH}x{OW})")
    x = cp.ascontiguousarray(input)
    out = cp.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    winner = cp.empty(out.shape, dtype=cp.int64)  # workspace: which input lands on each output
    launcher("max_unpool2d_forward", x.dtype)(_planes(x.shape), x.shape[-2] * x.shape[-1], OH * OW, x.data.ptr,
                                              idx.data.ptr, winner.data.ptr, out.data.ptr, stream())
    return out


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max_unpool2d: each input reads the output gradient at its index."""
    op = "max_unpool2d_backward"
    float_array(grad_out, op, "grad_out")
    if not isinstance(indices, cp.ndarray) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer array")
    if grad_out.ndim not in (3, 4) or indices.ndim != grad_out.ndim or indices.shape[:-2] != grad_out.shape[:-2]:
        raise ValueError(f"{op}: grad_out {grad_out.shape} and indices {indices.shape} must be (N, C, *, *) "
                         "or (C, *, *) with the same leading dimensions")
    OH, OW = grad_out.shape[-2:]
    idx = cp.ascontiguousarray(indices, dtype=cp.int64)
    span = _index_range(idx)
    if span and (span[0] < 0 or span[1] >= OH * OW):
        raise ValueError(f"{op}: indices must lie in [0, {OH * OW}), found {span[0]}..{span[1]}")
    g = cp.ascontiguousarray(grad_out)
    grad_in = cp.empty(idx.shape, dtype=g.dtype)
    launcher("max_unpool2d_backward", g.dtype)(_planes(idx.shape), idx.shape[-2] * idx.shape[-1], OH * OW,
                                               g.data.ptr, idx.data.ptr, grad_in.data.ptr, stream())
    return grad_in


# ---------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------

def avg_pool2d_forward(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Average pooling (PyTorch's avg_pool2d): (N, C, H, W) -> (N, C, OH, OW)."""
    op = "avg_pool2d"
    x, P, H, W = _input(input, op)
    _avg_checks(op, divisor_override)
    k, s, p, _ = pool_params(op, kernel_size, stride, padding, 1)
    OH, OW = pool_output_size(op, (H, W), k, s, p, (1, 1), ceil_mode)
    out = cp.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
    launcher("avg_pool2d_forward", x.dtype)(_shape(P, H, W, OH, OW, k, s, p), bool(count_include_pad),
                                            int(divisor_override or 0), x.data.ptr, out.data.ptr, stream())
    return out


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d: each input sums grad_out / divisor over the windows that hold it."""
    op = "avg_pool2d_backward"
    float_array(grad_out, op, "grad_out")
    shape, k, s, p, (OH, OW) = avg_backward_geometry(op, grad_out.shape, _input_shape(input_shape, op), kernel_size,
                                                     stride, padding, ceil_mode, divisor_override)
    H, W = shape[-2:]
    g = cp.ascontiguousarray(grad_out)
    grad_in = cp.empty(shape, dtype=g.dtype)
    launcher("avg_pool2d_backward", g.dtype)(_shape(_planes(shape), H, W, OH, OW, k, s, p), bool(count_include_pad),
                                             int(divisor_override or 0), g.data.ptr, grad_in.data.ptr, stream())
    return grad_in


def adaptive_avg_pool2d_forward(input, output_size):
    """Adaptive average pooling: window i of n over L is [floor(iL/n), ceil((i+1)L/n))."""
    x, shape, out = _adaptive("adaptive_avg_pool2d", input, output_size)
    launcher("adaptive_avg_pool2d_forward", x.dtype)(shape, x.data.ptr, out.data.ptr, stream())
    return out


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Gradient of adaptive_avg_pool2d: each output's gradient spread evenly over its window."""
    op = "adaptive_avg_pool2d_backward"
    float_array(grad_out, op, "grad_out")
    shape = _input_shape(input_shape, op)
    if len(shape) not in (3, 4) or grad_out.ndim != len(shape) or grad_out.shape[:-2] != shape[:-2]:
        raise ValueError(f"{op}: grad_out of shape {grad_out.shape} does not match input_shape {shape}")
    H, W = shape[-2:]
    OH, OW = grad_out.shape[-2:]
    if (H == 0 or W == 0) and OH * OW > 0:
        raise ValueError(f"{op}: input_shape {shape} has an empty plane")
    g = cp.ascontiguousarray(grad_out)
    grad_in = cp.empty(shape, dtype=g.dtype)
    launcher("adaptive_avg_pool2d_backward", g.dtype)(_shape(_planes(shape), H, W, OH, OW), g.data.ptr,
                                                      grad_in.data.ptr, stream())
    return grad_in
