"""pydl.Tensor: an array (``.data``: NumPy, or CuPy on a GPU) plus what autograd needs.

A tensor is a thin wrapper: ``.data`` holds the values, ``requires_grad`` says whether
gradients are wanted, ``.grad`` receives them (a Tensor), ``.grad_fn`` is the
:class:`~pydl.autograd.Node` that computed it (``None`` for a leaf). The operations live in
:mod:`pydl._ops` (one module per family) and are attached to the class at the end of this
file; the engine is in :mod:`pydl.autograd`.

Python overhead is most of the cost of a small model, so a tensor has ``__slots__`` and
is built by :func:`_make` without going through ``__init__``.
"""
import numpy as np

from .autograd.grad_mode import GradMode

__all__ = ["Tensor", "bool", "device", "double", "float", "float16", "float32", "float64", "from_dlpack",
           "get_default_dtype",
           "half", "int", "int8", "int16", "int32", "int64", "long", "set_default_dtype", "uint8"]

_builtin_bool, _builtin_float, _builtin_int = bool, float, int

# dtypes are NumPy's: pydl.float32 is np.dtype("float32"), so t.dtype == pydl.float32 and
# arrays move between the two without translation.
float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)


class _Defaults:
    float_dtype = float32


def get_default_dtype():
    """The dtype of float tensors created without one (float32)."""
    return _Defaults.float_dtype


def set_default_dtype(dtype):
    """Set the dtype of float tensors created without one (float32 or float64)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are supported, got {dtype}")
    _Defaults.float_dtype = dtype


def _dtype_name(dt):
    return f"pydl.{np.dtype(dt).name}"


class device(str):
    """A device name, ``"cpu"`` or ``"cuda"`` (``"cuda:0"``), comparing equal to the string.

    >>> pydl.device("cuda:0").type, pydl.device("cpu") == "cpu"
    ('cuda', True)
    """

    def __new__(cls, spec="cpu", index=None):
        spec = str(spec)
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {spec!r}")
        if index is not None:
            spec = f"{kind}:{index}"
        obj = super().__new__(cls, spec)
        obj.type = kind
        obj.index = _builtin_int(idx) if idx else index
        return obj


_CPU = device("cpu")
_ndarray = np.ndarray
_generic = np.generic
_new = object.__new__


def _make(data, grad_fn=None):
    """A tensor around ``data`` (no copy); computed by ``grad_fn`` when given."""
    if data.__class__ is not _ndarray and isinstance(data, _generic):
        data = np.asarray(data)  # NumPy returns scalars from 0-d operations
    t = _new(Tensor)
    t.data = data
    t.grad = None
    t.grad_fn = grad_fn
    t.requires_grad = grad_fn is not None
    return t


def _to_array(data, dtype=None):
    """Array from Python data with PyTorch's inference: floats -> default float, ints -> int64."""
    if isinstance(data, Tensor):
        arr = data.data
        return arr if dtype is None else arr.astype(dtype)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _nested_to_arrays(data)
    if dtype is not None:
        if hasattr(data, "__cuda_array_interface__"):  # a CuPy array stays on its device
            return data.astype(dtype)
        return np.array(data, dtype=dtype)
    if isinstance(data, np.ndarray) or (hasattr(data, "__cuda_array_interface__") and hasattr(data, "dtype")):
        return data.copy()
    arr = np.array(data)
    if arr.dtype.kind == "f":
        arr = arr.astype(_Defaults.float_dtype, copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "c":
        pass
    elif arr.dtype.kind != "b":
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} data of dtype {arr.dtype}")
    return arr


def _flat(xs):
    for x in xs:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _nested_to_arrays(xs):
    return [(_nested_to_arrays(x) if isinstance(x, (list, tuple)) else (x.data if isinstance(x, Tensor) else x))
            for x in xs]


class Tensor:
    """An n-dimensional array that records operations for automatic differentiation.

    ``Tensor(data, requires_grad=False)`` wraps an array without copying (``pydl.tensor``
    copies and infers the dtype like PyTorch).

    >>> x = pydl.tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum(); y.backward(); x.grad
    tensor([2., 4.])
    """

    __slots__ = ("data", "grad", "grad_fn", "requires_grad", "__weakref__", "__dict__")
    _hooks = None  # a list in the instance's __dict__ once register_hook is used (rare: not a slot)
    # ndarray op Tensor -> Tensor.__radd__ etc. (NumPy defers to us instead of converting).
    __array_ufunc__ = None

    def __init__(self, data=None, requires_grad=False, dtype=None):
        if data is None:
            data = np.empty(0, dtype=_Defaults.float_dtype)
        if isinstance(data, Tensor):
            data = data.data
        if not (isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")):
            data = _to_array(data, dtype)
        elif dtype is not None and data.dtype != dtype:
            data = data.astype(dtype)
        if data.__class__ is not _ndarray and isinstance(data, _generic):
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    _make = staticmethod(_make)

    # ----------------------------------------------------------------- properties
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def device(self):
        return _CPU if self.data.__class__ is _ndarray else device("cuda")

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def is_floating_point(self):
        return self.data.dtype.kind == "f"

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return self.data.size

    def element_size(self):
        return self.data.itemsize

    nelement = numel

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    __hash__ = object.__hash__

    # ------------------------------------------------------ conversion and copies
    def numpy(self, *, force=False):
        """The NumPy array (shared, not copied); like PyTorch, refused while it requires grad."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        data = self.data
        if data.__class__ is not _ndarray:
            if force or not isinstance(data, np.ndarray):
                return data.get() if hasattr(data, "get") else np.asarray(data)
        return data

    def __array__(self, dtype=None, copy=None):
        data = self.data
        if data.__class__ is not _ndarray and hasattr(data, "get"):
            data = data.get()
        return data if dtype is None else data.astype(dtype)

    def item(self):
        if self.data.size != 1:
            raise RuntimeError(f"a Tensor with {self.data.size} elements cannot be converted to Scalar")
        return self.data.item()

    def tolist(self):
        return self.__array__().tolist()

    def __float__(self):
        return _builtin_float(self.item())

    def __int__(self):
        return _builtin_int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return _builtin_int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.data.size} elements is ambiguous")
        return _builtin_bool(self.data.item())

    def detach(self):
        """A new leaf sharing the data, cut from the graph."""
        return _make(self.data)

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                               "computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if requires_grad and self.data.dtype.kind not in "fc":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self.data.dtype})")
        self.requires_grad = _builtin_bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            return
        import weakref

        ref = weakref.ref(self)

        def keep(g):
            t = ref()
            if t is not None:
                if t.grad is None:
                    t.grad = _make(g.copy())
                else:
                    t.grad.data = t.grad.data + g

        self.grad_fn.register_prehook(keep)

    def register_hook(self, hook):
        """``hook(grad) -> Tensor or None`` runs when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        else:
            def on_array(g):
                r = hook(_make(g))
                return None if r is None else (r.data if isinstance(r, Tensor) else r)

            self.grad_fn.register_prehook(on_array)
        return hook

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see pydl.autograd.backward)."""
        from .autograd.engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs)

    # ------------------------------------------------------------------ dtype/device
    def to(self, *args, **kwargs):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``: self when nothing changes."""
        dtype = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif isinstance(a, str):
                dev = a
            elif a is not None:
                dtype = a
        out = self
        if dev is not None and device(dev).type != self.device.type:
            out = _ops_shape.to_device(out, device(dev))
        if dtype is not None and np.dtype(dtype) != out.data.dtype:
            out = _ops_pointwise.cast(out, np.dtype(dtype))
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None):
        if dtype is None:
            return f"pydl.{self.data.dtype.name}"
        return self.to(dtype)

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def half(self):
        return self.to(float16)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def bool(self):
        return self.to(bool)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # --------------------------------------------------------------------- in place
    def _check_inplace(self, op):
        if self.requires_grad and GradMode.enabled:
            if self.grad_fn is None:
                raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation.")
            raise RuntimeError(f"{op}: in-place operations on a tensor that is part of the graph are not supported "
                               "by pydl's autograd; use the out-of-place operation")

    def zero_(self):
        self._check_inplace("zero_")
        self.data[...] = 0
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self.data[...] = value.data if isinstance(value, Tensor) else value
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        self.data[...] = src.data if isinstance(src, Tensor) else src
        return self

    def __repr__(self):
        return _format(self)

    def __str__(self):
        return _format(self)

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                               "protocol at the moment.  If you were attempting to deepcopy a module, this may be "
                               "because of a torch.nn.utils.weight_norm usage, see "
                               "https://github.com/pytorch/pytorch/pull/103001")
        if id(self) in memo:
            return memo[id(self)]
        new = _new(type(self))
        memo[id(self)] = new
        new.data = self.data.copy()
        new.grad = None if self.grad is None else self.grad.__deepcopy__(memo)
        new.grad_fn = None
        new.requires_grad = self.requires_grad
        for k, v in getattr(self, "__dict__", {}).items():
            import copy

            new.__dict__[k] = copy.deepcopy(v, memo)
        return new

    def __reduce_ex__(self, protocol):
        # pickles the values and the flag, never the graph (like PyTorch's leaves)
        return (_rebuild, (type(self), self.__array__(), self.requires_grad))

    # DLPack: zero-copy exchange with NumPy, CuPy and PyTorch
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()


def _rebuild(cls, data, requires_grad):
    t = _new(cls)
    t.data = data
    t.grad = None
    t.grad_fn = None
    t.requires_grad = requires_grad
    return t


def from_dlpack(ext_tensor):
    """A tensor sharing memory with any DLPack producer (a NumPy or CuPy array, a PyTorch
    tensor); GPU producers give a CuPy-backed tensor.

    >>> t = pydl.from_dlpack(np.arange(3.0))
    >>> t
    tensor([0., 1., 2.], dtype=pydl.float64)
    """
    dev_type = ext_tensor.__dlpack_device__()[0] if hasattr(ext_tensor, "__dlpack_device__") else 1
    if dev_type == 1:  # kDLCPU
        return _make(np.from_dlpack(ext_tensor))
    import cupy

    return _make(cupy.from_dlpack(ext_tensor))


def _format(t):
    data = t.__array__()
    extras = []
    if data.size == 0:
        body = "[]" if data.ndim == 1 else f"[], size={tuple(data.shape)}"
    else:
        fmt = _float_formatter(data) if data.dtype.kind == "f" else None
        body = np.array2string(data, separator=", ", prefix="tensor(",
                               formatter=None if fmt is None else {"float_kind": fmt}, threshold=1000, edgeitems=3)
    if data.dtype not in (float32, int64, bool) and not (data.dtype == _Defaults.float_dtype):
        extras.append(f"dtype={_dtype_name(data.dtype)}")
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _float_formatter(data):
    """PyTorch's style: integral values as ``1.``, else 4 decimals, scientific for wide ranges."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        fmt = str
    elif np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        def fmt(x):
            return f"{x:.0f}." if np.isfinite(x) else str(x)
    else:
        amax, amin = np.abs(finite).max(), np.abs(finite[finite != 0]).min() if np.any(finite != 0) else 0.0
        if amax >= 1e8 or (amin and amin < 1e-4) or (amin and amax / amin > 1e3 and amax > 1e3):
            def fmt(x):
                return f"{x:.4e}" if np.isfinite(x) else str(x)
        else:
            def fmt(x):
                return f"{x:.4f}" if np.isfinite(x) else str(x)
    width = max(len(fmt(x)) for x in data.reshape(-1)[:2000])
    return lambda x: fmt(x).rjust(width)


# The operations, attached to the class by the modules that define them.
from ._ops import pointwise as _ops_pointwise  # noqa: E402
from ._ops import shape as _ops_shape  # noqa: E402
from ._ops import methods as _ops_methods  # noqa: E402,F401

