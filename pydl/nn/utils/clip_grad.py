"""Gradient clipping: rescale all gradients when their joint norm is too large, or clamp
each element (the seeds: "gradient clipping", the cure for exploding RNN gradients)."""
import math

import numpy as np

from ..._device import array_module

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters, fn):
    from ...tensor import Tensor

    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters must be Tensors (or one Tensor), got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad.data)
    return grads


def _vector_norm(g, norm_type):
    """The ``norm_type``-norm of all elements of ``g``, as a float."""
    if norm_type == 2.0:
        flat = g.ravel()
        if flat.dtype.kind != "f":
            return float(array_module(g).linalg.norm(flat.astype(np.float64)))
        with np.errstate(over="ignore"):
            total = float(flat @ flat)
        if math.isinf(total) and bool(array_module(g).isfinite(flat).all()):  # squares overflowed float32
            flat = flat.astype(np.float64)
            total = float(flat @ flat)
        return math.sqrt(total)
    a = abs(g)
    if norm_type == math.inf:
        return float(a.max()) if a.size else 0.0
    if norm_type == -math.inf:
        return float(a.min()) if a.size else math.inf
    if norm_type == 0.0:
        return float((g != 0).sum())
    if norm_type == 1.0:
        return float(a.sum(dtype=np.float64))
    return float((a.astype(np.float64) ** norm_type).sum()) ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    r"""Rescale the gradients of ``parameters`` in place so that their joint norm is at most
    ``max_norm``; returns the joint norm before clipping (a 0-d Tensor of the gradients' dtype).

    The joint norm is the ``norm_type``-norm of the vector of every gradient element
    (``inf``: the largest magnitude). When it exceeds ``max_norm`` every gradient is
    multiplied by ``max_norm / (total_norm + 1e-6)``, so the direction of the step is kept
    and only its length is bounded. Parameters without a gradient are skipped.

    Args:
        parameters: a Tensor or an iterable of Tensors (``model.parameters()``).
        max_norm (float): the largest allowed norm.
        norm_type (float): the p of the p-norm; ``float("inf")`` for the max-norm. Default 2.
        error_if_nonfinite (bool): raise RuntimeError when the norm is nan or inf (instead
            of scaling the gradients by it, which makes them nan). Default False.
        foreach: accepted for PyTorch compatibility; ignored.

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.zeros(2))
        >>> w.grad = pydl.tensor([3.0, 4.0])
        >>> float(pydl.nn.utils.clip_grad_norm_([w], max_norm=1.0))
        5.0
        >>> print(w.grad.data.round(4))
        [0.6 0.8]
    """
    from ...tensor import Tensor

    grads = _grads(parameters, "clip_grad_norm_")
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    norms = [_vector_norm(g, norm_type) for g in grads]
    if norm_type == math.inf:
        total = max(norms)
    elif norm_type == -math.inf:
        total = min(norms)
    elif norm_type == 0.0:
        total = float(sum(norms))
    else:
        total = math.fsum(n**norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    clip_coef = max_norm / (total + 1e-6) if not math.isnan(total) else math.nan
    if not clip_coef >= 1.0:  # scale when above the bound, and propagate nan like PyTorch
        for g in grads:
            g *= clip_coef
    return Tensor(np.array(total, dtype=grads[0].dtype if grads[0].dtype.kind == "f" else np.float32))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element of ``parameters`` into ``[-clip_value, clip_value]`` in place.

    Example:
        >>> import pydl
        >>> w = pydl.nn.Parameter(pydl.zeros(3))
        >>> w.grad = pydl.tensor([-5.0, 0.5, 2.0])
        >>> pydl.nn.utils.clip_grad_value_([w], clip_value=1.0)
        >>> w.grad.data.tolist()
        [-1.0, 0.5, 1.0]
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for g in _grads(parameters, "clip_grad_value_"):
        array_module(g).clip(g, -clip_value, clip_value, out=g)
