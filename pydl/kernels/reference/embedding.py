"""Embedding lookup, forward and backward (lecture 10's word vectors).

An embedding is a table of learned vectors, one row per token: the forward picks rows,
out[...] = weight[indices[...]], which is the same as multiplying a one-hot vector by the
table. Its backward is therefore sparse: the gradient of a row is the sum of the output
gradients of every position that picked it (a token used twice gets both gradients,
the seeds' "copy adds"); rows never picked get 0. The row ``padding_idx`` (if given)
gets no gradient, as in PyTorch.

Shapes: weight (V, E) with V = num_embeddings, E = embedding_dim; indices (*) integers in
[0, V); out (*, E).
"""
import numpy as np


def _indices(op, indices, V):
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got {idx.dtype}")
    bad = (idx < 0) | (idx >= V)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexError(f"{op}: index {int(idx[pos])} out of range for num_embeddings {V} "
                         f"(at indices{list(pos)})")
    return idx.astype(np.int64)


def _padding(op, padding_idx, V):
    if padding_idx is None:
        return None
    p = int(padding_idx)
    if not -V <= p < V:
        raise ValueError(f"{op}: padding_idx {p} must be within num_embeddings {V}")
    return p + V if p < 0 else p


def embedding_forward(weight, indices, padding_idx=None):
    """Rows of weight picked by indices: (V, E), (*) -> (*, E).

    padding_idx only matters in the backward (that row gets no gradient); the forward
    returns whatever the table holds there.

    >>> w = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    >>> embedding_forward(w, [[2, 1], [1, 0]]).tolist()
    [[[3.0, 4.0], [1.0, 2.0]], [[1.0, 2.0], [0.0, 0.0]]]
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"embedding_forward: weight must have 2 dimensions (num_embeddings, embedding_dim), "
                         f"got shape {w.shape}")
    _padding("embedding_forward", padding_idx, w.shape[0])
    return w[_indices("embedding_forward", indices, w.shape[0])]


def embedding_backward(grad_out, indices, num_embeddings, padding_idx=None):
    """Gradient of the table: grad_out (*, E), indices (*) -> grad_weight (V, E).

    grad_weight[v] = sum of grad_out[p] over every position p with indices[p] == v (0 for the
    padding row).

    >>> g = np.ones((3, 2))
    >>> embedding_backward(g, [1, 1, 2], 4, padding_idx=2).tolist()
    [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
    """
    op = "embedding_backward"
    V = int(num_embeddings)
    if V < 0:
        raise ValueError(f"{op}: num_embeddings must be >= 0, got {V}")
    idx = _indices(op, indices, V)
    g = np.asarray(grad_out, dtype=np.float64)
    if g.ndim != idx.ndim + 1 or g.shape[:-1] != idx.shape:
        raise ValueError(f"{op}: grad_out must have shape indices.shape + (embedding_dim,) = {idx.shape} + (E,), "
                         f"got {g.shape}")
    grad_w = np.zeros((V, g.shape[-1]))
    np.add.at(grad_w, idx.reshape(-1), g.reshape(idx.size, g.shape[-1]))  # repeated rows add up
    p = _padding(op, padding_idx, V)
    if p is not None:
        grad_w[p] = 0.0
    return grad_w
