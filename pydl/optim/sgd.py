"""Stochastic gradient descent, with momentum (the seeds' velocity with friction rho) and
Nesterov momentum."""
import numpy as np

from ..kernels import cpu as _cpu
from .optimizer import Optimizer, _at_least_1d, _buffer, required

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum, as PyTorch implements it.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`::

        g  <- -g                     if maximize
        g  <- g + weight_decay * theta             (L2 penalty in the gradient)
        b  <- g                      at t = 1,     momentum != 0
        b  <- momentum * b + (1 - dampening) * g    afterwards
        g  <- g + momentum * b       if nesterov,  else g <- b
        theta <- theta - lr * g

    This is the seeds' "SGD + momentum": the velocity ``v_{t+1} = rho v_t + grad f(x_t)``
    with friction ``rho`` = ``momentum`` is ``b``, and ``x_{t+1} = x_t - lr v_{t+1}``. The
    Nesterov form is the seeds' change of variables ``x~_t = x_t + rho v_t``: the step uses
    ``g + rho b`` (the gradient plus the look-ahead velocity). With ``dampening = 0`` and
    ``momentum = 0`` it is plain SGD ``theta <- theta - lr grad``.

    ``maximize`` negates the gradient before weight decay, as PyTorch's code does (its docs
    page flips the sign at the end instead; the two differ only when both are set, and the
    code's version keeps weight decay shrinking the weights).

    Args:
        params: Tensors or parameter-group dicts.
        lr (float): learning rate. Default 1e-3 (PyTorch's).
        momentum (float): momentum factor ``rho``. Default 0.
        dampening (float): dampening of the gradient entering the momentum. Default 0.
        weight_decay (float): L2 penalty. Default 0.
        nesterov (bool): Nesterov momentum (needs momentum > 0 and zero dampening).
        maximize (bool): ascend the objective instead.

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.tensor([1.0, -2.0]))
        >>> opt = pydl.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> w.grad = pydl.tensor([1.0, 1.0])
        >>> opt.step()
        >>> print(w.data.round(4))
        [ 0.9 -2.1]
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if group["nesterov"] and (momentum <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            numbers = all(isinstance(v, (int, float)) for v in (lr, momentum, dampening, weight_decay))
            for p, param, grad in self._params_with_grad(group):
                if numbers and _fusable(param, grad):
                    buf = None
                    if momentum != 0:  # the first step (buffer = gradient) stays below
                        buf = self.state[p].get("momentum_buffer")
                        buf = None if buf is None else _at_least_1d(buf)
                    if momentum == 0 or buf is not None and _fusable(buf, param):
                        _cpu.sgd_step_(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
                        continue
                d_p = -grad if maximize else grad
                if weight_decay != 0:
                    d_p = d_p + weight_decay * param
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = _buffer(state, "momentum_buffer", p, like=d_p)
                    else:
                        buf = _buffer(state, "momentum_buffer", p)
                        buf *= momentum
                        buf += d_p if dampening == 0 else (1 - dampening) * d_p
                    d_p = d_p + momentum * buf if nesterov else buf
                param -= lr * d_p
        return loss


def _fusable(array, like):
    """Whether csrc/cpu/pointwise.cpp's fused update may take ``array`` beside ``like``: the
    same float32/float64 NumPy dtype, and (it is written in place) contiguous and writable."""
    return (array.__class__ is np.ndarray and like.__class__ is np.ndarray and array.dtype.char in "fd"
            and array.dtype == like.dtype and array.flags.c_contiguous and array.flags.writeable)
