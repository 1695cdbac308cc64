"""Adam (momentum + RMSprop + bias correction) and AdamW (Adam with decoupled weight decay)."""
import math

import numpy as np

from .optimizer import Optimizer, _buffer

__all__ = ["Adam", "AdamW"]


def _check_adam_group(group):
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: expected a pair (beta1, beta2), got {betas!r}")
    lr, eps, (beta1, beta2), weight_decay = group["lr"], group["eps"], betas, group["weight_decay"]
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= beta1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
    if not 0.0 <= beta2 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _adam_step(opt, group, decoupled):
    """One Adam/AdamW update of the parameters of ``group`` (PyTorch's single-tensor code)."""
    lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
    weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
    for p, param, grad in opt._params_with_grad(group):
        state = opt.state[p]
        exp_avg, exp_avg_sq = _buffer(state, "exp_avg", p), _buffer(state, "exp_avg_sq", p)
        if amsgrad:
            max_sq = _buffer(state, "max_exp_avg_sq", p)
        step = state["step"] = state.get("step", 0) + 1
        g = -grad if maximize else grad
        if weight_decay != 0:
            if decoupled:
                param *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * param
        tmp = (1 - beta1) * g
        exp_avg *= beta1
        exp_avg += tmp
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += tmp

        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        step_size = lr / bias_correction1
        if amsgrad:
            np.maximum(max_sq, exp_avg_sq, out=max_sq)
            second = max_sq
        else:
            second = exp_avg_sq
        denom = np.sqrt(second, out=tmp)
        denom /= bias_correction2_sqrt
        denom += eps
        np.divide(exp_avg, denom, out=denom)
        denom *= step_size
        param -= denom


class Adam(Optimizer):
    r"""Adam, as PyTorch implements it.

    For each parameter, at step ``t`` (from 1)::

        g     <- -g                                     if maximize
        g     <- g + weight_decay * theta               (L2 penalty, coupled: enters the moments)
        m     <- beta1 * m + (1 - beta1) * g            first moment (momentum)
        v     <- beta2 * v + (1 - beta2) * g * g        second moment (RMSprop)
        v_max <- max(v_max, v)                          if amsgrad, and v_max replaces v below
        theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    This is the seeds' Adam, "RMSProp + Momentum + Bias correction": ``first_unbias =
    first_moment / (1 - beta1 ** t)``, ``second_unbias = second_moment / (1 - beta2 ** t)``,
    ``x -= lr * first_unbias / (sqrt(second_unbias) + eps)``; the bias correction stops
    the zero-initialised moments from making the first steps huge. With amsgrad the running
    maximum is taken over the raw second moment and then bias-corrected, as PyTorch's code does.

    Args:
        params: Tensors or parameter-group dicts.
        lr (float): learning rate. Default 1e-3.
        betas (tuple): ``(beta1, beta2)``, each in [0, 1). Default (0.9, 0.999).
        eps (float): added to the denominator. Default 1e-8.
        weight_decay (float): L2 penalty (added to the gradient). Default 0. For decoupled
            weight decay use :class:`AdamW`.
        amsgrad (bool): use the running maximum of the second moment. Default False.
        maximize (bool): ascend the objective instead.

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.tensor([1.0, 1.0]))
        >>> opt = pydl.optim.Adam([w], lr=0.1)
        >>> w.grad = pydl.tensor([5.0, -0.01])
        >>> opt.step()  # the first step moves every element by about lr
        >>> print(w.data.round(4))
        [0.9 1.1]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *, maximize=False):
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_group(group)

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            _adam_step(self, group, decoupled=False)
        return loss


class AdamW(Optimizer):
    r"""AdamW: Adam with decoupled weight decay, as PyTorch implements it.

    Identical to :class:`Adam` except for the weight decay, which shrinks the weights
    directly instead of entering the gradient (and so the moments)::

        theta <- theta * (1 - lr * weight_decay)
        m, v (and v_max) as in Adam, from the plain gradient
        theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The seeds: "L2 regularization and weight decay are the same when using SGD, but
    different for Adam"; AdamW ("the go-to optimizer") keeps the decay out of the adaptive
    scaling, so every weight decays at the same rate whatever its gradient history.

    Args:
        params: Tensors or parameter-group dicts.
        lr (float): learning rate. Default 1e-3.
        betas (tuple): ``(beta1, beta2)``, each in [0, 1). Default (0.9, 0.999).
        eps (float): added to the denominator. Default 1e-8.
        weight_decay (float): decoupled weight decay. Default 1e-2.
        amsgrad (bool): use the running maximum of the second moment. Default False.
        maximize (bool): ascend the objective instead.

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.tensor([1.0]))
        >>> opt = pydl.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.grad = pydl.tensor([0.0])
        >>> opt.step()  # no gradient signal: only the decay, 1 * (1 - 0.1 * 0.5)
        >>> print(w.data.round(4))
        [0.95]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_adam_group(group)

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            _adam_step(self, group, decoupled=True)
        return loss
