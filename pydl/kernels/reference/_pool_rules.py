"""PyTorch's pooling rules, shared by the pooling references: argument parsing, output
sizes, adaptive windows and fractional window starts (csrc/include/pydl/pool.h holds the
same rules for the C++ kernels)."""
import math

import numpy as np


def as_float64(x):
    return np.asarray(x, dtype=np.float64)


def pair(op, name, value):
    """(a, b) from an int or a 1- or 2-sequence of ints, as PyTorch's _pair reads them."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = (value[0], value[0])
        if len(value) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        a, b = value
    else:
        a = b = value
    try:
        if int(a) != a or int(b) != b:
            raise TypeError
        return int(a), int(b)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None


def pool_params(op, kernel_size, stride, padding, dilation):
    """Checked (k, s, p, d) pairs; stride None (or empty) means stride = kernel_size."""
    k = pair(op, "kernel_size", kernel_size)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else pair(op, "stride", stride)
    p = pair(op, "padding", padding)
    d = pair(op, "dilation", dilation)
    if min(k) <= 0:
        raise ValueError(f"{op}: kernel_size must be positive, got {k}")
    if min(s) <= 0:
        raise ValueError(f"{op}: stride must be positive, got {s}")
    if min(d) <= 0:
        raise ValueError(f"{op}: dilation must be positive, got {d}")
    if min(p) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {p}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: pad should be at most half of kernel size, but got padding={p}, "
                         f"kernel_size={k}")
    return k, s, p, d


def pool_output_size(op, size, k, s, p, d, ceil_mode):
    """(OH, OW): floor((L + 2p - d(k-1) - 1 [+ s-1 if ceil_mode]) / s) + 1, and ceil_mode's
    rule that the last window must start inside the input or the left padding."""
    out = []
    for L, ki, si, pi, di in zip(size, k, s, p, d):
        o = (L + 2 * pi - di * (ki - 1) - 1 + (si - 1 if ceil_mode else 0)) // si + 1
        if ceil_mode and (o - 1) * si >= L + pi:
            o -= 1
        out.append(o)
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size is too small: input {tuple(size)} gives output {tuple(out)} "
                         f"with kernel_size={k}, stride={s}, padding={p}, dilation={d} (the dilated window "
                         f"is larger than the padded input)")
    return tuple(out)


def check_input(x, op):
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must have 3 or 4 dimensions, (C, H, W) or (N, C, H, W), got shape {x.shape}")
    if 0 in x.shape[-3:]:
        raise ValueError(f"{op}: input must have non-zero C, H and W (only the batch may be empty), "
                         f"got shape {x.shape}")


def spatial_batch(x):
    """x as (N, C, H, W) and whether it had a batch axis."""
    return (x, True) if x.ndim == 4 else (x[None], False)


def unbatch(x, batched):
    return x if batched else x[0]


def adaptive_start(i, L, n):
    return (i * L) // n


def adaptive_end(i, L, n):
    return -((-(i + 1) * L) // n)  # ceil((i + 1) L / n)


def fractional_intervals(sample, L, n, K):
    """Start of each of the n windows of length K over a size-L axis (PyTorch's
    generate_intervals), in the sample's floating type as PyTorch computes it."""
    t = type(sample) if isinstance(sample, (np.floating,)) else np.float64
    sample = t(sample)
    seq = [0] * n
    if n > 1:
        alpha = t(L - K) / t(n - 1)
        for i in range(n - 1):
            seq[i] = int(math.floor(t(t(i) + sample) * alpha)) - int(math.floor(sample * alpha))
    if n > 0:
        seq[n - 1] = L - K
    return seq
