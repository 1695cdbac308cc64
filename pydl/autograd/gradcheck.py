"""Numeric gradient check: the analytic gradient against central differences, in float64.

Lecture 3's recipe: for every input element x_i, the numeric partial derivative is
(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) -- central differences, whose error is O(eps^2)
rather than the O(eps) of the one-sided formula -- computed in float64 so that the
rounding error (about 1e-16 / eps) stays far below the tolerance. Each output element's
row of the Jacobian is computed analytically with one backward pass.
"""
import numpy as np

from .engine import grad as _grad
from .grad_mode import no_grad

__all__ = ["GradcheckError", "gradcheck"]


class GradcheckError(RuntimeError):
    """The analytic and numeric Jacobians differ."""


def _as_tuple(x):
    return x if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    from ..tensor import Tensor

    out = fn(*inputs)
    outs = tuple(o for o in _as_tuple(out) if isinstance(o, Tensor))
    if not outs:
        raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {type(out).__name__}")
    return outs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0):
    """Check the gradients of ``fn(*inputs)`` against central differences.

    inputs: a Tensor or a tuple of them (and other arguments, passed through); those that
    require grad must be float64 -- in float32 the numeric derivative drowns in rounding.
    Passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` for every element of
    every Jacobian; returns True, or raises GradcheckError naming the worst element
    (returns False instead when ``raise_exception=False``).

    >>> import pydl
    >>> x = pydl.randn(3, dtype=pydl.float64, requires_grad=True)
    >>> pydl.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    from ..tensor import Tensor

    inputs = tuple(_as_tuple(inputs))
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    for i in wrt:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 inputs "
                             "(central differences in float32 are dominated by rounding)")

    outs = _outputs(fn, inputs)
    # Analytic Jacobians: one backward per output element, d out[k] / d input.
    analytic = {}
    for oi, out in enumerate(outs):
        if not out.requires_grad:
            for i in wrt:
                analytic[oi, i] = np.zeros((out.numel(), inputs[i].numel()))
            continue
        n_out = out.numel()
        rows = {i: np.zeros((n_out, inputs[i].numel())) for i in wrt}
        for k in range(n_out):
            seed = np.zeros(out.shape, dtype=out.dtype)
            seed.flat[k] = 1.0
            gs = _grad(out, [inputs[i] for i in wrt], grad_outputs=Tensor(seed), retain_graph=True,
                       allow_unused=True)
            for i, g in zip(wrt, gs):
                if g is not None:
                    rows[i][k] = g.data.reshape(-1)
        for i in wrt:
            analytic[oi, i] = rows[i]

    # Numeric Jacobians: perturb each input element by +-eps.
    worst = None
    ok = True
    for i in wrt:
        t = inputs[i]
        saved = t.data
        work = np.array(saved, dtype=np.float64, copy=True)
        t.data = work
        flat = work.reshape(-1)
        try:
            for j in range(flat.size):
                x0 = flat[j]
                flat[j] = x0 + eps
                with no_grad():
                    plus = [o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
                flat[j] = x0 - eps
                with no_grad():
                    minus = [o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
                flat[j] = x0
                for oi in range(len(outs)):
                    num = (plus[oi] - minus[oi]) / (2 * eps)
                    ana = analytic[oi, i][:, j]
                    err = np.abs(ana - num)
                    allowed = atol + rtol * np.abs(num)
                    excess = err - allowed
                    if excess.size == 0:
                        continue
                    k = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)))
                    bad = not (excess[k] <= 0)
                    if bad:
                        ok = False
                    if worst is None or (bad and (np.isnan(excess[k]) or excess[k] > worst[0])):
                        worst = (excess[k], oi, i, k, j, num[k], ana[k], err[k], allowed[k])
        finally:
            t.data = saved
    if ok:
        return True
    if not raise_exception:
        return False
    _, oi, i, k, j, num, ana, err, allowed = worst
    in_idx = np.unravel_index(j, inputs[i].shape) if inputs[i].ndim else ()
    out_idx = np.unravel_index(k, outs[oi].shape) if outs[oi].ndim else ()
    raise GradcheckError(
        f"gradcheck: Jacobian mismatch for output {oi} with respect to input {i}: worst at output index "
        f"{tuple(int(v) for v in out_idx)}, input index {tuple(int(v) for v in in_idx)}: numerical {float(num)!r}, "
        f"analytical {float(ana)!r}, |diff| {err:.3g} > allowed {allowed:.3g} (eps={eps}, atol={atol}, rtol={rtol})")
