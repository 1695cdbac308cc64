"""Which kernel runs an op of the convolutional family, and the glue every such op shares.

The kernels (:mod:`pydl.kernels`) work on plain arrays; the functions here pick the
backend that owns the array (``cpu`` for NumPy, ``cuda`` for CuPy), make the operands
share one floating dtype the kernels take (float32 or float64), and build the edges of the
autograd node. A CuPy array whose op has no CUDA kernel yet runs on the CPU kernel through
a host round trip (correct, slow; a GPU kernel replaces it without any change here).
"""
import numpy as np

from ... import kernels as _registry
from ..._device import check_same_device, to_device
from ...kernels import cpu as _cpu
from ...tensor import Tensor

__all__ = ["as_float", "edge", "kernel", "needs_of", "tensor_arg"]

_ndarray = np.ndarray
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def kernel(name, arr, inplace=()):
    """The ``name`` kernel of the backend owning ``arr`` (the CPU module for NumPy).
    ``inplace``: positions of arguments the kernel updates in place (copied back after a
    host round trip)."""
    if arr.__class__ is _ndarray:
        return getattr(_cpu, name)
    cuda = _registry.backend("cuda")
    if name in cuda.OPS:
        return getattr(cuda, name)
    return _host_round_trip(getattr(_cpu, name), inplace)


def _host_round_trip(fn, inplace):
    def on(where, a):
        if isinstance(a, tuple):
            return tuple(on(where, v) for v in a)
        is_array = isinstance(a, np.ndarray) or hasattr(a, "__cuda_array_interface__")
        return to_device(a, where) if is_array else a

    def run(*args, **kwargs):
        host_args = [on("cpu", a) for a in args]
        out = fn(*host_args, **{k: on("cpu", v) for k, v in kwargs.items()})
        for i in inplace:  # running statistics updated on the host go back to the device
            if args[i] is not host_args[i]:
                args[i][...] = to_device(host_args[i], "cuda")
        return on("cuda", out)

    return run


def tensor_arg(x, op, name="input"):
    """The array of Tensor ``x``; a clear TypeError for anything else."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x.data


def as_float(op, *tensors):
    """The arrays of ``tensors`` (None passes through) in one float dtype the kernels take:
    float32 or float64, the promotion of the floating inputs (float16 computes in float32).
    Arrays on two devices raise the RuntimeError naming ``op`` and both devices."""
    arrays = [None if t is None else t.data for t in tensors]
    dts = [a.dtype for a in arrays if a is not None]
    cls = arrays[0].__class__
    for a in arrays:
        if a is not None:
            if a.dtype.kind != "f":
                raise TypeError(f"{op}: expected floating point tensors, got {a.dtype}")
            if a.__class__ is not cls:
                check_same_device(op, *arrays)
    dt = np.result_type(*dts) if dts else np.dtype(np.float32)
    if dt not in _FLOATS:
        dt = np.dtype(np.float64) if dt.itemsize > 8 else np.dtype(np.float32)
    return [a if a is None or a.dtype == dt else a.astype(dt) for a in arrays]


def edge(t):
    """The autograd edge of an optional tensor: its grad_fn, itself (a leaf that requires
    grad), or None."""
    if t is None:
        return None
    return t.grad_fn or (t if t.requires_grad else None)


def needs_of(edges):
    """The kernels' ``needs=`` flags: which gradients someone will read."""
    return tuple(e is not None for e in edges)
