"""gemm on the GPU (csrc/cuda/gemm.cu): strided and batched operands read in place.

``precision`` (keyword, default None: the full precision of the dtype) opts float32
products into the tensor cores of an sm_80+ GPU: ``"tf32"`` rounds both operands to TF32
(10-bit mantissa), ``"bf16"`` to bfloat16 (7-bit mantissa); products accumulate in
float32 and the result is float32. The rounding makes a length-K dot product of
unit-size numbers off by about ``sqrt(K) * 2**-11`` (TF32) or ``sqrt(K) * 2**-8`` (bf16)
instead of float32's ``sqrt(K) * 2**-24``, which is why it is never the default.
"""
import functools

from .._gemm_grad import gemm_backward_with
from ._common import _C_cuda, cp, element_strides, float_array, launcher, stream

PRECISIONS = (None, "tf32", "bf16")

OPS = ("gemm", "gemm_backward")


def _operand(x, trans):
    """(array, batch, rows, cols, batch stride, row stride, col stride) of op(x)."""
    x, st = element_strides(x)
    o = x.ndim - 2
    r, c = (o + 1, o) if trans else (o, o + 1)
    batch = x.shape[0] if x.ndim == 3 else 1
    bs = st[0] if x.ndim == 3 and batch > 1 else 0
    return x, batch, x.shape[r], x.shape[c], bs, st[r], st[c]


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, precision=None):
    """``alpha * op(a) @ op(b) + beta * c`` on the GPU; shapes as the reference gemm.

    (M, K) @ (K, N) -> (M, N), batched as (B, M, K) @ (B, K, N) -> (B, M, N) (a batch of 1
    or a 2-D operand broadcasts). precision: None, "tf32" or "bf16" (float32 only; see
    the module docstring).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"gemm: precision must be None, 'tf32' or 'bf16', got {precision!r}")
    float_array(a, "gemm", "a")
    float_array(b, "gemm", "b")
    if a.dtype != b.dtype:
        raise TypeError(f"gemm: a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    if precision is not None and a.dtype != cp.float32:
        raise TypeError(f"gemm: precision={precision!r} takes float32 operands, got {a.dtype}")
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
        run = launcher("gemm", a.dtype) if precision is None else getattr(_C_cuda, f"gemm_{precision}")
        run(batch, M, N, K, a.data.ptr, bs_a, rs_a, cs_a, b.data.ptr, bs_b, rs_b, cs_b,
            out.data.ptr, M * N, N, float(alpha), float(beta), stream())
    return out


def gemm_backward(grad_out, a, b, *, trans_a=False, trans_b=False, alpha=1.0, precision=None):
    """Gradients ``(grad_a, grad_b)`` of ``gemm(a, b, trans_a=..., trans_b=..., alpha=...)``,
    their products computed at ``precision`` (as :func:`gemm`)."""
    product = gemm if precision is None else functools.partial(gemm, precision=precision)
    return gemm_backward_with(product, grad_out, a, b, trans_a, trans_b, alpha)
