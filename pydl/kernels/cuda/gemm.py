"""gemm on the GPU (csrc/cuda/gemm.cu): strided and batched operands read in place."""
from .._gemm_grad import gemm_backward_with
from ._common import cp, element_strides, float_array, launcher, stream

OPS = ("gemm", "gemm_backward")


def _operand(x, trans):
    """(array, batch, rows, cols, batch stride, row stride, col stride) of op(x)."""
    x, st = element_strides(x)
    o = x.ndim - 2
    r, c = (o + 1, o) if trans else (o, o + 1)
    batch = x.shape[0] if x.ndim == 3 else 1
    bs = st[0] if x.ndim == 3 and batch > 1 else 0
    return x, batch, x.shape[r], x.shape[c], bs, st[r], st[c]


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """``alpha * op(a) @ op(b) + beta * c`` on the GPU; shapes as the reference gemm."""
    float_array(a, "gemm", "a")
    float_array(b, "gemm", "b")
    if a.dtype != b.dtype:
        raise TypeError(f"gemm: a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (2, 3):
            raise ValueError(f"gemm: {name} must have 2 or 3 dimensions, got shape {x.shape}")
    a, batch_a, M, K, bs_a, rs_a, cs_a = _operand(a, trans_a)
    b, batch_b, Kb, N, bs_b, rs_b, cs_b = _operand(b, trans_b)
    if batch_a != batch_b and 1 not in (batch_a, batch_b):
        raise ValueError(f"gemm: batch sizes differ: a has {batch_a} matrices, b has {batch_b}")
    if K != Kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is {M}x{K} but op(b) is {Kb}x{N} "
                         f"(a {a.shape}, b {b.shape}, trans_a={trans_a}, trans_b={trans_b})")
    batch = max(batch_a, batch_b)
    shape = (batch, M, N) if 3 in (a.ndim, b.ndim) else (M, N)
    out = cp.empty(shape, dtype=a.dtype)
    if c is not None and beta != 0.0:
        try:
            out[...] = c
        except ValueError:
            raise ValueError(f"gemm: c of shape {c.shape} does not broadcast to the output shape {shape}") from None
    else:
        beta = 0.0
    if out.size:
        launcher("gemm", a.dtype)(batch, M, N, K, a.data.ptr, bs_a, rs_a, cs_a, b.data.ptr, bs_b, rs_b, cs_b,
               out.data.ptr, M * N, N, float(alpha), float(beta), stream())
    return out


def gemm_backward(grad_out, a, b, *, trans_a=False, trans_b=False, alpha=1.0):
    """Gradients ``(grad_a, grad_b)`` of ``gemm(a, b, trans_a=..., trans_b=..., alpha=...)``."""
    return gemm_backward_with(gemm, grad_out, a, b, trans_a, trans_b, alpha)
