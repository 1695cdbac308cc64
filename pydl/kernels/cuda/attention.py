"""Fused scaled dot-product attention on the GPU (csrc/cuda/attention.cu).

Same signatures and results as :mod:`pydl.kernels.reference.attention`: ``(out, lse)``
from the forward, ``(grad_q, grad_k, grad_v)`` from the backward, which recomputes the
probabilities tile by tile from ``lse``. Masks are handled as the CPU binding does: a
boolean mask becomes an additive 0 / -inf one of its own (unbroadcast) shape, and
broadcasting is done with zero strides and a per-head offset, never by expanding it.
"""
import math

import numpy as np

from ..reference.attention import check_shapes
from ._common import cp, float_array, launcher, stream

OPS = ("attention_forward", "attention_backward")


def _operands(op, q, k, v):
    """q, k, v checked and contiguous, with (lead, BH, L, S, D, Dv)."""
    for name, x in (("query", q), ("key", k), ("value", v)):
        float_array(x, op, name)
        if x.dtype != q.dtype:
            raise TypeError(f"{op}: query and {name} must have the same dtype, got {q.dtype} and {x.dtype}")
    check_shapes(op, q, k, v)
    lead = q.shape[:-2]
    dims = (math.prod(lead), q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1])
    return [cp.ascontiguousarray(x) for x in (q, k, v)], lead, dims


def _mask(op, attn_mask, lead, L, S, dtype):
    """(additive mask, per-head offsets (BH,) int64, L stride, S stride) on the device, or Nones."""
    BH = math.prod(lead)
    if attn_mask is None:
        return None, cp.zeros(max(BH, 1), dtype=cp.int64), 0, 0
    m = cp.asarray(attn_mask)
    target = tuple(lead) + (L, S)
    fits = m.ndim <= len(target) and all(have in (1, want) for have, want in zip(m.shape[::-1], target[::-1]))
    if not fits:
        raise ValueError(f"{op}: attn_mask of shape {m.shape} does not broadcast to the scores' shape "
                         f"{target} (..., L, S)")
    if m.dtype == cp.bool_:
        m = cp.where(m, 0.0, -np.inf).astype(dtype)
    elif m.dtype.kind == "f":
        m = cp.ascontiguousarray(m, dtype=dtype)
    else:
        raise TypeError(f"{op}: attn_mask must be boolean or floating point, got {m.dtype}")
    # element strides of the mask seen as a target-shaped array (0 along broadcast axes)
    nd = len(target)
    stride = [0] * nd
    s = 1
    for i in range(m.ndim):
        n = m.shape[m.ndim - 1 - i]
        if n != 1:
            stride[nd - 1 - i] = s
        s *= n
    offsets = np.zeros(max(BH, 1), dtype=np.int64)  # head bh's mask starts at offsets[bh]
    if lead and BH:
        for axis, index in enumerate(np.unravel_index(np.arange(BH), lead)):
            offsets[:BH] += index * stride[axis]
    return m, cp.asarray(offsets), stride[nd - 2], stride[nd - 1]


def _scale(scale, D):
    return 1.0 / math.sqrt(D) if scale is None else float(scale)


def attention_forward(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """Scaled dot-product attention: (..., L, D), (..., S, D), (..., S, Dv) -> (out (..., L, Dv), lse (..., L))."""
    op = "attention_forward"
    (q, k, v), lead, (BH, L, S, D, Dv) = _operands(op, q, k, v)
    mask, offsets, ls, ss = _mask(op, attn_mask, lead, L, S, q.dtype)
    out = cp.empty(lead + (L, Dv), dtype=q.dtype)
    lse = cp.empty(lead + (L,), dtype=q.dtype)
    if out.size or lse.size:
        launcher(op, q.dtype)(BH, L, S, D, Dv, q.data.ptr, k.data.ptr, v.data.ptr,
                              0 if mask is None else mask.data.ptr, offsets.data.ptr, ls, ss, bool(is_causal),
                              _scale(scale, D), out.data.ptr, lse.data.ptr, stream())
    return out, lse


def attention_backward(grad_out, q, k, v, out, lse, attn_mask=None, is_causal=False, scale=None):
    """Gradients (grad_q, grad_k, grad_v) of attention_forward, recomputed from its out and lse."""
    op = "attention_backward"
    (q, k, v), lead, (BH, L, S, D, Dv) = _operands(op, q, k, v)
    want = lead + (L, Dv)
    checked = []
    for name, x, shape in (("grad_out", grad_out, want), ("out", out, want), ("lse", lse, want[:-1])):
        float_array(x, op, name)
        if x.dtype != q.dtype:
            raise TypeError(f"{op}: query and {name} must have the same dtype, got {q.dtype} and {x.dtype}")
        if x.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape}, got {x.shape}")
        checked.append(cp.ascontiguousarray(x))
    g, out, lse = checked
    mask, offsets, ls, ss = _mask(op, attn_mask, lead, L, S, q.dtype)
    grad_q, grad_k, grad_v = cp.empty_like(q), cp.empty_like(k), cp.empty_like(v)
    if grad_q.size + grad_k.size + grad_v.size:
        delta = cp.empty(max(BH * L, 1), dtype=q.dtype)  # rowsum(dY * Y), the backward's D vector
        launcher(op, q.dtype)(BH, L, S, D, Dv, q.data.ptr, k.data.ptr, v.data.ptr,
                              0 if mask is None else mask.data.ptr, offsets.data.ptr, ls, ss, bool(is_causal),
                              _scale(scale, D), out.data.ptr, lse.data.ptr, g.data.ptr, delta.data.ptr,
                              grad_q.data.ptr, grad_k.data.ptr, grad_v.data.ptr, stream())
    return grad_q, grad_k, grad_v
