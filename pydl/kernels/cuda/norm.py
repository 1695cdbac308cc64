"""Normalisation on the GPU (csrc/cuda/norm.cu): batch_norm, layer_norm, group_norm.

Same signatures, checks and return values as :mod:`pydl.kernels.reference.norm` and the
CPU binding: forward ``-> (out, mean, rstd)`` (batch norm: ``save_mean, save_invstd``),
backward ``-> (grad_input, grad_weight, grad_bias)`` with None where ``needs`` says so.
Outputs are CuPy arrays of the input's dtype; the workspaces are allocated here.
"""
import math

from ._common import cp, float_array, launcher, ptr, stream

OPS = ("batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward",
       "group_norm_forward", "group_norm_backward")

# Values per block of one channel's statistics (batch norm) and rows per slice of the
# parameter gradients (layer norm): enough blocks to fill a GPU, each with real work.
_BN_VALUES_PER_SLICE = 4096
_LN_ROWS_PER_SLICE = 64
_MAX_SLICES = 1024


def _slices(items, per):
    return max(1, min(_MAX_SLICES, math.ceil(items / per)))


def _input(x, op, name="input"):
    return cp.ascontiguousarray(float_array(x, op, name))


def _param(p, op, name, shape, dtype, why):
    """None, or p as a contiguous array of ``dtype`` and exactly ``shape``."""
    if p is None:
        return None
    float_array(p, op, name)
    if tuple(p.shape) != tuple(shape):
        want = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{op}: {name} must have shape {want}{why}, got {tuple(p.shape)}")
    return cp.ascontiguousarray(p, dtype=dtype)


def _needs(op, needs):
    try:
        needs = tuple(bool(v) for v in needs)
    except TypeError:
        needs = ()
    if len(needs) != 3:
        raise ValueError(f"{op}: needs must be three booleans (input, weight, bias)")
    return needs


def _grad_outputs(op, needs, x, w, param_shape):
    """(grad_input, grad_weight, grad_bias) to fill: arrays where needs (input, weight,
    bias) asks for them (grad_weight only with a weight), None elsewhere."""
    need_x, need_w, need_b = _needs(op, needs)
    return (cp.empty(x.shape, x.dtype) if need_x else None,
            cp.zeros(param_shape, x.dtype) if need_w and w is not None else None,
            cp.zeros(param_shape, x.dtype) if need_b else None)


def _same_input(op, grad_out, x):
    float_array(grad_out, op, "grad_out")
    if grad_out.dtype != x.dtype:
        raise TypeError(f"{op}: grad_out and input must have the same dtype, got {grad_out.dtype} and {x.dtype}")
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out must have the input's shape {tuple(x.shape)}, got {tuple(grad_out.shape)}")
    return cp.ascontiguousarray(grad_out)


def _ncl(op, x):
    if x.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dimensions (N, C, *), got shape {tuple(x.shape)}")
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


# ---------------------------------------------------------------------------------------
# batch_norm
# ---------------------------------------------------------------------------------------

def batch_norm_forward(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                       eps=1e-5):
    """Batch norm over (N, C) or (N, C, *): ``(out, save_mean, save_invstd)``, all CuPy.

    Training normalises with the batch statistics and updates running_mean /
    running_var (CuPy arrays of the input's dtype, contiguous) in place.
    """
    op = "batch_norm"
    float_array(input, op, "input")
    N, C, L = _ncl(op, input)
    dtype = input.dtype
    why = f" to match the input's {C} channels"
    w = _param(weight, op, "weight", (C,), dtype, why)
    b = _param(bias, op, "bias", (C,), dtype, why)
    running = []
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None:
            if not isinstance(r, cp.ndarray):
                raise TypeError(f"{op}: {name} must be a cupy.ndarray, got {type(r).__name__}")
            if r.dtype != dtype:
                raise TypeError(f"{op}: {name} must have the input's dtype {dtype}, got {r.dtype}")
            if tuple(r.shape) != (C,):
                raise ValueError(f"{op}: {name} must have shape ({C},){why}, got {tuple(r.shape)}")
            if training and not r.flags.c_contiguous:
                raise ValueError(f"{op}: {name} must be a writeable contiguous array in training "
                                 "(it is updated in place)")
            if not training:
                r = cp.ascontiguousarray(r)
        running.append(r)
    rm, rv = running
    if not training and (rm is None or rv is None):
        raise ValueError(f"{op}: running_mean and running_var are required in evaluation mode (training=False)")
    M = N * L
    if training and M == 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input shape "
                         f"{tuple(input.shape)}")
    x = _input(input, op)
    out = cp.empty(x.shape, dtype)
    save_mean, save_invstd = cp.empty(C, dtype), cp.empty(C, dtype)
    if training and M == 0:  # nothing to normalise; the running statistics stay
        save_mean[...] = 0
        save_invstd[...] = 0
        return out, save_mean, save_invstd
    if C == 0:
        return out, save_mean, save_invstd
    S = _slices(M, _BN_VALUES_PER_SLICE) if training else 0
    workspace = cp.empty(3 * C * S + 4 * C, dtype)
    launcher("batch_norm_forward", dtype)(N, C, L, x.data.ptr, out.data.ptr, ptr(rm), ptr(rv), ptr(w), ptr(b),
                                          bool(training), float(momentum), float(eps), save_mean.data.ptr,
                                          save_invstd.data.ptr, S, workspace.data.ptr, stream())
    return out, save_mean, save_invstd


def batch_norm_backward(grad_out, input, weight, save_mean, save_invstd, training, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of batch_norm_forward (CuPy or None)."""
    op = "batch_norm_backward"
    float_array(input, op, "input")
    N, C, L = _ncl(op, input)
    g = _same_input(op, grad_out, input)
    dtype = input.dtype
    why = f" to match the input's {C} channels"
    w = _param(weight, op, "weight", (C,), dtype, why)
    if save_mean is None or save_invstd is None:
        raise ValueError(f"{op}: save_mean and save_invstd (from batch_norm_forward) are required")
    mean = _param(save_mean, op, "save_mean", (C,), dtype, why)
    invstd = _param(save_invstd, op, "save_invstd", (C,), dtype, why)
    x = _input(input, op)
    gx, gw, gb = _grad_outputs(op, needs, x, w, (C,))
    if C > 0 and (gx is not None or gw is not None or gb is not None):
        S = _slices(N * L, _BN_VALUES_PER_SLICE)
        workspace = cp.empty(2 * C * S + 4 * C, dtype)
        launcher("batch_norm_backward", dtype)(N, C, L, g.data.ptr, x.data.ptr, ptr(w), mean.data.ptr,
                                               invstd.data.ptr, bool(training), ptr(gx), ptr(gw), ptr(gb), S,
                                               workspace.data.ptr, stream())
    return gx, gw, gb


# ---------------------------------------------------------------------------------------
# layer_norm
# ---------------------------------------------------------------------------------------

def _normalized_shape(op, x, normalized_shape):
    try:
        if isinstance(normalized_shape, (list, tuple)):
            shape = tuple(int(s) for s in normalized_shape)
        else:
            shape = (int(normalized_shape),)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: normalized_shape must be an int or a sequence of ints, "
                        f"got {normalized_shape!r}") from None
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"{op}: normalized_shape={list(shape)} expects input of shape (*"
                         f"{''.join(', ' + str(s) for s in shape)}), got {tuple(x.shape)}")
    return shape


def _row_stats(op, name, s, R, dtype):
    float_array(s, op, name)
    if s.size != R:
        raise ValueError(f"{op}: {name} must have one entry per sample ({R}), got shape {tuple(s.shape)}")
    return cp.ascontiguousarray(s, dtype=dtype).reshape(-1)


def layer_norm_forward(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm over the trailing normalized_shape: ``(out, mean, rstd)``; mean and rstd
    have shape ``(*, 1, ..., 1)``."""
    op = "layer_norm"
    float_array(input, op, "input")
    shape = _normalized_shape(op, input, normalized_shape)
    dtype = input.dtype
    w = _param(weight, op, "weight", shape, dtype, " (the normalized_shape)")
    b = _param(bias, op, "bias", shape, dtype, " (the normalized_shape)")
    lead = tuple(input.shape[:input.ndim - len(shape)])
    R, D = math.prod(lead), math.prod(shape)
    x = _input(input, op)
    out = cp.empty(x.shape, dtype)
    stat_shape = lead + (1,) * len(shape)
    mean, rstd = cp.empty(stat_shape, dtype), cp.empty(stat_shape, dtype)
    if R > 0 and D == 0:
        mean[...] = cp.nan
        rstd[...] = cp.nan
    elif R > 0:
        launcher("layer_norm_forward", dtype)(x.data.ptr, out.data.ptr, R, D, ptr(w), ptr(b), float(eps),
                                              mean.data.ptr, rstd.data.ptr, stream())
    return out, mean, rstd


def layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight=None, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of layer_norm_forward (CuPy or None)."""
    op = "layer_norm_backward"
    float_array(input, op, "input")
    g = _same_input(op, grad_out, input)
    shape = _normalized_shape(op, input, normalized_shape)
    dtype = input.dtype
    w = _param(weight, op, "weight", shape, dtype, " (the normalized_shape)")
    R, D = math.prod(input.shape[:input.ndim - len(shape)]), math.prod(shape)
    mean = _row_stats(op, "mean", mean, R, dtype)
    rstd = _row_stats(op, "rstd", rstd, R, dtype)
    x = _input(input, op)
    gx, gw, gb = _grad_outputs(op, needs, x, w, shape)
    if R > 0 and D > 0 and (gx is not None or gw is not None or gb is not None):
        S = _slices(R, _LN_ROWS_PER_SLICE)
        workspace = cp.empty(2 * S * D if (gw is not None or gb is not None) else 1, dtype)
        launcher("layer_norm_backward", dtype)(g.data.ptr, x.data.ptr, R, D, mean.data.ptr, rstd.data.ptr, ptr(w),
                                               ptr(gx), ptr(gw), ptr(gb), workspace.data.ptr, S, stream())
    return gx, gw, gb


# ---------------------------------------------------------------------------------------
# group_norm
# ---------------------------------------------------------------------------------------

def _groups(op, x, num_groups):
    N, C, L = _ncl(op, x)
    G = int(num_groups)
    if G <= 0 or C % G != 0:
        raise ValueError(f"{op}: the input's {C} channels must be divisible by num_groups, got num_groups={G} "
                         f"(input shape {tuple(x.shape)})")
    return N, C, L, G


def group_norm_forward(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm over (N, C, *) in num_groups groups: ``(out, mean, rstd)``, mean and rstd (N, G)."""
    op = "group_norm"
    float_array(input, op, "input")
    N, C, L, G = _groups(op, input, num_groups)
    dtype = input.dtype
    why = f" to match the input's {C} channels"
    w = _param(weight, op, "weight", (C,), dtype, why)
    b = _param(bias, op, "bias", (C,), dtype, why)
    x = _input(input, op)
    out = cp.empty(x.shape, dtype)
    mean, rstd = cp.empty((N, G), dtype), cp.empty((N, G), dtype)
    if N * G > 0 and L == 0:
        mean[...] = cp.nan
        rstd[...] = cp.nan
    elif N * G > 0:
        launcher("group_norm_forward", dtype)(x.data.ptr, out.data.ptr, N, C, L, G, ptr(w), ptr(b), float(eps),
                                              mean.data.ptr, rstd.data.ptr, stream())
    return out, mean, rstd


def group_norm_backward(grad_out, input, num_groups, mean, rstd, weight=None, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of group_norm_forward (CuPy or None)."""
    op = "group_norm_backward"
    float_array(input, op, "input")
    g = _same_input(op, grad_out, input)
    N, C, L, G = _groups(op, input, num_groups)
    dtype = input.dtype
    w = _param(weight, op, "weight", (C,), dtype, f" to match the input's {C} channels")
    stats = []
    for name, s in (("mean", mean), ("rstd", rstd)):
        float_array(s, op, name)
        if s.size != N * G:
            raise ValueError(f"{op}: {name} must have shape ({N}, {G}), got {tuple(s.shape)}")
        stats.append(cp.ascontiguousarray(s, dtype=dtype).reshape(-1))
    mean, rstd = stats
    x = _input(input, op)
    gx, gw, gb = _grad_outputs(op, needs, x, w, (C,))
    if N * C > 0 and (gx is not None or gw is not None or gb is not None):
        workspace = cp.empty(2 * N * C, dtype)
        launcher("group_norm_backward", dtype)(g.data.ptr, x.data.ptr, N, C, L, G, mean.data.ptr, rstd.data.ptr,
                                               ptr(w), ptr(gx), ptr(gw), ptr(gb), workspace.data.ptr, stream())
    return gx, gw, gb
