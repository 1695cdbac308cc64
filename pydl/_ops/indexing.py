"""Indexing: ``t[...]`` (basic, integer-array and boolean), ``where``, ``gather``, ...

Backward of an index is the copy gate run in reverse: the gradient is scattered into a
zero tensor of the input's shape; an element picked several times by an integer index
receives the sum of its gradients (``np.add.at``, an unbuffered scatter-add). On a GPU
tensor the index arrays and the scatter live on the GPU too (:mod:`pydl._device`).
"""
import numpy as np

from .._device import add_at, array_module, asarray_on, check_same_device
from ..autograd.function import Node, sum_to_shape
from ..autograd.grad_mode import GradMode
from ..tensor import Tensor, _make

_BASIC = (int, slice, type(None), type(Ellipsis), np.integer)


def _convert(idx, like):
    """A NumPy (or CuPy, for a ``like`` on the GPU) index from a pydl one (Tensors -> arrays,
    lists -> arrays); and whether it is advanced (integer arrays, which may repeat)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    repeats = False
    for i in idx:
        if isinstance(i, _BASIC) and not isinstance(i, bool):
            out.append(i)
            continue
        if isinstance(i, Tensor):
            i = i.data
        elif isinstance(i, (list, tuple, bool)):
            i = np.asarray(i)
            if i.dtype.kind == "f" and i.size == 0:
                i = i.astype(np.int64)
        if i.__class__ is np.ndarray and like.__class__ is not np.ndarray:
            i = asarray_on(like, i)  # a host index of a GPU tensor moves to the GPU
        elif i.__class__ is not like.__class__:
            check_same_device("index", like, i)
        if hasattr(i, "dtype"):
            if i.dtype.kind in "iu":
                repeats = True
            elif i.dtype.kind != "b":
                raise IndexError(f"tensors used as indices must be long, int or bool tensors, got {i.dtype}")
        out.append(i)
    return tuple(out), repeats


class IndexBackward(Node):
    """Scatter the gradient back to where the elements came from."""

    def __init__(self, edges, shape, idx, accumulate):
        self.next_edges = edges
        self.shape, self.idx, self.accumulate = shape, idx, accumulate

    def backward(self, grad):
        g = array_module(grad).zeros(self.shape, dtype=grad.dtype)
        if self.accumulate:
            add_at(g, self.idx, grad)
        else:
            g[self.idx] = grad
        return (g,)


def getitem(a, idx):
    """``a[idx]``: a view for basic indices, a copy for integer arrays and masks."""
    x = a.data
    np_idx, repeats = _convert(idx, x)
    try:
        out = x[np_idx if len(np_idx) != 1 else np_idx[0]]
    except IndexError as e:
        raise IndexError(f"index {idx!r} is out of range for a tensor of shape {tuple(x.shape)}: {e}") from None
    if GradMode.enabled and a.requires_grad:
        return _make(out, IndexBackward((a.grad_fn or a,), x.shape, np_idx if len(np_idx) != 1 else np_idx[0],
                                        repeats))
    return _make(out)


def setitem(a, idx, value):
    """``a[idx] = value``: in place, allowed while ``a`` is not recorded (no_grad, or no grad needed)."""
    a._check_inplace("__setitem__")
    np_idx, _ = _convert(idx, a.data)
    v = value.data if isinstance(value, Tensor) else value
    check_same_device("__setitem__", a.data, v)
    a.data[np_idx if len(np_idx) != 1 else np_idx[0]] = v


class WhereBackward(Node):
    """The gradient goes to x where the condition holds, to y elsewhere (a switch)."""

    def __init__(self, edges, cond, x_shape, y_shape):
        self.next_edges = edges
        self.cond, self.x_shape, self.y_shape = cond, x_shape, y_shape

    def backward(self, grad):
        ex, ey = self.next_edges
        gx = gy = None
        zero = array_module(grad).zeros((), dtype=grad.dtype)
        if ex is not None:
            gx = sum_to_shape(np.where(self.cond, grad, zero), self.x_shape)
        if ey is not None:
            gy = sum_to_shape(np.where(self.cond, zero, grad), self.y_shape)
        return gx, gy


def where(condition, input=None, other=None):
    """Elements of ``input`` where ``condition`` holds, else of ``other`` (broadcasting)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if input is None and other is None:
        return tuple(_make(i.astype(np.int64)) for i in np.nonzero(cond))
    xd = input.data if isinstance(input, Tensor) else input
    yd = other.data if isinstance(other, Tensor) else other
    if not isinstance(input, Tensor) and isinstance(other, Tensor) and isinstance(xd, (int, float)):
        xd = asarray_on(yd, xd, dtype=yd.dtype if yd.dtype.kind == "f" or isinstance(xd, int) else None)
    if not isinstance(other, Tensor) and isinstance(input, Tensor) and isinstance(yd, (int, float)):
        yd = asarray_on(xd, yd, dtype=xd.dtype if xd.dtype.kind == "f" or isinstance(yd, int) else None)
    check_same_device("where", cond, xd, yd)
    out = np.where(cond, xd, yd)
    rx = isinstance(input, Tensor) and input.requires_grad
    ry = isinstance(other, Tensor) and other.requires_grad
    if GradMode.enabled and (rx or ry):
        edges = (input.grad_fn or input if rx else None, other.grad_fn or other if ry else None)
        return _make(out, WhereBackward(edges, cond, np.shape(xd), np.shape(yd)))
    return _make(out)


def masked_fill(a, mask, value):
    """``value`` where ``mask`` is True, ``a`` elsewhere (gradient only to the kept elements)."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {m.dtype}")
    v = value.item() if isinstance(value, Tensor) else value
    fill = asarray_on(a.data, v, dtype=a.dtype)
    check_same_device("masked_fill", a.data, m)
    out = np.where(m, fill, a.data)
    if out.shape != a.shape:
        raise RuntimeError(f"masked_fill: the mask of shape {m.shape} must broadcast to the tensor's {a.shape}")
    if GradMode.enabled and a.requires_grad:
        return _make(out, WhereBackward((None, a.grad_fn or a), m, (), a.shape))
    return _make(out)


def _along(index, dim):
    """Full index tuple for take/put along ``dim`` (``np.add.at`` needs explicit arrays): the
    sparse grids of ``np.indices(index.shape, sparse=True)``, on index's device."""
    xp, nd = array_module(index), index.ndim
    return tuple(index if d == dim else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (nd - d - 1))
                 for d, n in enumerate(index.shape))


class GatherBackward(Node):
    def __init__(self, edges, shape, index, dim):
        self.next_edges = edges
        self.shape, self.index, self.dim = shape, index, dim

    def backward(self, grad):
        g = array_module(grad).zeros(self.shape, dtype=grad.dtype)
        add_at(g, _along(self.index, self.dim), grad)
        return (g,)


def gather(a, dim, index):
    """``out[i][j] = a[i][index[i][j]]`` for dim=1 (PyTorch's gather)."""
    idx = index.data if isinstance(index, Tensor) else asarray_on(a.data, index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {idx.dtype}")
    check_same_device("gather", a.data, idx)
    d = dim % max(a.ndim, 1)
    if idx.ndim != a.ndim:
        raise RuntimeError(f"gather: index has {idx.ndim} dimensions but the input has {a.ndim}")
    out = a.data[_along(idx, d)]
    if GradMode.enabled and a.requires_grad:
        return _make(out, GatherBackward((a.grad_fn or a,), a.shape, idx, d))
    return _make(out)


def index_select(a, dim, index):
    """The slices of ``a`` along ``dim`` at the positions in ``index`` (1-D)."""
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    d = dim % max(a.ndim, 1)
    return getitem(a, (slice(None),) * d + (idx,))


def take(a, index):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    return getitem(a.reshape(-1), idx)


def nonzero(a, *, as_tuple=False):
    nz = np.nonzero(a.data)
    if as_tuple:
        return tuple(_make(i.astype(np.int64)) for i in nz)
    return _make(np.stack(nz, axis=1).astype(np.int64) if nz else array_module(a.data).zeros((0, 0), dtype=np.int64))
