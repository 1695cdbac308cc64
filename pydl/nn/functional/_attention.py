"""Scaled dot-product attention with autograd, through the fused kernel.

The cheat sheet's attention layer: E = Q K^T * scale (scale = 1 / sqrt(D) by default),
A = softmax(E + mask) over the keys, Y = A V. The forward kernel returns Y and the
log-sum-exp of each row of E; the node keeps Q, K, V, Y and the log-sum-exp, and the
backward kernel rebuilds A tile by tile from them (no (L, S) matrix is kept between the
passes: O(L + S) extra memory per head).

``dropout_p > 0`` (training) needs the attention matrix itself, which the fused kernel
never forms: that case takes the unfused path, written with the textbook ops (matmul,
softmax, dropout) and differentiated by the elementary ops' autograd.
"""
import math

import numpy as np

from ..._device import array_module, check_same_device
from ...autograd.function import Node, sum_to_shape
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make
from ._dispatch import as_float, edge, kernel, tensor_arg

__all__ = ["scaled_dot_product_attention"]


class ScaledDotProductAttentionBackward(Node):
    """dQ, dK, dV from the fused backward kernel; gradients of broadcast inputs summed back."""

    def __init__(self, edges, q, k, v, out, lse, mask, is_causal, scale, shapes):
        self.next_edges = edges
        self.q, self.k, self.v, self.out, self.lse = q, k, v, out, lse
        self.mask, self.is_causal, self.scale, self.shapes = mask, is_causal, scale, shapes

    def name(self):
        return "ScaledDotProductFlashAttentionBackward0"

    def backward(self, grad):
        q = self.q
        g = grad if grad.dtype == q.dtype else grad.astype(q.dtype)
        gq, gk, gv = kernel("attention_backward", q)(array_module(g).ascontiguousarray(g), q, self.k, self.v, self.out, self.lse,
                                                     self.mask, self.is_causal, self.scale)
        grads = []
        for e, gr, shape in zip(self.next_edges, (gq, gk, gv), self.shapes):
            grads.append(None if e is None else sum_to_shape(gr, shape))
        return tuple(grads)


def _mask_array(op, attn_mask, dtype, L, S):
    if attn_mask is None:
        return None
    m = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
    if m.dtype != np.bool_ and m.dtype.kind != "f":
        raise TypeError(f"{op}: attn_mask must be bool or floating point, got {m.dtype}")
    if m.ndim < 2 or m.shape[-2] not in (1, L) or m.shape[-1] not in (1, S):
        raise ValueError(f"{op}: attn_mask must broadcast to (..., {L}, {S}), got {tuple(m.shape)}")
    if m.dtype.kind == "f" and m.dtype != dtype:
        m = m.astype(dtype)
    return m


def _unfused(query, key, value, attn_mask, dropout_p, is_causal, scale):
    """The textbook path (used for dropout on the attention weights)."""
    from ._activation import softmax
    from ._linear import dropout

    L, S = query.shape[-2], key.shape[-2]
    scores = (query @ key.transpose(-2, -1)) * scale
    xp = array_module(scores.data)
    bias = xp.zeros((L, S), dtype=scores.dtype)
    if is_causal:
        bias = np.where(np.tril(xp.ones((L, S), dtype=bool)), bias, -np.inf).astype(scores.dtype)
    if attn_mask is not None:
        m = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
        bias = np.where(m, bias, -np.inf) if m.dtype == np.bool_ else bias + m
    scores = scores + _make(bias.astype(scores.dtype, copy=False))
    attn = softmax(scores, dim=-1)
    attn = _make(np.nan_to_num(attn.data)) if not attn.requires_grad else attn
    attn = dropout(attn, dropout_p, training=True)
    return attn @ value


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(Q K^T * scale + mask) V: (..., L, D), (..., S, D), (..., S, Dv) -> (..., L, Dv).

    PyTorch's semantics: ``scale`` defaults to 1 / sqrt(D); ``attn_mask`` is boolean (True =
    may attend) or floating (added to the scores) and broadcasts to (..., L, S); the leading
    dimensions of query, key and value broadcast against each other; ``is_causal`` lets
    query i see keys j <= i (a row with no visible key gives zeros). ``dropout_p`` > 0 drops
    attention weights (always applied when given, like PyTorch: pass 0.0 in eval mode); it
    runs the unfused path.

    >>> F = pydl.nn.functional
    >>> q = pydl.tensor([[[1.0, 0.0], [0.0, 1.0]]]); v = pydl.tensor([[[1.0], [2.0]]])
    >>> F.scaled_dot_product_attention(q, q, v, is_causal=True)
    tensor([[[1.0000],
             [1.6698]]])
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        tensor_arg(t, op, name)
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dimensions (..., L, D), got {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{op}: query and key must have the same last dimension, got {query.shape[-1]} "
                         f"and {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: key and value must have the same length S, got {key.shape[-2]} and "
                         f"{value.shape[-2]}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass either attn_mask or is_causal, not both (like PyTorch)")
    D = query.shape[-1]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    if dropout_p > 0.0:
        return _unfused(query, key, value, attn_mask, dropout_p, is_causal, scale)
    q, k, v = as_float(op, query, key, value)
    L, S = q.shape[-2], k.shape[-2]
    mask = _mask_array(op, attn_mask, q.dtype, L, S)
    try:
        lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2],
                                   () if mask is None else mask.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: leading dimensions of query {tuple(q.shape)}, key {tuple(k.shape)}, value "
                         f"{tuple(v.shape)} do not broadcast") from None
    shapes = (q.shape, k.shape, v.shape)
    xp = array_module(q)
    if mask is not None and mask.__class__ is not q.__class__:
        check_same_device(op, q, mask)
    q = xp.ascontiguousarray(np.broadcast_to(q, lead + q.shape[-2:]))
    k = xp.ascontiguousarray(np.broadcast_to(k, lead + k.shape[-2:]))
    v = xp.ascontiguousarray(np.broadcast_to(v, lead + v.shape[-2:]))
    out, lse = kernel("attention_forward", q)(q, k, v, mask, bool(is_causal), scale)
    if GradMode.enabled and (query.requires_grad or key.requires_grad or value.requires_grad):
        edges = (edge(query), edge(key), edge(value))
        return _make(out, ScaledDotProductAttentionBackward(edges, q, k, v, out, lse, mask, bool(is_causal), scale,
                                                           shapes))
    return _make(out)
