"""RMSprop: AdaGrad with a leaky (exponentially decaying) sum of squared gradients."""
import numpy as np

from .optimizer import Optimizer, _buffer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, as PyTorch implements it.

    For each parameter, at every step::

        g      <- -g                                        if maximize
        g      <- g + weight_decay * theta
        v      <- alpha * v + (1 - alpha) * g * g           (v starts at 0)
        v~     =  v - g_avg^2, g_avg <- alpha g_avg + (1 - alpha) g   if centered, else v~ = v
        b      <- momentum * b + g / (sqrt(v~) + eps);  theta <- theta - lr * b   if momentum > 0
        theta  <- theta - lr * g / (sqrt(v~) + eps)                                 otherwise

    The seeds' RMSProp ("leaky AdaGrad", "weighted AdaGrad"): ``grad_squared = decay_rate *
    grad_squared + (1 - decay_rate) * dx * dx`` with the decay rate ``alpha`` (commonly 0.99),
    which keeps step sizes roughly constant instead of decaying to zero. ``centered``
    divides by an estimate of the gradient's variance instead of its raw second moment.

    Args:
        params: Tensors or parameter-group dicts.
        lr (float): learning rate. Default 1e-2.
        alpha (float): smoothing constant (decay rate). Default 0.99.
        eps (float): added to the denominator. Default 1e-8.
        weight_decay (float): L2 penalty. Default 0.
        momentum (float): momentum factor. Default 0.
        centered (bool): normalise by the centred second moment. Default False.
        maximize (bool): ascend the objective instead.

    State per parameter: ``step`` (int), ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.tensor([1.0]))
        >>> opt = pydl.optim.RMSprop([w], lr=0.01, alpha=0.99)
        >>> w.grad = pydl.tensor([3.0])
        >>> opt.step()  # v = 0.01 * 9, step = 0.01 * 3 / 0.3
        >>> print(w.data.round(4))
        [0.9]
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= group["momentum"]:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
            for p, param, grad in self._params_with_grad(group):
                state = self.state[p]
                square_avg = _buffer(state, "square_avg", p)
                state["step"] = state.get("step", 0) + 1
                g = -grad if group["maximize"] else grad
                if weight_decay != 0:
                    g = g + weight_decay * param
                square_avg *= alpha
                square_avg += (1 - alpha) * (g * g)
                if centered:
                    grad_avg = _buffer(state, "grad_avg", p)
                    grad_avg *= alpha
                    grad_avg += (1 - alpha) * g
                    avg = square_avg - grad_avg * grad_avg
                    np.sqrt(avg, out=avg)
                else:
                    avg = np.sqrt(square_avg)
                avg += eps
                if momentum > 0:
                    buf = _buffer(state, "momentum_buffer", p)
                    buf *= momentum
                    buf += g / avg
                    param -= lr * buf
                else:
                    np.divide(g, avg, out=avg)
                    avg *= lr
                    param -= avg
        return loss
