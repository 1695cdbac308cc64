"""The C++ backend (``pydl._C``): NumPy float32 / float64 arrays in and out.

Every function has the signature of its reference twin in :mod:`pydl.kernels.reference`.
Arguments are checked in the binding (clear ``TypeError``/``ValueError`` naming the op and
the argument); the GIL is released while a kernel runs.
"""
from .. import _C
from ._gemm_grad import gemm_backward_with

OPS = ("gemm", "gemm_backward")

gemm = _C.gemm


def gemm_backward(grad_out, a, b, *, trans_a=False, trans_b=False, alpha=1.0):
    """Gradients ``(grad_a, grad_b)`` of ``gemm(a, b, trans_a=..., trans_b=..., alpha=...)``."""
    return gemm_backward_with(gemm, grad_out, a, b, trans_a, trans_b, alpha)
