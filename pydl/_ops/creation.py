"""Creating tensors: from data, filled with a value, ranges, and random draws.

Defaults follow PyTorch: float tensors are float32 (``pydl.get_default_dtype()``), integer
ones int64. Random functions draw from the global generator of :mod:`pydl.random`
(seeded by ``pydl.manual_seed``); with ``device="cuda"`` from its GPU twin (CuPy's, seeded
by the same call), and constant tensors are built on the GPU directly. ``*_like``
functions keep the input's device unless ``device=`` says otherwise.
"""
import numpy as np

from .. import _device
from .. import random as _random
from ..tensor import Tensor, _Defaults, _make, _to_array
from ..tensor import device as _device_name
from .shape import _sizes


def _on_gpu(device):
    return device is not None and _device_name(device).type == "cuda"


def _xp(device, op):
    """The array module that builds a tensor for ``device``: NumPy, or CuPy for cuda (a
    RuntimeError naming ``op`` and why where CUDA cannot run)."""
    if not _on_gpu(device):
        return np
    try:
        return _device.cupy()
    except RuntimeError as e:
        raise RuntimeError(f"{op}(device='{device}'): {e}") from None


def _finish(data, device, requires_grad):
    t = _make(data)
    if device is not None and _device_name(device).type != t.device.type:
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype):
    return _Defaults.float_dtype if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor copying ``data`` (nested lists, numbers, arrays, tensors).

    >>> pydl.tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    >>> pydl.tensor([1.0, 2.0], requires_grad=True)
    tensor([1., 2.], requires_grad=True)
    """
    if isinstance(data, Tensor):
        arr = data.data.astype(dtype if dtype is not None else data.dtype, copy=True)
    else:
        arr = _to_array(data, None if dtype is None else np.dtype(dtype))
    return _finish(arr, device, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but without a copy when ``data`` already is an array of that dtype."""
    if isinstance(data, Tensor):
        return data.to(dtype) if dtype is not None else data
    if (isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")) and \
            (dtype is None or np.dtype(dtype) == data.dtype):
        return _finish(data, device, False)
    return tensor(data, dtype, device)


def from_numpy(array):
    """A tensor sharing memory with the NumPy ``array`` (no copy, dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    return _make(array)


def _filled(fill, size, dtype, device, requires_grad, op):
    """``fill(xp, shape, dtype)`` with xp the array module of ``device``."""
    shape = _sizes(size, op)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"{op}: Trying to create tensor with negative dimension: {list(shape)}")
    return _finish(fill(_xp(device, op), shape, dtype), device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _filled(lambda xp, s, d: xp.zeros(s, d), size, _float_dtype(dtype), device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _filled(lambda xp, s, d: xp.ones(s, d), size, _float_dtype(dtype), device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad=False):
    """An uninitialised tensor."""
    return _filled(lambda xp, s, d: xp.empty(s, d), size, _float_dtype(dtype), device, requires_grad, "empty")


def _fill_dtype(value):
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(value, complex):
        return np.dtype(np.complex64)
    return _Defaults.float_dtype


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value`` (its dtype inferred from the value, like PyTorch)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dt = _fill_dtype(fill_value) if dtype is None else np.dtype(dtype)
    return _filled(lambda xp, s, d: xp.full(s, fill_value, dtype=d), (size,) if isinstance(size, int) else size,
                   dt, device, requires_grad, "full")


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from start (default 0) up to end, excluded, by step.

    >>> pydl.arange(5)
    tensor([0, 1, 2, 3, 4])
    """
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, (int, np.integer)) for v in vals) else _Defaults.float_dtype
    # computed in float64 then cast, so float32 ranges have PyTorch's length and values
    xp = _xp(device, "arange")
    data = xp.arange(*vals, dtype=np.float64 if np.dtype(dtype).kind == "f" else dtype).astype(dtype)
    return _finish(data, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from start to end, both included."""
    return _finish(np.linspace(start, end, int(steps), dtype=np.float64).astype(_float_dtype(dtype)), device,
                   requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    return _finish(np.logspace(start, end, int(steps), base=base).astype(_float_dtype(dtype)), device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The identity matrix (n x m)."""
    return _finish(_xp(device, "eye").eye(n, m, dtype=_float_dtype(dtype)), device, requires_grad)


def _generator(generator):
    return _random.default_generator() if generator is None else generator


def _gpu_generator(generator, device, op):
    """CuPy's seeded RandomState for a draw on the GPU without an explicit generator, else
    None (the draw is made on the host by the NumPy generator, then moved)."""
    if generator is not None or not _on_gpu(device):
        return None
    _xp(device, op)  # the clear error where CUDA cannot run
    return _random.cuda_generator()


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    shape = _sizes(size, "randn")
    gpu = _gpu_generator(generator, device, "randn")
    if gpu is not None:
        data = gpu.standard_normal(shape, dtype=np.float64).astype(_float_dtype(dtype))
    else:
        data = _generator(generator).standard_normal(shape, dtype=np.float64).astype(_float_dtype(dtype))
    return _finish(data, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    shape = _sizes(size, "rand")
    gpu = _gpu_generator(generator, device, "rand")
    if gpu is not None:
        data = gpu.random_sample(shape, dtype=np.float64).astype(_float_dtype(dtype))
    else:
        data = _generator(generator).random(shape, dtype=np.float64).astype(_float_dtype(dtype))
    return _finish(data, device, requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: size is required, e.g. randint(10, (3,)) or randint(0, 10, (3,))")
        low, high, size = 0, low, high
    shape = _sizes((size,) if isinstance(size, int) else size, "randint")
    if high <= low:
        raise RuntimeError(f"randint: expects 'from' ({low}) to be less than 'to' ({high})")
    gpu = _gpu_generator(generator, device, "randint")
    if gpu is not None:
        data = gpu.randint(low, high, size=shape, dtype=np.int64)
    else:
        data = _generator(generator).integers(low, high, size=shape, dtype=np.int64)
    return _finish(data.astype(dtype) if dtype is not None else data, device, requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None):
    """A random permutation of 0..n-1."""
    gpu = _gpu_generator(generator, device, "randperm")
    data = (gpu or _generator(generator)).permutation(int(n)).astype(np.int64 if dtype is None else dtype)
    return _finish(data, device, False)


def normal(mean, std, size=None, *, generator=None, dtype=None):
    """Normal samples with the given mean and std (numbers with ``size``, or tensors)."""
    m = mean.data if isinstance(mean, Tensor) else mean
    s = std.data if isinstance(std, Tensor) else std
    shape = np.broadcast_shapes(np.shape(m), np.shape(s)) if size is None else _sizes((size,), "normal")
    out_dt = getattr(m, "dtype", None) if isinstance(mean, Tensor) else None
    draws = _generator(generator).standard_normal(shape)
    gpu = next((v for v in (m, s) if hasattr(v, "__cuda_array_interface__")), None)
    data = m + s * (draws if gpu is None else _device.asarray_on(gpu, draws))  # on the device of the tensors
    return _make(_device.asarray_on(data, data).astype(out_dt or _float_dtype(dtype)))


def _like(input, dtype):
    return input.data.dtype if dtype is None else np.dtype(dtype)


def _like_device(input, device):
    """``device``, or the input's own when None (the ``*_like`` functions keep the device)."""
    return input.device if device is None else device


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return zeros(*input.shape, dtype=_like(input, dtype), device=_like_device(input, device),
                 requires_grad=requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    return ones(*input.shape, dtype=_like(input, dtype), device=_like_device(input, device),
                requires_grad=requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False):
    return empty(*input.shape, dtype=_like(input, dtype), device=_like_device(input, device),
                 requires_grad=requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(tuple(input.shape), fill_value, dtype=_like(input, dtype), device=_like_device(input, device),
                requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):
    return randn(*input.shape, dtype=_like(input, dtype), device=_like_device(input, device),
                 requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):
    return rand(*input.shape, dtype=_like(input, dtype), device=_like_device(input, device),
                requires_grad=requires_grad)


def randint_like(input, low=0, high=None, dtype=None, device=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=_like(input, dtype), device=_like_device(input, device))
