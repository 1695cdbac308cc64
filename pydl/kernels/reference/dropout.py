"""Dropout (inverted): zero each unit with probability p at training time and scale the
survivors by 1 / (1 - p), so that nothing changes at test time (the seeds' trick).

The randomness stays with the caller (pydl's generator lives in Python): the kernel takes
the keep-mask it drew, bool or uint8 (non-zero = keep). The mask has the input's shape,
or a prefix of it (trailing size-1 axes allowed), which it broadcasts over: a (N, C) or
(N, C, 1, 1) mask over an (N, C, H, W) input is dropout2d, dropping whole channels.
"""
import numpy as np


def _scale(op, p):
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must lie in [0, 1], got {p}")
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)


def _broadcast_mask(op, mask, shape):
    """The 0/1 mask reshaped to broadcast over ``shape``: its axes must match a prefix of
    ``shape`` and any after that must be 1."""
    m = np.asarray(mask)
    if m.dtype != np.bool_ and m.dtype != np.uint8:
        raise TypeError(f"{op}: mask must be bool or uint8, got {m.dtype}")
    k = 0
    while k < min(m.ndim, len(shape)) and m.shape[k] == shape[k]:
        k += 1
    if m.ndim > len(shape) or any(s != 1 for s in m.shape[k:]):
        raise ValueError(f"{op}: mask of shape {m.shape} must have the input's shape {tuple(shape)} or a prefix "
                         "of it (e.g. (N, C) or (N, C, 1, 1) for dropout2d)")
    return (m != 0).astype(np.float64).reshape(m.shape[:k] + (1,) * (len(shape) - k))


def dropout_forward(input, p, mask):
    """``input * (mask / (1 - p))`` (``input * 0`` when p == 1), as PyTorch multiplies.

    input: any shape; mask: bool/uint8 of the input's shape or a prefix of it (dropout2d:
    (N, C)). Returns float64 of the input's shape.

    >>> dropout_forward(np.array([1.0, 2.0, 3.0, 4.0]), 0.5, np.array([1, 0, 0, 1], dtype=np.uint8))
    array([2., 0., 0., 8.])
    """
    op = "dropout"
    x = np.asarray(input, dtype=np.float64)
    m = _broadcast_mask(op, mask, x.shape)
    return x * (m * _scale(op, p))  # x * 0 keeps NaN and -0, as PyTorch's multiply does


def dropout_backward(grad_out, p, mask):
    """Gradient of dropout: the same mask and scale applied to the gradient.

    >>> dropout_backward(np.ones(4), 0.5, np.array([1, 0, 0, 1], dtype=bool))
    array([2., 0., 0., 2.])
    """
    op = "dropout_backward"
    g = np.asarray(grad_out, dtype=np.float64)
    m = _broadcast_mask(op, mask, g.shape)
    return g * (m * _scale(op, p))
