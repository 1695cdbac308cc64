"""Shape operations: views and copies that move elements without changing them.

Their backward moves the gradient back the same way (a reshape is undone by a reshape,
a permutation by the inverse permutation, ``expand`` -- a copy gate -- by summing).
"""
import numpy as np

from .. import _device
from ..autograd.function import Node, sum_to_shape
from ..autograd.grad_mode import GradMode
from ..tensor import Tensor, _make


def _sizes(args, op):
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all mean the shape (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    try:
        return tuple(int(s) for s in args)
    except TypeError:
        raise TypeError(f"{op}: sizes must be integers, got {args!r}") from None


def _dim(d, ndim, op="dim"):
    """A dimension index wrapped into [0, ndim)."""
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {d})")
    return d % max(ndim, 1)


class ReshapeBackward(Node):
    def __init__(self, edges, shape):
        self.next_edges = edges
        self.shape = shape

    def backward(self, grad):
        return (grad.reshape(self.shape),)


def reshape(a, *shape):
    """The same elements in a new shape (one size may be -1)."""
    shape = _sizes(shape, "reshape")
    x = a.data
    try:
        out = x.reshape(shape)
    except ValueError:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {x.size}") from None
    if GradMode.enabled and a.requires_grad:
        return _make(out, ReshapeBackward((a.grad_fn or a,), x.shape))
    return _make(out)


view = reshape


def view_as(a, other):
    return reshape(a, other.shape)


def reshape_as(a, other):
    return reshape(a, other.shape)


def flatten(a, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    nd = a.ndim
    if nd == 0:
        return reshape(a, 1)
    s, e = _dim(start_dim, nd, "flatten"), _dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return a
    shape = a.shape
    return reshape(a, shape[:s] + (-1,) + shape[e + 1:])


def unflatten(a, dim, sizes):
    """Split dimension ``dim`` into ``sizes``."""
    d = _dim(dim, a.ndim, "unflatten")
    shape = a.shape
    return reshape(a, shape[:d] + tuple(sizes) + shape[d + 1:])


def squeeze(a, dim=None):
    """Remove dimensions of size 1 (all, or the given ones)."""
    shape = a.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {_dim(d, a.ndim, "squeeze") for d in dims} if a.ndim else set()
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return a if new == shape else reshape(a, new)


def unsqueeze(a, dim):
    """Insert a dimension of size 1 at ``dim``."""
    nd = a.ndim + 1
    d = _dim(dim, nd, "unsqueeze")
    shape = a.shape
    return reshape(a, shape[:d] + (1,) + shape[d:])


class PermuteBackward(Node):
    def __init__(self, edges, inverse):
        self.next_edges = edges
        self.inverse = inverse

    def backward(self, grad):
        return (grad.transpose(self.inverse),)


def permute(a, *dims):
    """Reorder dimensions (a view)."""
    dims = _sizes(dims, "permute")
    nd = a.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute: number of dims don't match: the tensor has {nd}, got {len(dims)}")
    dims = tuple(_dim(d, nd, "permute") for d in dims)
    if sorted(dims) != list(range(nd)):
        raise RuntimeError(f"permute: dims {dims} repeat a dimension")
    out = a.data.transpose(dims)
    if GradMode.enabled and a.requires_grad:
        return _make(out, PermuteBackward((a.grad_fn or a,), tuple(np.argsort(dims))))
    return _make(out)


def transpose(a, dim0, dim1):
    """Swap two dimensions (a view)."""
    nd = a.ndim
    if nd == 0:
        return a
    d0, d1 = _dim(dim0, nd, "transpose"), _dim(dim1, nd, "transpose")
    perm = list(range(nd))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return permute(a, perm)


def t(a):
    """Transpose a matrix (0-D and 1-D tensors are returned as is)."""
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D")
    return a if a.ndim < 2 else permute(a, 1, 0)


def T(a):
    return a if a.ndim < 2 else permute(a, tuple(range(a.ndim - 1, -1, -1)))


def mT(a):
    return transpose(a, -2, -1)


class ExpandBackward(Node):
    """A copy gate: every copy's gradient adds back into the one source element."""

    def __init__(self, edges, shape):
        self.next_edges = edges
        self.shape = shape

    def backward(self, grad):
        return (sum_to_shape(grad, self.shape),)


def expand(a, *sizes):
    """Broadcast to a larger shape without copying (-1 keeps a size)."""
    sizes = _sizes(sizes, "expand")
    x = a.data
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                           f"number of dimensions in the tensor ({x.ndim})")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    if shape == x.shape:
        return a
    try:
        out = np.broadcast_to(x, shape)
    except ValueError:
        raise RuntimeError(f"expand: the expanded size {list(sizes)} does not match the existing size "
                           f"{list(x.shape)}") from None
    if GradMode.enabled and a.requires_grad:
        return _make(out, ExpandBackward((a.grad_fn or a,), x.shape))
    return _make(out)


def expand_as(a, other):
    return expand(a, other.shape)


def broadcast_to(a, shape):
    return expand(a, shape)


class ContiguousBackward(Node):
    def __init__(self, edges):
        self.next_edges = edges

    def backward(self, grad):
        return (grad,)


def contiguous(a):
    """A C-contiguous copy, or ``a`` itself when it already is."""
    x = a.data
    if x.flags.c_contiguous:
        return a
    out = _device.array_module(x).ascontiguousarray(x)
    if GradMode.enabled and a.requires_grad:
        return _make(out, ContiguousBackward((a.grad_fn or a,)))
    return _make(out)


def is_contiguous(a):
    return bool(a.data.flags.c_contiguous)


def clone(a):
    """A copy with its own memory; gradients flow back unchanged."""
    out = a.data.copy()
    if GradMode.enabled and a.requires_grad:
        return _make(out, ContiguousBackward((a.grad_fn or a,)))
    return _make(out)


class CatBackward(Node):
    """Each input gets back its own slice of the gradient."""

    def __init__(self, edges, dim, bounds):
        self.next_edges = edges
        self.dim, self.bounds = dim, bounds

    def backward(self, grad):
        pieces = np.split(grad, self.bounds, axis=self.dim)
        return tuple(p if e is not None else None for p, e in zip(pieces, self.next_edges))


def cat(tensors, dim=0):
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of Tensors")
    for i, t_ in enumerate(tensors):
        if not isinstance(t_, Tensor):
            raise TypeError(f"cat: expected a sequence of Tensors, element {i} is {type(t_).__name__}")
    nd = tensors[0].ndim
    d = _dim(dim, nd, "cat")
    for i, t_ in enumerate(tensors):
        if t_.ndim != nd or t_.shape[:d] + t_.shape[d + 1:] != tensors[0].shape[:d] + tensors[0].shape[d + 1:]:
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: tensor 0 has shape "
                               f"{tuple(tensors[0].shape)} but tensor {i} has {tuple(t_.shape)}")
    try:
        out = np.concatenate([t_.data for t_ in tensors], axis=d)
    except TypeError:
        _device.check_same_device("cat", *[t_.data for t_ in tensors])
        raise
    if GradMode.enabled and any(t_.requires_grad for t_ in tensors):
        bounds = [int(b) for b in np.cumsum([t_.shape[d] for t_ in tensors])[:-1]]  # ints: for CuPy's split too
        edges = tuple(t_.grad_fn or (t_ if t_.requires_grad else None) for t_ in tensors)
        return _make(out, CatBackward(edges, d, bounds))
    return _make(out)


concat = concatenate = cat


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of Tensors")
    shape = tensors[0].shape
    for i, t_ in enumerate(tensors):
        if not isinstance(t_, Tensor):
            raise TypeError(f"stack: expected a sequence of Tensors, element {i} is {type(t_).__name__}")
        if t_.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {tuple(shape)} at entry 0 "
                               f"and {tuple(t_.shape)} at entry {i}")
    d = _dim(dim, len(shape) + 1, "stack")
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


def narrow(a, dim, start, length):
    d = _dim(dim, a.ndim, "narrow")
    idx = (slice(None),) * d + (slice(start, start + length),)
    return a[idx]


def split(a, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given sizes."""
    d = _dim(dim, a.ndim, "split")
    n = a.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                               f"at dimension {d}), but got split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(a, d, start, s))
        start += s
    return tuple(out)


def chunk(a, chunks, dim=0):
    """``chunks`` pieces (or fewer) of equal size along ``dim``, the last possibly smaller."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _dim(dim, a.ndim, "chunk")
    n = a.shape[d]
    return split(a, max(-(-n // chunks), 1), d)


def unbind(a, dim=0):
    d = _dim(dim, a.ndim, "unbind")
    return tuple(squeeze(p, d) for p in split(a, 1, d))


def flip(a, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    idx = [slice(None)] * a.ndim
    for d in dims:
        idx[_dim(d, a.ndim, "flip")] = slice(None, None, -1)
    return a[tuple(idx)]


def repeat(a, *sizes):
    """Tile the tensor ``sizes`` times along each dimension (a copy gate in backward)."""
    sizes = _sizes(sizes, "repeat")
    if len(sizes) < a.ndim:
        raise RuntimeError("repeat: number of repeat dims can not be smaller than number of dimensions of tensor")
    x = a.reshape((1,) * (len(sizes) - a.ndim) + tuple(a.shape))
    # expand a new axis in front of every dimension, then merge: (s0, d0, s1, d1, ...) -> (s0*d0, ...)
    inter = []
    for s, n in zip(sizes, x.shape):
        inter += [1, n]
    y = x.reshape(inter)
    exp_shape = []
    for s, n in zip(sizes, x.shape):
        exp_shape += [s, n]
    return y.expand(exp_shape).reshape([s * n for s, n in zip(sizes, x.shape)])


def to_device(a, dev):
    """Move to ``dev`` ("cpu" or "cuda"); differentiable (the gradient moves back).

    RuntimeError naming why where CUDA cannot run (no CUDA build, no device, no CuPy)."""
    if dev.type == "cuda":
        try:
            _device.cupy()
        except RuntimeError as e:
            raise RuntimeError(f"to('{dev}'): {e}") from None
    data = _device.to_device(a.data, dev.type)
    if GradMode.enabled and a.requires_grad:
        return _make(data, _ToDeviceBackward((a.grad_fn or a,), a.device))
    return _make(data)


class _ToDeviceBackward(Node):
    def __init__(self, edges, dev):
        self.next_edges = edges
        self.dev = dev

    def backward(self, grad):
        return (_device.to_device(grad, self.dev.type),)
