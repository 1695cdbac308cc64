"""linear, embedding, dropout, one_hot."""
import numpy as np

from ... import random as _random
from ..._device import add_at, array_module, asarray_on, check_same_device
from ..._ops.linalg import _kernels, gemm_grads
from ..._ops.pointwise import mul
from ...autograd.function import Node
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make

__all__ = ["dropout", "embedding", "linear", "one_hot"]


class LinearBackward(Node):
    """y = x W^T + b: dL/dx = G W, dL/dW = G^T x (the seeds' matmul rule, through
    gemm_backward), and dL/db = the sum of G over the batch (b was broadcast: copy gate)."""

    def __init__(self, edges, x2, w, x_shape):
        self.next_edges = edges
        self.x2, self.w, self.x_shape = x2, w, x_shape

    def backward(self, grad):
        ex, ew, eb = self.next_edges
        g = grad.reshape(-1, grad.shape[-1]) if grad.ndim != 2 else grad
        gx, gw = gemm_grads(g, self.x2, self.w, ex is not None, ew is not None, trans_b=True)
        if gx is not None and gx.shape != self.x_shape:
            gx = gx.reshape(self.x_shape)
        gb = None
        if eb is not None:
            gb = g.sum(axis=0)
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``y = x W^T + b``: (*, in) x (out, in) [+ (out,)] -> (*, out).

    One gemm call computes the product and adds the bias (as gemm's C with beta = 1);
    leading dimensions of x are folded into the batch.

    >>> F = pydl.nn.functional
    >>> F.linear(pydl.ones(1, 2), pydl.tensor([[1.0, 2.0]]), pydl.tensor([0.5]))
    tensor([[3.5000]])
    """
    x, w = input.data, weight.data
    if x.__class__ is not w.__class__ or bias is not None and bias.data.__class__ is not x.__class__:
        check_same_device("linear", x, w, None if bias is None else bias.data)
    if x.ndim == 0:
        raise RuntimeError("linear: input must have at least 1 dimension")
    if w.ndim != 2:
        if w.ndim == 1:  # PyTorch allows a 1-D weight: a dot product
            out = input @ weight
            return out + bias if bias is not None else out
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(w.shape)}")
    if x.shape[-1] != w.shape[1]:
        raise RuntimeError(f"linear: input has {x.shape[-1]} features (shape {tuple(x.shape)}) but weight expects "
                           f"{w.shape[1]} (weight shape {tuple(w.shape)})")
    if x.dtype != w.dtype or x.dtype.kind != "f" or x.dtype.itemsize < 4:
        if x.dtype.kind != "f" or w.dtype.kind != "f":
            raise RuntimeError(f"linear: expected floating point input and weight, got {x.dtype} and {w.dtype}")
        dt = np.result_type(x.dtype, w.dtype, np.float32)
        return linear(input.to(dt), weight.to(dt), bias.to(dt) if bias is not None else None)
    x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
    gemm = _kernels(x2)[0]
    if bias is not None:
        b = bias.data
        if b.dtype != x.dtype:
            b = b.astype(x.dtype)
        out = gemm(x2, w, b, trans_b=True, beta=1.0)
    else:
        out = gemm(x2, w, trans_b=True)
    if x.ndim != 2:
        out = out.reshape(x.shape[:-1] + (w.shape[0],))
    brg = bias is not None and bias.requires_grad
    if GradMode.enabled and (input.requires_grad or weight.requires_grad or brg):
        edges = (input.grad_fn or (input if input.requires_grad else None),
                 weight.grad_fn or (weight if weight.requires_grad else None),
                 (bias.grad_fn or bias) if brg else None)
        return _make(out, LinearBackward(edges, x2, w, x.shape))
    return _make(out)


class EmbeddingBackward(Node):
    """Rows looked up several times add up their gradients (scatter-add); the padding
    row gets none."""

    def __init__(self, edges, idx, num, padding_idx, scale):
        self.next_edges = edges
        self.idx, self.num, self.padding_idx, self.scale = idx, num, padding_idx, scale

    def backward(self, grad):
        D = grad.shape[-1]
        flat = self.idx.reshape(-1)
        g = grad.reshape(-1, D)
        if self.scale is not None:
            g = g * self.scale.reshape(-1, 1)
        if g.__class__ is np.ndarray and g.dtype in (np.float32, np.float64):
            # the C++ scatter-add (counting sort, deterministic): 8-80x np.add.at from 256 x 128 tables up
            from ...kernels import cpu as _cpu_kernels
            return (_cpu_kernels.embedding_backward(np.ascontiguousarray(g), flat, self.num, self.padding_idx),)
        gw = array_module(g).zeros((self.num, D), dtype=grad.dtype)
        add_at(gw, flat, g)
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return (gw,)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` (num_embeddings, D) at the integer indices ``input`` (*) -> (*, D)."""
    idx = input.data if isinstance(input, Tensor) else asarray_on(weight.data, input)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: expected integer indices (Long or Int), got {idx.dtype}")
    check_same_device("embedding", weight.data, idx)
    num = weight.shape[0]
    if idx.size and (idx.min() < -num or idx.max() >= num):
        raise IndexError(f"embedding: index out of range: indices must be in [0, {num}), got "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += num
    if max_norm is not None:  # renormalise the looked-up rows in place, like PyTorch
        rows = np.unique(idx)
        w = weight.data
        norms = np.linalg.norm(w[rows], ord=norm_type, axis=1, keepdims=True)
        factor = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        w[rows] = w[rows] * factor
    out = weight.data[idx]
    if GradMode.enabled and weight.requires_grad:
        scale = None
        if scale_grad_by_freq:
            uniq, inv, counts = np.unique(idx.reshape(-1), return_inverse=True, return_counts=True)
            scale = (1.0 / counts[inv]).astype(weight.dtype)
        return _make(out, EmbeddingBackward((weight.grad_fn or weight,), np.where(idx < 0, idx + num, idx), num,
                                            padding_idx, scale))
    return _make(out)


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout: zero each element with probability p and scale the survivors by
    1 / (1 - p), so that nothing changes at test time (``training=False`` is identity)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    x = input.data
    if p == 1.0:
        mask = np.zeros_like(x)
    else:
        dt = np.float32 if x.dtype == np.float32 else np.float64
        if x.__class__ is np.ndarray:
            keep = _random.default_generator().random(x.shape, dtype=dt)
        else:  # a GPU tensor: drawn on the GPU by the generator manual_seed seeds
            keep = _random.cuda_generator().random_sample(x.shape, dtype=dt)
        mask = (keep >= p).astype(x.dtype)
        mask *= 1.0 / (1.0 - p)
    return mul(input, mask)  # the mul gate: the gradient is masked and scaled the same way


def one_hot(tensor, num_classes=-1):
    """(*) integer classes -> (*, num_classes) int64 one-hot."""
    idx = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if idx.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor")
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise RuntimeError("one_hot: class values must be in [0, num_classes)")
    if idx.__class__ is not np.ndarray:  # GPU: a comparison with the class numbers
        return _make((idx[..., None] == array_module(idx).arange(num_classes)).astype(np.int64))
    out = np.zeros(idx.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, idx[..., None].astype(np.int64), 1, axis=-1)
    return _make(out)
