"""Pointwise pieces of a training step: ReLU (the max gate with 0), the in-place add that
sums gradients reaching one node along several paths (the copy gate), and one SGD update.

All operands of one call have the same shape (no broadcasting). The in-place functions
(``add_``, ``sgd_step_``) update their first argument (and the momentum buffer) and return
it, so that the reference can be run on float64 copies of what the kernel updates.
"""
import numpy as np


def relu_forward(input):
    """``max(x, 0)`` elementwise; NaN stays NaN (as PyTorch's relu): any shape -> same shape.

    >>> relu_forward(np.array([-1.0, 0.0, 2.0, np.nan]))
    array([ 0.,  0.,  2., nan])
    """
    x = np.asarray(input, dtype=np.float64)
    return np.where(x < 0, 0.0, x)


def relu_backward(grad_out, output):
    """Gradient of relu from its output: the upstream gradient where the input won
    (output > 0), else 0 (PyTorch's threshold_backward). grad_out, output: same shape.

    >>> relu_backward(np.array([5.0, 5.0, 5.0]), np.array([0.0, 1.0, 3.0]))
    array([0., 5., 5.])
    """
    g = np.asarray(grad_out, dtype=np.float64)
    y = np.asarray(output, dtype=np.float64)
    if g.shape != y.shape:
        raise ValueError(f"relu_backward: grad_out and output must have the same shape, got {g.shape} and {y.shape}")
    return np.where(y > 0, g, 0.0)


def add_(dst, src):
    """``dst += src`` in place (same shape and dtype); returns ``dst``.

    >>> a = np.array([1.0, 2.0]); add_(a, np.array([0.5, 0.5])); a
    array([1.5, 2.5])
    array([1.5, 2.5])
    """
    if dst.shape != np.shape(src):
        raise ValueError(f"add_: dst and src must have the same shape, got {dst.shape} and {np.shape(src)}")
    dst += src
    return dst


def sgd_step_(param, grad, momentum_buffer, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
              maximize=False):
    """One update of PyTorch's SGD, in place on ``param`` and ``momentum_buffer``::

        g = -grad if maximize else grad;   g = g + weight_decay * param
        b = momentum * b + (1 - dampening) * g;   g = g + momentum * b if nesterov else b
        param -= lr * g

    ``momentum_buffer`` is None when momentum is 0 (then g is used as is); the first step of
    torch.optim.SGD, which sets b = g, is the caller's (it creates the buffer). Returns param.

    >>> p, b = np.array([1.0]), np.array([1.0])
    >>> sgd_step_(p, np.array([1.0]), b, lr=0.1, momentum=0.9); b
    array([0.81])
    array([1.9])
    """
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("sgd_step_: nesterov needs a momentum > 0 and zero dampening")
    d = -grad if maximize else grad
    if weight_decay != 0:
        d = d + weight_decay * param
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += (1 - dampening) * d
        d = d + momentum * momentum_buffer if nesterov else momentum_buffer
    elif momentum != 0:
        raise ValueError(f"sgd_step_: momentum {momentum} needs a momentum_buffer (None given)")
    param -= lr * d
    return param
