"""MoCo's machinery: the queue of negative keys and the momentum encoder.

The lecture: keep a running queue of keys (the negatives) from past batches; update the
key encoder not by gradients but as a slow moving average of the query encoder,
theta_k <- m theta_k + (1 - m) theta_q, which keeps the queued keys consistent.
MoCo v2 is the same loop with an MLP projection head and SimCLR's stronger augmentations
(:func:`pydl.ssl.simclr_augment`); the loss is :func:`pydl.ssl.moco_loss`.

One training step::

    q = head_q(enc_q(view1));  k = head_k(enc_k(view2))            # k: no gradient
    loss = moco_loss(q, k, queue.tensor()); loss.backward(); opt.step()
    momentum_update(key_model, query_model, m=0.999); queue.enqueue(k)
"""
import numpy as np

import pydl
from ..tensor import Tensor

__all__ = ["KeyQueue", "momentum_update"]


def momentum_update(key_model, query_model, m=0.999):
    """theta_k <- m theta_k + (1 - m) theta_q for every parameter (in place, no gradient).

    Buffers (BatchNorm's running statistics) are copied from the query model. The two
    models must have the same parameter names and shapes.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum_update: m must be in [0, 1], got {m}")
    q_params = dict(query_model.named_parameters())
    with pydl.no_grad():
        for name, pk in key_model.named_parameters():
            if name not in q_params or q_params[name].shape != pk.shape:
                raise ValueError(f"momentum_update: parameter {name!r} has no match of shape {pk.shape} "
                                 "in the query model")
            pk.data[...] = m * pk.data + (1.0 - m) * q_params[name].data
        q_bufs = dict(query_model.named_buffers())
        for name, bk in key_model.named_buffers():
            if name in q_bufs and bk is not None:
                bk.data[...] = q_bufs[name].data


class KeyQueue:
    """A FIFO of ``size`` keys of dimension ``dim``: ``enqueue(keys)`` replaces the oldest.

    Stored as a ring buffer (size, dim) with a pointer, as in MoCo's code; ``tensor()``
    returns the keys (no gradient). Starts filled with random unit vectors.

    >>> q = KeyQueue(4, 2)
    >>> q.enqueue(pydl.ones(3, 2)); q.ptr
    3
    """

    def __init__(self, size, dim, seed=0):
        if size < 1 or dim < 1:
            raise ValueError(f"KeyQueue: size and dim must be >= 1, got {size}, {dim}")
        rng = np.random.default_rng(seed)
        keys = rng.standard_normal((size, dim)).astype(np.float32)
        self.keys = keys / np.linalg.norm(keys, axis=1, keepdims=True)
        self.ptr = 0

    @property
    def size(self):
        return self.keys.shape[0]

    def enqueue(self, keys):
        """Write (B, dim) keys over the oldest B entries (wrapping around)."""
        k = np.asarray(keys.data if isinstance(keys, Tensor) else keys, dtype=self.keys.dtype)
        if k.ndim != 2 or k.shape[1] != self.keys.shape[1]:
            raise ValueError(f"KeyQueue.enqueue: keys must have shape (B, {self.keys.shape[1]}), got {k.shape}")
        if k.shape[0] > self.size:
            k = k[-self.size:]
        idx = (self.ptr + np.arange(k.shape[0])) % self.size
        self.keys[idx] = k
        self.ptr = int((self.ptr + k.shape[0]) % self.size)

    def tensor(self):
        return pydl.tensor(self.keys.copy())
