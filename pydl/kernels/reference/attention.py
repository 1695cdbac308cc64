"""Scaled dot-product attention, forward and backward (the cheat sheet's textbook version).

Every query asks every key how well it matches, turns the answers into weights with a
softmax, and takes that weighted average of the values:

    E = Q K^T * scale (+ mask)      (L, S)   scale = 1 / sqrt(D) by default
    A = softmax(E) over the keys    (L, S)   each row sums to 1
    Y = A V                         (L, Dv)

Masks follow PyTorch's ``scaled_dot_product_attention``: a boolean mask says which
(query, key) pairs take part (True = attend), a float mask is added to E; either
broadcasts to (..., L, S). ``is_causal`` lets query i see keys j <= i only (the mask
``ones(L, S).tril()``, aligned to the upper-left corner when L != S). A query that may
see no key at all (a fully masked row) gets output 0 and gradient 0, as in PyTorch.

The backward, from Y = A V and the softmax Jacobian (lecture 3):

    dV = A^T dY,   dA = dY V^T,   dE = A * (dA - rowsum(dA * A)),
    dQ = dE K * scale,   dK = dE^T Q * scale

(rowsum(dA * A) equals rowsum(dY * Y), which is what the fused kernels use.) This
version materialises the (L, S) matrices, which the fused C++ kernel never does; it is
the specification the fused kernel is tested against.
"""
import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def check_shapes(op, q, k, v):
    """The shape rules every backend checks the same way (on any array with ndim and shape):
    at least 2 dimensions, the same leading dimensions, matching feature and position counts."""
    for name, a in (("query", q), ("key", k), ("value", v)):
        if a.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dimensions (..., length, features), "
                             f"got shape {a.shape}")
    if k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2]:
        raise ValueError(f"{op}: query, key and value must have the same leading dimensions, got "
                         f"{q.shape}, {k.shape} and {v.shape}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"{op}: key has {k.shape[-1]} features but query has {q.shape[-1]}")
    if q.shape[-1] == 0:
        raise ValueError(f"{op}: query and key must have at least one feature, got shape {q.shape}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"{op}: value has {v.shape[-2]} positions but key has {k.shape[-2]}")


def _check_qkv(op, q, k, v):
    q, k, v = _f64(q), _f64(k), _f64(v)
    check_shapes(op, q, k, v)
    return q, k, v


def _scores(op, q, k, attn_mask, is_causal, scale):
    """E = Q K^T * scale with the mask applied: (..., L, S)."""
    L, S, D = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / np.sqrt(D) if scale is None else float(scale)
    E = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        try:
            fits = np.broadcast_shapes(m.shape, E.shape) == E.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: attn_mask of shape {m.shape} does not broadcast to the scores' shape "
                             f"{E.shape} (..., L, S)")
        if m.dtype == np.bool_:
            E = np.where(m, E, -np.inf)
        elif m.dtype.kind == "f":
            E = E + m.astype(np.float64)
        else:
            raise TypeError(f"{op}: attn_mask must be boolean or floating point, got {m.dtype}")
    if is_causal:
        E = np.where(np.tril(np.ones((L, S), dtype=bool)), E, -np.inf)
    return E, scale


def _softmax_rows(E):
    """softmax over the last axis and the log-sum-exp; fully masked rows give 0 and -inf."""
    M = E.max(axis=-1, keepdims=True, initial=-np.inf)
    M = np.where(M == -np.inf, 0.0, M)  # a row of -inf: exp(-inf - 0) = 0 instead of NaN
    P = np.exp(E - M)
    l = P.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        A = np.where(l > 0, P / np.where(l > 0, l, 1.0), 0.0)
        lse = (M + np.log(l))[..., 0]
    return A, lse


def attention_forward(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """Scaled dot-product attention: (..., L, D), (..., S, D), (..., S, Dv) -> ((..., L, Dv), (..., L)).

    Returns ``(out, lse)``: out = softmax(Q K^T * scale + mask) V and the log-sum-exp of each
    row of the masked scores, ``lse_i = log sum_j exp(E_ij)`` (-inf for a fully masked row,
    whose output is 0). The leading dimensions (e.g. batch and heads) must be the same for
    q, k and v; attn_mask (bool, True = attend, or float, added) broadcasts to (..., L, S).
    is_causal allows key j for query i only when j <= i (upper-left aligned when L != S); it
    may be combined with a mask.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]]); k = q.copy(); v = np.array([[1.0], [2.0]])
    >>> out, lse = attention_forward(q, k, v, scale=np.log(3.0))
    >>> out.round(4).tolist(), lse.round(4).tolist()
    ([[1.25], [1.75]], [1.3863, 1.3863])
    >>> attention_forward(q, k, v, is_causal=True)[0].tolist()
    [[1.0], [1.6697615493266569]]
    """
    q, k, v = _check_qkv("attention_forward", q, k, v)
    E, _ = _scores("attention_forward", q, k, attn_mask, is_causal, scale)
    A, lse = _softmax_rows(E)
    return np.matmul(A, v), lse


def attention_backward(grad_out, q, k, v, out, lse, attn_mask=None, is_causal=False, scale=None):
    """Gradients of attention_forward: grad_out (..., L, Dv) -> (grad_q, grad_k, grad_v).

    The textbook backward: A is recomputed from q and k (out and lse are accepted so the
    signature matches the fused kernels, which rebuild A from lse; they are only checked
    for shape here). Fully masked rows pass no gradient.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]]); k = q.copy(); v = np.array([[1.0], [2.0]])
    >>> out, lse = attention_forward(q, k, v, scale=np.log(3.0))
    >>> gq, gk, gv = attention_backward(np.ones((2, 1)), q, k, v, out, lse, scale=np.log(3.0))
    >>> gv.tolist()
    [[1.0], [1.0]]
    >>> gq.round(4).tolist()
    [[-0.206, 0.206], [-0.206, 0.206]]
    """
    op = "attention_backward"
    q, k, v = _check_qkv(op, q, k, v)
    g = _f64(grad_out)
    L, Dv = q.shape[-2], v.shape[-1]
    want = q.shape[:-2] + (L, Dv)
    if g.shape != want:
        raise ValueError(f"{op}: grad_out must have shape {want}, got {g.shape}")
    if np.shape(out) != want:
        raise ValueError(f"{op}: out must have shape {want}, got {np.shape(out)}")
    if np.shape(lse) != want[:-1]:
        raise ValueError(f"{op}: lse must have shape {want[:-1]}, got {np.shape(lse)}")
    E, scale = _scores(op, q, k, attn_mask, is_causal, scale)
    A, _ = _softmax_rows(E)
    grad_v = np.matmul(np.swapaxes(A, -1, -2), g)                      # A^T dY        (..., S, Dv)
    dA = np.matmul(g, np.swapaxes(v, -1, -2))                          # dY V^T        (..., L, S)
    dE = A * (dA - np.sum(dA * A, axis=-1, keepdims=True))             # softmax backward
    grad_q = np.matmul(dE, k) * scale                                  # (..., L, D)
    grad_k = np.matmul(np.swapaxes(dE, -1, -2), q) * scale             # (..., S, D)
    return grad_q, grad_k, grad_v
