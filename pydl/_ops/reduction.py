"""Reductions over dimensions: sum, mean, max/min, var/std, logsumexp, prod, ...

``dim`` is an int, a tuple of ints or None (every dimension); ``keepdim`` keeps the reduced
dimensions with size 1. Backward broadcasts the gradient back over the reduced dimensions
(sum: a copy gate seen from the other side), and max routes it to the winner.

Ties: ``max(dim)`` / ``min(dim)`` route the gradient to the index they return (the first
maximal element, as ``argmax``); ``max()`` over everything and ``amax`` / ``amin`` share it
evenly between tied elements, as PyTorch does.
"""
import builtins
from collections import namedtuple

import numpy as np

from .._device import add_at, array_module, asarray_on
from ..autograd.function import Node
from ..autograd.grad_mode import GradMode
from ..tensor import Tensor, _Defaults, _make

_ndarray = np.ndarray

values_indices = namedtuple("values_indices", ["values", "indices"])
# PyTorch's names for the results of max/min/median/mode/sort along a dimension
max_result = min_result = values_indices


def _axes(dim, ndim, op):
    """None (all) or a sorted tuple of non-negative axes."""
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    n = builtins.max(ndim, 1)
    out = []
    for d in dims:
        d = int(d)
        if not -n <= d < n:
            raise IndexError(f"{op}: dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        out.append(d % n)
    if ndim == 0:
        return None
    return tuple(sorted(set(out)))


def _keep_shape(in_shape, axes):
    """The shape with reduced axes kept as 1."""
    if axes is None:
        return (1,) * len(in_shape)
    return tuple(1 if i in axes else s for i, s in enumerate(in_shape))


class SumBackward(Node):
    """Every summed element receives the upstream gradient (the gradient of a sum is 1)."""

    def __init__(self, edges, in_shape, keep_shape, scale=None):
        self.next_edges = edges
        self.in_shape, self.keep_shape, self.scale = in_shape, keep_shape, scale

    def backward(self, grad):
        g = grad.reshape(self.keep_shape)
        if self.scale is not None:
            g = g * self.scale
        return (np.broadcast_to(g, self.in_shape),)


def sum(a, dim=None, keepdim=False, *, dtype=None):
    x = a.data
    axes = _axes(dim, x.ndim, "sum")
    out = x.sum(axis=axes, keepdims=keepdim, dtype=dtype)
    if GradMode.enabled and a.requires_grad:
        return _make(out, SumBackward((a.grad_fn or a,), x.shape, _keep_shape(x.shape, axes)))
    return _make(out)


class MeanBackward(SumBackward):
    """Every averaged element receives the upstream gradient over the count."""


def mean(a, dim=None, keepdim=False, *, dtype=None):
    x = a.data
    if x.dtype.kind not in "fc" and dtype is None:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
                           f"complex dtype. Got: {x.dtype}")
    axes = _axes(dim, x.ndim, "mean")
    out = x.mean(axis=axes, keepdims=keepdim, dtype=dtype)
    if GradMode.enabled and a.requires_grad:
        count = x.size if axes is None else int(np.prod([x.shape[i] for i in axes]))
        return _make(out, MeanBackward((a.grad_fn or a,), x.shape, _keep_shape(x.shape, axes),
                                       1.0 / count if count else float("nan")))
    return _make(out)


class AmaxBackward(Node):
    """max gate over a reduction: the winners share the gradient (evenly on ties)."""

    def __init__(self, edges, x, out_keep, axes):
        self.next_edges = edges
        self.x, self.out_keep, self.axes = x, out_keep, axes

    def backward(self, grad):
        mask = self.x == self.out_keep
        count = mask.sum(axis=self.axes, keepdims=True)
        return (grad.reshape(self.out_keep.shape) * mask / count,)


def amax(a, dim=None, keepdim=False, _op=np.amax, _name="amax"):
    x = a.data
    if x.size == 0:
        raise RuntimeError(f"{_name}(): Expected reduction dim to be specified for input.numel() == 0.")
    axes = _axes(dim, x.ndim, _name) if dim != () else None
    out_keep = _op(x, axis=axes, keepdims=True)
    out = out_keep if keepdim else (out_keep.reshape(()) if axes is None else np.squeeze(out_keep, axis=axes))
    if GradMode.enabled and a.requires_grad:
        return _make(out, AmaxBackward((a.grad_fn or a,), x, out_keep, axes))
    return _make(out)


def amin(a, dim=None, keepdim=False):
    return amax(a, dim, keepdim, _op=np.amin, _name="amin")


class IndexedMaxBackward(Node):
    """max gate along a dimension: the gradient goes to the element whose index max returned."""

    def __init__(self, edges, in_shape, dtype, idx_keep, dim):
        self.next_edges = edges
        self.in_shape, self.dtype, self.idx_keep, self.dim = in_shape, dtype, idx_keep, dim

    def backward(self, grad):
        g = array_module(grad).zeros(self.in_shape, dtype=grad.dtype)
        if g.__class__ is np.ndarray:
            np.put_along_axis(g, self.idx_keep, grad.reshape(self.idx_keep.shape), axis=self.dim)
        else:  # the same scatter on a GPU array (one index per slot: adding into zeros puts)
            from .indexing import _along

            add_at(g, _along(self.idx_keep, self.dim), grad.reshape(self.idx_keep.shape))
        return (g,)


def _max_min(a, dim, keepdim, other, is_max):
    name = "max" if is_max else "min"
    if isinstance(dim, Tensor):  # max(a, b): elementwise, like torch.max(input, other)
        other, dim = dim, None
    if other is not None:
        from .pointwise import maximum, minimum

        return maximum(a, other) if is_max else minimum(a, other)
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}: keepdim requires dim")
        return amax(a, None, False, _op=np.amax if is_max else np.amin, _name=name)
    x = a.data
    d = _axes(dim, x.ndim, name)
    if d is None:  # 0-d tensor
        return values_indices(a.clone() if a.requires_grad else a, _make(array_module(x).zeros((), dtype=np.int64)))
    d = d[0]
    if x.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    idx_keep = (np.argmax if is_max else np.argmin)(x, axis=d, keepdims=True)
    vals_keep = np.take_along_axis(x, idx_keep, axis=d)
    vals = vals_keep if keepdim else np.squeeze(vals_keep, axis=d)
    idx = idx_keep if keepdim else np.squeeze(idx_keep, axis=d)
    if GradMode.enabled and a.requires_grad:
        values = _make(vals, IndexedMaxBackward((a.grad_fn or a,), x.shape, x.dtype, idx_keep, d))
    else:
        values = _make(vals)
    return values_indices(values, _make(idx.astype(np.int64, copy=False)))


def max(a, dim=None, keepdim=False, *, other=None):
    """``max()``: the largest element; ``max(dim)``: (values, indices); ``max(other)``: elementwise."""
    return _max_min(a, dim, keepdim, other, True)


def min(a, dim=None, keepdim=False, *, other=None):
    """``min()``: the smallest element; ``min(dim)``: (values, indices); ``min(other)``: elementwise."""
    return _max_min(a, dim, keepdim, other, False)


def argmax(a, dim=None, keepdim=False):
    x = a.data
    if dim is None:
        out = np.argmax(x)
        return _make(asarray_on(x, out, dtype=np.int64).reshape((1,) * x.ndim if keepdim else ()))
    d = _axes(dim, x.ndim, "argmax")
    return _make(np.argmax(x, axis=d[0] if d else None, keepdims=keepdim).astype(np.int64, copy=False))


def argmin(a, dim=None, keepdim=False):
    x = a.data
    if dim is None:
        out = np.argmin(x)
        return _make(asarray_on(x, out, dtype=np.int64).reshape((1,) * x.ndim if keepdim else ()))
    d = _axes(dim, x.ndim, "argmin")
    return _make(np.argmin(x, axis=d[0] if d else None, keepdims=keepdim).astype(np.int64, copy=False))


class VarBackward(Node):
    """d var / dx_i = 2 (x_i - mean) / (N - correction); std divides that by 2 std."""

    def __init__(self, edges, centered, denom, keep_shape, std_keep=None):
        self.next_edges = edges
        self.centered, self.denom, self.keep_shape, self.std_keep = centered, denom, keep_shape, std_keep

    def backward(self, grad):
        g = grad.reshape(self.keep_shape)
        if self.std_keep is None:
            return (g * (2.0 / self.denom) * self.centered,)
        return (g * self.centered / (self.denom * self.std_keep),)


def _var(a, dim, unbiased, keepdim, correction, take_sqrt):
    name = "std" if take_sqrt else "var"
    if isinstance(dim, bool) and unbiased is None:  # var(True): the old unbiased positional
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None else int(bool(unbiased))
    x = a.data
    if x.dtype.kind not in "fc":
        raise RuntimeError(f"{name}: only floating point dtypes are supported, got {x.dtype}")
    axes = _axes(dim, x.ndim, name)
    n = x.size if axes is None else int(np.prod([x.shape[i] for i in axes]))
    mean_keep = x.mean(axis=axes, keepdims=True)
    centered = x - mean_keep
    denom = n - correction
    with np.errstate(divide="ignore", invalid="ignore"):
        var_keep = (centered * centered).sum(axis=axes, keepdims=True) / (denom if denom > 0 else 0.0)
    out_keep = np.sqrt(var_keep) if take_sqrt else var_keep
    out = out_keep if keepdim else (out_keep.reshape(()) if axes is None else np.squeeze(out_keep, axis=axes))
    out = out.astype(x.dtype, copy=False)
    if GradMode.enabled and a.requires_grad:
        return _make(out, VarBackward((a.grad_fn or a,), centered, denom if denom > 0 else 0.0,
                                      out_keep.shape, out_keep if take_sqrt else None))
    return _make(out)


def var(a, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's correction by default (``correction=1``; ``unbiased=False`` is 0)."""
    return _var(a, dim, unbiased, keepdim, correction, False)


def std(a, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: the square root of ``var`` with the same arguments."""
    return _var(a, dim, unbiased, keepdim, correction, True)


class LogsumexpBackward(Node):
    """d logsumexp / dx_i = softmax(x)_i = exp(x_i - out)."""

    def __init__(self, edges, x, out_keep):
        self.next_edges = edges
        self.x, self.out_keep = x, out_keep

    def backward(self, grad):
        return (grad.reshape(self.out_keep.shape) * np.exp(self.x - self.out_keep),)


def logsumexp(a, dim=None, keepdim=False):
    """log(sum(exp(x))) over ``dim``, shifted by the max so that it cannot overflow."""
    x = a.data
    if x.dtype.kind not in "fc":
        a = a.to(_Defaults.float_dtype)
        x = a.data
    axes = _axes(dim, x.ndim, "logsumexp") if dim is not None else None
    if x.size == 0:
        m = array_module(x).full(_keep_shape(x.shape, axes), -np.inf, dtype=x.dtype)
    else:
        m = np.amax(x, axis=axes, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        out_keep = np.log(np.exp(x - m_safe).sum(axis=axes, keepdims=True)) + m_safe
    out = out_keep if keepdim else (out_keep.reshape(()) if axes is None else np.squeeze(out_keep, axis=axes))
    if GradMode.enabled and a.requires_grad:
        return _make(out, LogsumexpBackward((a.grad_fn or a,), x, out_keep))
    return _make(out)


class ProdBackward(Node):
    """d prod / dx_i = product of the others: exclusive cumulative products from both sides
    (no division, so zeros are handled)."""

    def __init__(self, edges, x, axis, keep_shape):
        self.next_edges = edges
        self.x, self.axis, self.keep_shape = x, axis, keep_shape

    def backward(self, grad):
        x, ax = self.x, self.axis
        lead = (slice(None),) * ax  # slices along ax (not np.take / np.delete: CuPy arrays too)
        ones = np.ones_like(x[lead + (slice(0, 1),)])
        before = np.cumprod(np.concatenate([ones, x[lead + (slice(None, -1),)]], axis=ax), axis=ax)
        after = np.flip(np.cumprod(np.concatenate([ones, np.flip(x[lead + (slice(1, None),)], axis=ax)], axis=ax),
                                   axis=ax), axis=ax)
        return (grad.reshape(self.keep_shape) * before * after,)


def prod(a, dim=None, keepdim=False, *, dtype=None):
    x = a.data
    if dim is None:
        flat = a.reshape(-1)
        out = prod(flat, 0, False, dtype=dtype)
        return out.reshape((1,) * x.ndim) if keepdim else out
    d = _axes(dim, x.ndim, "prod")
    d = 0 if d is None else d[0]
    out = np.prod(x, axis=d, keepdims=keepdim, dtype=dtype)
    if GradMode.enabled and a.requires_grad:
        return _make(out, ProdBackward((a.grad_fn or a,), x, d, _keep_shape(x.shape, (d,))))
    return _make(out)


def norm(a, p=2, dim=None, keepdim=False):
    """The p-norm over ``dim`` (all elements by default); p may be inf."""
    if p in ("fro", 2, 2.0):
        return sum(a * a, dim, keepdim).sqrt()
    if p == float("inf"):
        return amax(a.abs(), dim, keepdim)
    if p == 1:
        return sum(a.abs(), dim, keepdim)
    return sum(a.abs() ** p, dim, keepdim) ** (1.0 / p)


class CumsumBackward(Node):
    def __init__(self, edges, dim):
        self.next_edges = edges
        self.dim = dim

    def backward(self, grad):
        return (np.flip(np.cumsum(np.flip(grad, self.dim), axis=self.dim), self.dim),)


def cumsum(a, dim, *, dtype=None):
    x = a.data
    d = _axes(dim, x.ndim, "cumsum")
    d = 0 if d is None else d[0]
    out = np.cumsum(x, axis=d, dtype=dtype)
    if GradMode.enabled and a.requires_grad:
        return _make(out, CumsumBackward((a.grad_fn or a,), d))
    return _make(out)


def all(a, dim=None, keepdim=False):
    axes = _axes(dim, a.ndim, "all")
    return _make(np.all(a.data, axis=axes, keepdims=keepdim))


def any(a, dim=None, keepdim=False):
    axes = _axes(dim, a.ndim, "any")
    return _make(np.any(a.data, axis=axes, keepdims=keepdim))


def count_nonzero(a, dim=None):
    axes = _axes(dim, a.ndim, "count_nonzero")
    return _make(asarray_on(a.data, np.count_nonzero(a.data, axis=axes), dtype=np.int64))
