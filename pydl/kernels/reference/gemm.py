"""gemm: C = alpha * op(A) @ op(B) + beta * C, and its backward (the seeds' matmul backprop)."""
import numpy as np


def _op(x, trans):
    return np.swapaxes(x, -1, -2) if trans else x


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """``alpha * op(a) @ op(b) + beta * c`` in float64.

    a: (M, K) or (B, M, K) [(K, M) when trans_a]; b: (K, N) or (B, K, N) [(N, K) when
    trans_b]; c broadcasts to (M, N) / (B, M, N). Returns float64 (M, N) or (B, M, N).

    >>> gemm([[1.0, 2.0]], [[3.0], [4.0]])
    array([[11.]])
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    op_a, op_b = _op(a, trans_a), _op(b, trans_b)
    if op_a.shape[-1] != op_b.shape[-2]:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is {op_a.shape}, op(b) is {op_b.shape}")
    # C[i, j] = sum_p A[i, p] B[p, j]
    out = alpha * np.einsum("...ip,...pj->...ij", op_a, op_b)
    if c is not None and beta != 0.0:
        out = out + beta * np.asarray(c, dtype=np.float64)
    return out


def gemm_backward(grad_out, a, b, *, trans_a=False, trans_b=False, alpha=1.0):
    """Gradients of ``gemm(a, b, ...)`` given dL/dC; shapes of a and b.

    With Y = X W: dL/dX = dL/dY W^T and dL/dW = X^T dL/dY (the seeds' rule); a shared
    (2-D) operand of a batched product sums its gradient over the batch.

    >>> ga, gb = gemm_backward([[1.0]], [[1.0, 2.0]], [[3.0], [4.0]])
    >>> ga, gb.ravel()
    (array([[3., 4.]]), array([1., 2.]))
    """
    g = np.asarray(grad_out, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    op_a, op_b = _op(a, trans_a), _op(b, trans_b)
    d_op_a = alpha * g @ np.swapaxes(op_b, -1, -2)
    d_op_b = alpha * np.swapaxes(op_a, -1, -2) @ g
    grad_a, grad_b = _op(d_op_a, trans_a), _op(d_op_b, trans_b)
    if grad_a.ndim > a.ndim:
        grad_a = grad_a.sum(axis=0)
    elif grad_a.shape != a.shape:
        grad_a = grad_a.sum(axis=0, keepdims=True)
    if grad_b.ndim > b.ndim:
        grad_b = grad_b.sum(axis=0)
    elif grad_b.shape != b.shape:
        grad_b = grad_b.sum(axis=0, keepdims=True)
    return grad_a, grad_b
