"""gemm's backward, composed from any backend's gemm (the CPU and CUDA backends share it).

For C = alpha * op(A) @ op(B), with G = dL/dC (the seeds' matrix-multiply backprop):
dL/dop(A) = alpha * G @ op(B)^T and dL/dop(B) = alpha * op(A)^T @ G, transposed back when
the operand was given transposed, and summed over the batch when the operand was shared.
"""


def gemm_backward_with(gemm, grad_out, a, b, trans_a, trans_b, alpha):
    if trans_a:
        grad_a = gemm(b, grad_out, trans_a=trans_b, trans_b=True, alpha=alpha)
    else:
        grad_a = gemm(grad_out, b, trans_b=not trans_b, alpha=alpha)
    if trans_b:
        grad_b = gemm(grad_out, a, trans_a=True, trans_b=trans_a, alpha=alpha)
    else:
        grad_b = gemm(a, grad_out, trans_a=not trans_a, alpha=alpha)
    return _sum_to_batch(grad_a, a), _sum_to_batch(grad_b, b)


def _sum_to_batch(grad, operand):
    """Sum a (B, ., .) gradient over the batch an operand was broadcast along."""
    if grad.ndim == 3 and operand.ndim == 2:
        return grad.sum(axis=0)
    if grad.ndim == 3 and operand.shape[0] == 1 and grad.shape[0] != 1:
        return grad.sum(axis=0, keepdims=True)
    return grad
