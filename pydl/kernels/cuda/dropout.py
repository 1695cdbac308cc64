"""dropout on the GPU (csrc/cuda/dropout.cu): the caller's keep-mask applied and scaled.

Same signatures, checks and return values as :mod:`pydl.kernels.reference.dropout` and the
CPU binding: the randomness stays with the caller; the mask (bool or uint8, CuPy or NumPy)
has the input's shape or a prefix of it (dropout2d: (N, C) or (N, C, 1, 1)).
"""
import math

from ._common import cp, float_array, launcher, stream

OPS = ("dropout_forward", "dropout_backward")


def _dropout(x, p, mask, op, name):
    float_array(x, op, name)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must lie in [0, 1], got {p}")
    m = mask if isinstance(mask, cp.ndarray) else cp.asarray(mask)
    if m.dtype != cp.bool_ and m.dtype != cp.uint8:
        raise TypeError(f"{op}: mask must be bool or uint8, got {m.dtype}")
    k = 0
    while k < min(m.ndim, x.ndim) and m.shape[k] == x.shape[k]:
        k += 1
    if m.ndim > x.ndim or any(s != 1 for s in m.shape[k:]):
        raise ValueError(f"{op}: mask of shape {tuple(m.shape)} must have the input's shape {tuple(x.shape)} "
                         "or a prefix of it (e.g. (N, C) or (N, C, 1, 1) for dropout2d)")
    O, I = math.prod(x.shape[:k]), math.prod(x.shape[k:])
    m = cp.ascontiguousarray(m.view(cp.uint8) if m.dtype == cp.bool_ else m)
    xc = cp.ascontiguousarray(x)
    y = cp.empty(x.shape, x.dtype)
    if y.size:
        scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
        launcher("dropout", xc.dtype)(xc.data.ptr, m.data.ptr, y.data.ptr, O, I, scale, stream())
    return y


def dropout_forward(input, p, mask):
    """``input * (mask / (1 - p))`` (``input * 0`` when p == 1), as PyTorch multiplies."""
    return _dropout(input, p, mask, "dropout", "input")


def dropout_backward(grad_out, p, mask):
    """Gradient of dropout: the same mask and scale applied to the gradient."""
    return _dropout(grad_out, p, mask, "dropout_backward", "grad_out")
