"""embedding on the GPU (csrc/cuda/embedding.cu): row lookup and its deterministic backward.

Same signatures, checks and return values as :mod:`pydl.kernels.reference.embedding` and
the CPU binding. Indices may be CuPy (or NumPy, copied over) arrays of any integer dtype.
"""
import numpy as np

from ._common import cp, float_array, launcher, stream

OPS = ("embedding_forward", "embedding_backward")


def _indices(op, indices, V):
    """indices as contiguous int64 on the device; IndexError naming the first one outside [0, V)."""
    idx = indices if isinstance(indices, cp.ndarray) else cp.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got {idx.dtype}")
    idx = cp.ascontiguousarray(idx, dtype=cp.int64).reshape(idx.shape)  # 0-d stays 0-d
    bad = (idx < 0) | (idx >= V)
    if bool(bad.any()):  # one host synchronisation: bad input raises, as on the CPU
        flat = int(cp.flatnonzero(bad)[0])
        pos = [int(i) for i in np.unravel_index(flat, idx.shape)] if idx.ndim else []
        raise IndexError(f"{op}: index {int(idx.reshape(-1)[flat])} out of range for num_embeddings {V} "
                         f"(at indices[{', '.join(map(str, pos))}])")
    return idx


def _padding(op, padding_idx, V):
    if padding_idx is None:
        return -1
    p = int(padding_idx)
    if not -V <= p < V:
        raise ValueError(f"{op}: padding_idx {p} must be within num_embeddings {V}")
    return p + V if p < 0 else p


def embedding_forward(weight, indices, padding_idx=None):
    """Rows of weight picked by indices: (V, E), (*) integers in [0, V) -> (*, E)."""
    op = "embedding_forward"
    float_array(weight, op, "weight")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must have 2 dimensions (num_embeddings, embedding_dim), "
                         f"got shape {tuple(weight.shape)}")
    V, E = weight.shape
    _padding(op, padding_idx, V)
    idx = _indices(op, indices, V)
    w = cp.ascontiguousarray(weight)
    out = cp.empty(idx.shape + (E,), w.dtype)
    if out.size:
        launcher("embedding_forward", w.dtype)(w.data.ptr, idx.data.ptr, idx.size, E, out.data.ptr, stream())
    return out


def embedding_backward(grad_out, indices, num_embeddings, padding_idx=None):
    """Gradient of the table: grad_out (*, E), indices (*) -> grad_weight (V, E).

    Repeated indices add up in position order (the CPU's bits); the padding_idx row gets 0.
    """
    op = "embedding_backward"
    float_array(grad_out, op, "grad_out")
    V = int(num_embeddings)
    if V < 0:
        raise ValueError(f"{op}: num_embeddings must be >= 0, got {V}")
    idx = indices if isinstance(indices, cp.ndarray) else cp.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got {idx.dtype}")
    if grad_out.ndim != idx.ndim + 1 or tuple(grad_out.shape[:-1]) != tuple(idx.shape):
        raise ValueError(f"{op}: grad_out must have shape indices.shape + (embedding_dim,) = {tuple(idx.shape)} "
                         f"+ (E,), got {tuple(grad_out.shape)}")
    padding = _padding(op, padding_idx, V)
    idx = _indices(op, idx, V).reshape(-1)
    E, N = grad_out.shape[-1], idx.size
    g = cp.ascontiguousarray(grad_out)
    grad = cp.empty((V, E), g.dtype)
    if V * E == 0:
        return grad
    if N > 0 and V > (2**63 - 1) // max(N, 1):
        raise ValueError(f"{op}: {V} rows x {N} positions overflow the int64 sort keys")
    # Positions sorted by row, increasing within a row (unique keys: any sort gives this
    # order), and each row's bucket start.
    keys = cp.sort(idx * max(N, 1) + cp.arange(N, dtype=cp.int64))
    order = cp.ascontiguousarray(keys % max(N, 1))
    start = cp.ascontiguousarray(cp.searchsorted(keys // max(N, 1), cp.arange(V + 1, dtype=cp.int64)),
                                 dtype=cp.int64)
    launcher("embedding_backward", g.dtype)(g.data.ptr, order.data.ptr, start.data.ptr, V, E, padding,
                                            grad.data.ptr, stream())
    return grad
