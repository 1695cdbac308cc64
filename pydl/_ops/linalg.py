"""Matrix multiplication through pydl's gemm kernel, and its backward.

Y = X W backpropagates as dL/dX = dL/dY W^T and dL/dW = X^T dL/dY (the seeds' rule); both
directions are gemm calls with transposes (no copies: the kernel reads transposed and
strided views in place). Only the gradients an input needs are computed.

Shapes follow ``np.matmul``: 1-D operands get a dimension added and removed again; a batch
of matrices times one matrix is folded into a single 2-D product (one big gemm instead of
many small ones); batch dimensions broadcast. Float32 and float64 run on the gemm kernel;
integer products fall back to NumPy (and have no gradient).
"""
import numpy as np

from .._device import check_same_device
from ..autograd.function import Node, sum_to_shape
from ..autograd.grad_mode import GradMode
from ..kernels import cpu as _cpu
from ..tensor import Tensor, _make

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_ndarray = np.ndarray


def _kernels(x):
    """(gemm, gemm_backward) of the backend that owns array ``x``."""
    if x.__class__ is _ndarray:
        return _cpu.gemm, _cpu.gemm_backward
    from ..kernels import cuda as _cuda  # CuPy arrays

    return _cuda.gemm, _cuda.gemm_backward


def gemm_grads(g, a, b, need_a, need_b, trans_a=False, trans_b=False):
    """(dL/da, dL/db) of ``gemm(a, b, trans_a, trans_b)``; None for the ones not needed.

    Both needed: the kernel registry's ``gemm_backward``; one needed: the one gemm call.
    """
    gemm, gemm_backward = _kernels(a)
    if g.dtype != a.dtype:
        g = g.astype(a.dtype)
    if need_a and need_b:
        return gemm_backward(g, a, b, trans_a=trans_a, trans_b=trans_b)
    ga = gb = None
    if need_a:  # dL/dop(a) = g op(b)^T, transposed back when a was given transposed
        if trans_a:
            ga = gemm(b, g, trans_a=trans_b, trans_b=True)
        else:
            ga = gemm(g, b, trans_b=not trans_b)
        if ga.ndim == 3 and a.ndim == 2:
            ga = ga.sum(axis=0)
    if need_b:  # dL/dop(b) = op(a)^T g
        if trans_b:
            gb = gemm(g, a, trans_a=True, trans_b=trans_a)
        else:
            gb = gemm(a, g, trans_a=not trans_a)
        if gb.ndim == 3 and b.ndim == 2:
            gb = gb.sum(axis=0)
    return ga, gb


class MmBackward(Node):
    """Y = A B: dL/dA = G B^T, dL/dB = A^T G, on the canonical (2-D or 3-D) operands."""

    def __init__(self, edges, a, b, out_shape, a_shape, b_shape, a_mid=None, b_mid=None):
        self.next_edges = edges
        self.a, self.b = a, b  # canonical operands given to gemm
        self.out_shape = out_shape  # the canonical output's shape
        self.a_shape, self.b_shape = a_shape, b_shape  # the inputs' shapes
        self.a_mid, self.b_mid = a_mid, b_mid  # (batch..., M, K) / (batch..., K, N) when batches broadcast

    def backward(self, grad):
        ea, eb = self.next_edges
        g = grad.reshape(self.out_shape)
        ga, gb = gemm_grads(g, self.a, self.b, ea is not None, eb is not None)
        if ga is not None and ga.shape != self.a_shape:
            ga = _restore(ga, self.a_mid, self.a_shape)
        if gb is not None and gb.shape != self.b_shape:
            gb = _restore(gb, self.b_mid, self.b_shape)
        return ga, gb


def _restore(g, mid, shape):
    """A canonical operand's gradient back in its input's shape: unfold the batch and sum
    over the batch dimensions it was broadcast along (the copy gate)."""
    if mid is not None:  # only batched operands (ndim >= 3) have one
        return sum_to_shape(g.reshape(mid), shape)
    return g.reshape(shape)


def _canonical(ad, bd):
    """Operands for one gemm call, the canonical output shape, the final output shape and
    the unfolded batch shapes of the operands (None where no batch was broadcast)."""
    if ad.ndim == 0 or bd.ndim == 0:
        raise RuntimeError("matmul: both arguments need at least 1 dimension, got 0-d")
    a1 = ad if ad.ndim >= 2 else ad.reshape(1, -1)
    b1 = bd if bd.ndim >= 2 else bd.reshape(-1, 1)
    M, K = a1.shape[-2:]
    K2, N = b1.shape[-2:]
    if K != K2:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({M}x{K} and {K2}x{N}) "
                           f"(matmul of {tuple(ad.shape)} and {tuple(bd.shape)})")
    batch_a, batch_b = a1.shape[:-2], b1.shape[:-2]
    try:
        batch = np.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise RuntimeError(f"matmul: batch dimensions {batch_a} and {batch_b} do not broadcast") from None
    final = batch + ((M,) if ad.ndim > 1 else ()) + ((N,) if bd.ndim > 1 else ())
    if not batch:
        return a1, b1, (M, N), final, None, None
    if not batch_b:  # (..., M, K) @ (K, N): fold the batch into M, one 2-D product
        a_c = a1.reshape(-1, K)
        return a_c, b1, (a_c.shape[0], N), final, None, None
    B = int(np.prod(batch))
    if batch_a:
        a_c = np.broadcast_to(a1, batch + (M, K)).reshape(B, M, K)
        a_mid = batch + (M, K) if batch_a != batch else None
    else:
        a_c, a_mid = a1, None  # one matrix shared by the whole batch
    b_c = np.broadcast_to(b1, batch + (K, N)).reshape(B, K, N)
    b_mid = batch + (K, N) if batch_b != batch else None
    return a_c, b_c, (B, M, N), final, a_mid, b_mid


def matmul(a, b):
    """Matrix product with NumPy's matmul semantics (``a @ b``).

    (M, K) @ (K, N) -> (M, N); (..., M, K) @ (..., K, N) -> (..., M, N) with broadcast
    batches; a 1-D operand is a vector.

    >>> pydl.tensor([[1.0, 2.0]]) @ pydl.tensor([[3.0], [4.0]])
    tensor([[11.]])
    """
    if not isinstance(b, Tensor):
        if isinstance(b, np.ndarray) or hasattr(b, "__cuda_array_interface__"):
            b = _make(b)
        else:
            return NotImplemented
    ad, bd = a.data, b.data
    if ad.__class__ is not bd.__class__:
        check_same_device("matmul", ad, bd)
    dt = ad.dtype
    if dt != bd.dtype or dt not in _FLOATS:
        if ad.dtype.kind in "fc" or bd.dtype.kind in "fc":
            rt = np.result_type(ad.dtype, bd.dtype)
            if rt not in _FLOATS:
                raise RuntimeError(f"matmul: unsupported dtypes {ad.dtype} and {bd.dtype}")
            return matmul(a.to(rt), b.to(rt))
        return _make(np.matmul(ad, bd))  # integers: NumPy, no gradient
    if ad.ndim == 2 and bd.ndim == 2:  # the common case, kept short
        if ad.shape[1] != bd.shape[0]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({ad.shape[0]}x{ad.shape[1]} and "
                               f"{bd.shape[0]}x{bd.shape[1]})")
        gemm = _cpu.gemm if ad.__class__ is _ndarray else _kernels(ad)[0]
        out = gemm(ad, bd)
        if GradMode.enabled and (a.requires_grad or b.requires_grad):
            return _make(out, MmBackward((a.grad_fn or (a if a.requires_grad else None),
                                          b.grad_fn or (b if b.requires_grad else None)), ad, bd, out.shape,
                                         ad.shape, bd.shape))
        return _make(out)
    a_c, b_c, out_shape, final, a_mid, b_mid = _canonical(ad, bd)
    gemm = _kernels(ad)[0]
    out = gemm(a_c, b_c).reshape(final)
    if GradMode.enabled and (a.requires_grad or b.requires_grad):
        node = MmBackward((a.grad_fn or (a if a.requires_grad else None),
                           b.grad_fn or (b if b.requires_grad else None)), a_c, b_c, out_shape,
                          ad.shape, bd.shape, a_mid, b_mid)
        return _make(out, node)
    return _make(out)


def rmatmul(a, b):
    """``b @ a`` for a NumPy (or CuPy) array b."""
    if isinstance(b, np.ndarray) or hasattr(b, "__cuda_array_interface__"):
        return matmul(_make(b), a)
    return NotImplemented


mm = matmul


def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {a.ndim}-D and {b.ndim}-D")
    return matmul(a, b)


def dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    return matmul(a, b)


def mv(a, v):
    return matmul(a, v)


def outer(a, b):
    return a.reshape(-1, 1) * b.reshape(1, -1)
