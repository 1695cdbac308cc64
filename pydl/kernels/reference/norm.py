"""Normalisation layers: batch norm, layer norm and group norm (instance norm is a case).

Every one of them is the same recipe applied over a different set of elements: take a
group of numbers, subtract their mean, divide by their standard deviation (biased, with
eps inside the square root), then scale and shift with learned per-channel (or
per-feature) parameters:

    xhat = (x - mean) * rstd,   rstd = 1 / sqrt(var + eps),   y = weight * xhat + bias

- batch norm: the statistics of each channel over the batch and every spatial position;
  at test time the running averages stand in for them (the seeds: it then becomes a fixed
  linear layer);
- layer norm: the statistics of each sample over its last dimensions (normalized_shape);
- group norm: the statistics of each sample over each group of C / G channels; instance
  norm is group norm with one channel per group.

The backward of y = xhat * w + b over a group of M elements, with g = dL/dy * w:

    dL/dx = rstd * (g - mean(g) - xhat * mean(g * xhat))

(the mean and the variance depend on every x of the group, which is where the two means
come from); dL/dw = sum dL/dy * xhat and dL/db = sum dL/dy over everything the parameter
was shared by.
"""
import numpy as np


def _f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _channel_param(op, name, p, C):
    if p is None:
        return None
    p = _f64(p)
    if p.shape != (C,):
        raise ValueError(f"{op}: {name} must have shape ({C},) to match the input's {C} channels, got {p.shape}")
    return p


def _needs(op, needs):
    needs = tuple(bool(v) for v in needs)
    if len(needs) != 3:
        raise ValueError(f"{op}: needs must be three booleans (input, weight, bias), got {needs!r}")
    return needs


# ---------------------------------------------------------------------------------------
# batch_norm
# ---------------------------------------------------------------------------------------

def _bn_view(op, x):
    """x as (N, C, L): the channel axis is 1, every axis after it is flattened into L."""
    if x.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dimensions (N, C, *), got shape {x.shape}")
    N, C = x.shape[:2]
    return x.reshape(N, C, int(np.prod(x.shape[2:], dtype=np.int64)))


def batch_norm_forward(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                       eps=1e-5):
    """Batch normalisation; returns ``(out, save_mean, save_invstd)``.

    input: (N, C) or (N, C, *); running_mean, running_var, weight, bias: (C,) or None.
    Training: normalise with each channel's batch mean and biased variance over the N * L
    values it has (L = the product of the trailing sizes), and update the running
    statistics in place: ``running = (1 - momentum) * running + momentum * batch``, with
    the unbiased variance (times M / (M - 1)) for running_var. Evaluation: normalise with
    the running statistics. Returns out (the input's shape, float64) and the per-channel
    (C,) mean and 1 / sqrt(var + eps) that were used (the batch's in training, the running
    ones in evaluation), which batch_norm_backward takes. An empty input returns an empty
    output and leaves the running statistics alone.

    >>> x = np.array([[1.0, 10.0], [3.0, 14.0]])
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> out, mean, invstd = batch_norm_forward(x, rm, rv, training=True, eps=0.0)
    >>> out, mean, rm, rv
    (array([[-1., -1.],
           [ 1.,  1.]]), array([ 2., 12.]), array([0.2, 1.2]), array([1.1, 1.7]))
    """
    op = "batch_norm"
    x = _f64(input)
    xv = _bn_view(op, x)
    N, C, L = xv.shape
    w = _channel_param(op, "weight", weight, C)
    b = _channel_param(op, "bias", bias, C)
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None and np.shape(r) != (C,):
            raise ValueError(f"{op}: {name} must have shape ({C},) to match the input's {C} channels, "
                             f"got {np.shape(r)}")
    M = N * L  # values per channel
    if training:
        if M == 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input shape {x.shape}")
        if M == 0:
            return x.copy(), np.zeros(C), np.zeros(C)
        mean = xv.mean(axis=(0, 2))
        var = ((xv - mean[None, :, None]) ** 2).mean(axis=(0, 2))  # biased: normalises the batch
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * _f64(running_mean) + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * _f64(running_var) + momentum * var * M / (M - 1)  # unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are required in evaluation mode (training=False)")
        mean, var = _f64(running_mean).copy(), _f64(running_var)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (xv - mean[None, :, None]) * invstd[None, :, None]
    out = xhat * (1.0 if w is None else w[None, :, None]) + (0.0 if b is None else b[None, :, None])
    return out.reshape(x.shape), mean, invstd


def batch_norm_backward(grad_out, input, weight, save_mean, save_invstd, training, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of batch_norm_forward.

    grad_out, input: (N, C, *); weight: (C,) or None; save_mean, save_invstd: (C,) as the
    forward returned them. Training: the statistics depend on the batch, so
    ``dx = invstd * (g - mean(g) - xhat * mean(g * xhat))`` with g = dy * w and the means
    over each channel's N * L values; evaluation: the statistics are constants, so
    ``dx = dy * w * invstd``. grad_weight = sum dy * xhat, grad_bias = sum dy per channel;
    an entry is None where ``needs`` (input, weight, bias) says it is not wanted, and
    grad_weight is None without a weight.

    >>> x = np.array([[1.0], [3.0]])
    >>> out, m, s = batch_norm_forward(x, None, None, np.ones(1), np.zeros(1), training=True, eps=0.0)
    >>> batch_norm_backward(np.array([[1.0], [0.0]]), x, np.ones(1), m, s, True)
    (array([[0.],
           [0.]]), array([-1.]), array([1.]))
    """
    op = "batch_norm_backward"
    need_x, need_w, need_b = _needs(op, needs)
    x, g = _f64(input), _f64(grad_out)
    if g.shape != x.shape:
        raise ValueError(f"{op}: grad_out must have the input's shape {x.shape}, got {g.shape}")
    xv, gv = _bn_view(op, x), _bn_view(op, g)
    N, C, L = xv.shape
    w = _channel_param(op, "weight", weight, C)
    mean = _channel_param(op, "save_mean", save_mean, C)
    invstd = _channel_param(op, "save_invstd", save_invstd, C)
    xhat = (xv - mean[None, :, None]) * invstd[None, :, None]
    sum_dy = gv.sum(axis=(0, 2))
    sum_dy_xhat = (gv * xhat).sum(axis=(0, 2))
    grad_input = None
    if need_x:
        wv = np.ones(C) if w is None else w
        if training:
            M = N * L
            gi = (gv - (sum_dy / M)[None, :, None] - xhat * (sum_dy_xhat / M)[None, :, None])
            grad_input = (gi * (wv * invstd)[None, :, None]).reshape(x.shape)
        else:
            grad_input = (gv * (wv * invstd)[None, :, None]).reshape(x.shape)
    grad_weight = sum_dy_xhat if (need_w and w is not None) else None
    grad_bias = sum_dy if need_b else None
    return grad_input, grad_weight, grad_bias


# ---------------------------------------------------------------------------------------
# layer_norm
# ---------------------------------------------------------------------------------------

def _ln_shape(op, x, normalized_shape):
    shape = (int(normalized_shape),) if np.isscalar(normalized_shape) else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(f"{op}: normalized_shape={list(shape)} expects input of shape (*, "
                         f"{', '.join(map(str, shape))}), got {x.shape}")
    return shape


def layer_norm_forward(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation; returns ``(out, mean, rstd)``.

    input: (*, D1, ..., Dk) with normalized_shape = (D1, ..., Dk); weight, bias: the
    normalized_shape, or None. Each sample (every index of the leading *) is normalised
    with the mean and biased variance of its D = D1 * ... * Dk values. Returns out (the
    input's shape), and mean, rstd = 1 / sqrt(var + eps) of shape (*, 1, ..., 1) as
    PyTorch's native_layer_norm does.

    >>> out, mean, rstd = layer_norm_forward(np.array([[1.0, 3.0], [0.0, 4.0]]), 2, eps=0.0)
    >>> out, mean.ravel()
    (array([[-1.,  1.],
           [-1.,  1.]]), array([2., 2.]))
    """
    op = "layer_norm"
    x = _f64(input)
    shape = _ln_shape(op, x, normalized_shape)
    k = len(shape)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and np.shape(p) != shape:
            raise ValueError(f"{op}: {name} must have the normalized_shape {shape}, got {np.shape(p)}")
    lead = x.shape[:x.ndim - k]
    xv = x.reshape(int(np.prod(lead, dtype=np.int64)), int(np.prod(shape, dtype=np.int64)))  # (M, D)
    mean = xv.mean(axis=1, keepdims=True)
    var = ((xv - mean) ** 2).mean(axis=1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (xv - mean) * rstd
    if weight is not None:
        y = y * _f64(weight).reshape(1, -1)
    if bias is not None:
        y = y + _f64(bias).reshape(1, -1)
    stat_shape = lead + (1,) * k
    return y.reshape(x.shape), mean.reshape(stat_shape), rstd.reshape(stat_shape)


def layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight=None, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of layer_norm_forward.

    grad_out, input: (*, D1, ..., Dk); mean, rstd: as the forward returned them (any
    shape with one entry per sample); weight: normalized_shape or None. grad_weight (None
    without a weight) and grad_bias have the normalized_shape, summed over the samples.

    >>> x = np.array([[1.0, 3.0]])
    >>> out, m, r = layer_norm_forward(x, 2, eps=0.0)
    >>> gx, gw, gb = layer_norm_backward(np.array([[1.0, 0.0]]), x, 2, m, r, np.ones(2))
    >>> gx, gw, gb
    (array([[0., 0.]]), array([-1.,  0.]), array([1., 0.]))
    """
    op = "layer_norm_backward"
    need_x, need_w, need_b = _needs(op, needs)
    x, g = _f64(input), _f64(grad_out)
    if g.shape != x.shape:
        raise ValueError(f"{op}: grad_out must have the input's shape {x.shape}, got {g.shape}")
    shape = _ln_shape(op, x, normalized_shape)
    if weight is not None and np.shape(weight) != shape:
        raise ValueError(f"{op}: weight must have the normalized_shape {shape}, got {np.shape(weight)}")
    D = int(np.prod(shape, dtype=np.int64))
    M = int(np.prod(x.shape[:x.ndim - len(shape)], dtype=np.int64))
    xv, gv = x.reshape(M, D), g.reshape(M, D)
    mean, rstd = _f64(mean).reshape(-1), _f64(rstd).reshape(-1)
    if mean.shape != (M,) or rstd.shape != (M,):
        raise ValueError(f"{op}: mean and rstd must have one entry per sample ({M}), got {np.shape(mean)} "
                         f"and {np.shape(rstd)}")
    xhat = (xv - mean[:, None]) * rstd[:, None]
    grad_input = None
    if need_x:
        gw = gv * (1.0 if weight is None else _f64(weight).reshape(1, -1))  # the gradient reaching xhat
        gi = gw - gw.mean(axis=1, keepdims=True) - xhat * (gw * xhat).mean(axis=1, keepdims=True)
        grad_input = (gi * rstd[:, None]).reshape(x.shape)
    grad_weight = (gv * xhat).sum(axis=0).reshape(shape) if (need_w and weight is not None) else None
    grad_bias = gv.sum(axis=0).reshape(shape) if need_b else None
    return grad_input, grad_weight, grad_bias


# ---------------------------------------------------------------------------------------
# group_norm
# ---------------------------------------------------------------------------------------

def _gn_view(op, x, num_groups):
    if x.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dimensions (N, C, *), got shape {x.shape}")
    N, C = x.shape[:2]
    G = int(num_groups)
    if G <= 0 or C % G != 0:
        raise ValueError(f"{op}: the input's {C} channels must be divisible by num_groups, got num_groups={G} "
                         f"(input shape {x.shape})")
    return x.reshape(N, G, (C // G) * int(np.prod(x.shape[2:], dtype=np.int64))), N, C, G


def group_norm_forward(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation; returns ``(out, mean, rstd)``.

    input: (N, C, *); num_groups G divides C; weight, bias: (C,) or None (per channel,
    as in PyTorch). Each sample's channels are split into G groups of C / G, and each
    group is normalised with the mean and biased variance of its (C / G) * L values.
    Instance norm is the case G = C; layer norm over (C, *) is the case G = 1 (with
    per-channel rather than per-element affine). Returns out (the input's shape) and
    mean, rstd of shape (N, G).

    >>> out, mean, rstd = group_norm_forward(np.array([[1.0, 3.0, 4.0, 8.0]]), 2, eps=0.0)
    >>> out, mean
    (array([[-1.,  1., -1.,  1.]]), array([[2., 6.]]))
    """
    op = "group_norm"
    x = _f64(input)
    xv, N, C, G = _gn_view(op, x, num_groups)
    w = _channel_param(op, "weight", weight, C)
    b = _channel_param(op, "bias", bias, C)
    mean = xv.mean(axis=2)
    var = ((xv - mean[:, :, None]) ** 2).mean(axis=2)
    rstd = 1.0 / np.sqrt(var + eps)
    y = ((xv - mean[:, :, None]) * rstd[:, :, None]).reshape(N, C, xv.shape[2] // (C // G))
    if w is not None:
        y = y * w[None, :, None]
    if b is not None:
        y = y + b[None, :, None]
    return y.reshape(x.shape), mean, rstd


def group_norm_backward(grad_out, input, num_groups, mean, rstd, weight=None, needs=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of group_norm_forward.

    grad_out, input: (N, C, *); mean, rstd: (N, G) from the forward; weight: (C,) or
    None. grad_weight (None without a weight) and grad_bias are (C,).

    >>> x = np.array([[1.0, 3.0]])
    >>> out, m, r = group_norm_forward(x, 1, eps=0.0)
    >>> group_norm_backward(np.array([[1.0, 0.0]]), x, 1, m, r, np.ones(2))
    (array([[0., 0.]]), array([-1.,  0.]), array([1., 0.]))
    """
    op = "group_norm_backward"
    need_x, need_w, need_b = _needs(op, needs)
    x, g = _f64(input), _f64(grad_out)
    if g.shape != x.shape:
        raise ValueError(f"{op}: grad_out must have the input's shape {x.shape}, got {g.shape}")
    xv, N, C, G = _gn_view(op, x, num_groups)
    w = _channel_param(op, "weight", weight, C)
    mean, rstd = _f64(mean).reshape(-1), _f64(rstd).reshape(-1)
    if mean.shape != (N * G,) or rstd.shape != (N * G,):
        raise ValueError(f"{op}: mean and rstd must have shape ({N}, {G}), got {np.shape(mean)} and {np.shape(rstd)}")
    mean, rstd = mean.reshape(N, G, 1), rstd.reshape(N, G, 1)
    L = xv.shape[2] // (C // G)
    xhat = ((xv - mean) * rstd).reshape(N, C, L)
    gc = g.reshape(N, C, L)
    grad_input = None
    if need_x:
        gw = gc * (1.0 if w is None else w[None, :, None])
        gg, xg = gw.reshape(xv.shape), xhat.reshape(xv.shape)
        gi = gg - gg.mean(axis=2, keepdims=True) - xg * (gg * xg).mean(axis=2, keepdims=True)
        grad_input = (gi * rstd).reshape(x.shape)
    grad_weight = (gc * xhat).sum(axis=(0, 2)) if (need_w and w is not None) else None
    grad_bias = gc.sum(axis=(0, 2)) if need_b else None
    return grad_input, grad_weight, grad_bias
