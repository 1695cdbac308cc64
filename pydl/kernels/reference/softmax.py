"""softmax and log_softmax over the last axis, and their backward (lecture 3's softmax).

softmax turns scores into probabilities, ``p_c = exp(x_c) / sum_k exp(x_k)``. Computed
as written, ``exp(1000)`` overflows; softmax does not change when every score of a row
moves by the same amount, so the textbook subtracts the row max m first: every exponent
is then <= 0 and the largest is exactly 1, and the sum lies in [1, C]. log_softmax uses
the same shift (the log-sum-exp trick): ``log p_c = (x_c - m) - log sum_k exp(x_k - m)``.
"""
import numpy as np


def _rows(x, op):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError(f"{op}: x must have at least 1 dimension, got a 0-d array")
    return x


def softmax_forward(x):
    """softmax over the last axis: (..., C) -> (..., C), in float64.

    y_c = exp(x_c - m) / sum_k exp(x_k - m), m = max_k x_k. A row holding NaN or +inf
    becomes NaN (as in PyTorch); -inf entries get probability 0.

    >>> softmax_forward([[1.0, 2.0, 3.0], [1e4, 1e4, -1e4]]).round(4)
    array([[0.09  , 0.2447, 0.6652],
           [0.5   , 0.5   , 0.    ]])
    """
    x = _rows(x, "softmax")
    with np.errstate(invalid="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True, initial=-np.inf)  # every exponent <= 0: no overflow
        e = np.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(grad_y, y):
    """grad_x of softmax from its output y: (..., C), (..., C) -> (..., C).

    The Jacobian is dy_i/dx_j = y_i ([i == j] - y_j), so
    grad_x_j = sum_i grad_y_i y_i ([i == j] - y_j) = y_j (grad_y_j - sum_i grad_y_i y_i).

    >>> softmax_backward([[1.0, 0.0]], [[0.5, 0.5]])
    array([[ 0.25, -0.25]])
    """
    g = np.asarray(grad_y, dtype=np.float64)
    y = _rows(y, "softmax_backward")
    if g.shape != y.shape:
        raise ValueError(f"softmax_backward: grad_y must have the shape of y {y.shape}, got {g.shape}")
    return y * (g - np.sum(g * y, axis=-1, keepdims=True))


def log_softmax_forward(x):
    """log_softmax over the last axis: (..., C) -> (..., C), in float64.

    y_c = (x_c - m) - log sum_k exp(x_k - m), the log-sum-exp trick.

    >>> log_softmax_forward([[0.0, 0.0], [1e4, -1e4]]).round(4).tolist()
    [[-0.6931, -0.6931], [0.0, -20000.0]]
    """
    x = _rows(x, "log_softmax")
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty row: log 0
        shifted = x - x.max(axis=-1, keepdims=True, initial=-np.inf)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_backward(grad_y, y):
    """grad_x of log_softmax from its output y: (..., C), (..., C) -> (..., C).

    dy_i/dx_j = [i == j] - p_j with p = exp(y), so grad_x_j = grad_y_j - p_j sum_i grad_y_i.

    >>> log_softmax_backward([[1.0, 0.0]], np.log([[0.5, 0.5]]))
    array([[ 0.5, -0.5]])
    """
    g = np.asarray(grad_y, dtype=np.float64)
    y = _rows(y, "log_softmax_backward")
    if g.shape != y.shape:
        raise ValueError(f"log_softmax_backward: grad_y must have the shape of y {y.shape}, got {g.shape}")
    return g - np.exp(y) * np.sum(g, axis=-1, keepdims=True)
