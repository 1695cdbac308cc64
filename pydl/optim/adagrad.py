"""AdaGrad: per-element step sizes from the historical sum of squared gradients."""
import numpy as np

from .optimizer import Optimizer, _buffer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""AdaGrad, as PyTorch implements it.

    For each parameter, at step ``t`` (from 1)::

        g     <- -g                                  if maximize
        clr   =  lr / (1 + (t - 1) * lr_decay)
        g     <- g + weight_decay * theta
        sum   <- sum + g * g                         (sum starts at initial_accumulator_value)
        theta <- theta - clr * g / (sqrt(sum) + eps)

    The seeds' AdaGrad: "element-wise scaling with the historical sum of squares", which
    damps steep directions and accelerates flat ones (``grad_squared += dx * dx; x -= lr * dx
    / (sqrt(grad_squared) + eps)``); because the sum only grows, the step sizes decay towards
    zero, the problem RMSprop fixes.

    Args:
        params: Tensors or parameter-group dicts.
        lr (float): learning rate. Default 1e-2.
        lr_decay (float): decay of the learning rate with the step count. Default 0.
        weight_decay (float): L2 penalty. Default 0.
        initial_accumulator_value (float): starting value of the sum of squares. Default 0.
        eps (float): added to the denominator. Default 1e-10.
        maximize (bool): ascend the objective instead.

    State per parameter: ``step`` (int), ``sum``.

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.tensor([1.0, 1.0]))
        >>> opt = pydl.optim.Adagrad([w], lr=0.5)
        >>> w.grad = pydl.tensor([2.0, -0.1])
        >>> opt.step()
        >>> print(w.data.round(4))
        [0.5 1.5]
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if not 0.0 <= group["lr_decay"]:
            raise ValueError(f"Invalid lr_decay value: {group['lr_decay']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if not 0.0 <= group["initial_accumulator_value"]:
            raise ValueError(f"Invalid initial_accumulator_value value: {group['initial_accumulator_value']}")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, lr_decay, weight_decay, eps = group["lr"], group["lr_decay"], group["weight_decay"], group["eps"]
            for p, param, grad in self._params_with_grad(group):
                state = self.state[p]
                state_sum = _buffer(state, "sum", p, fill=group["initial_accumulator_value"])
                state["step"] = state.get("step", 0) + 1
                g = -grad if group["maximize"] else grad
                if weight_decay != 0:
                    g = g + weight_decay * param
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                state_sum += g * g
                std = np.sqrt(state_sum)
                std += eps
                np.divide(g, std, out=std)
                std *= clr
                param -= std
        return loss
