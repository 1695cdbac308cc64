"""Which array module owns an array (NumPy or CuPy), and the checks of device moves.

A tensor's ``.data`` is a NumPy array on the CPU and a CuPy array on a GPU. Most glue code
is written once with ``np.*`` calls, which CuPy answers through ``__array_ufunc__`` and
``__array_function__``; the calls that build a new array from nothing (``np.zeros``,
``np.arange``, ``np.random``), ``np.asarray`` and ``ufunc.at`` do not dispatch, so they go
through :func:`array_module` of an operand. CuPy is imported only when a GPU array or a
CUDA device is asked for: ``import pydl`` works without it.

    >>> import numpy as np
    >>> array_module(np.zeros(2)) is np
    True
"""
import numpy as np

__all__ = ["add_at", "array_module", "asarray_on", "check_same_device", "cupy", "device_name", "mixed_device_error",
           "to_device"]

_ndarray = np.ndarray


def cupy():
    """The cupy module where pydl's CUDA backend can run; RuntimeError saying why it cannot."""
    from . import cuda

    usable, why = cuda.status()
    if not usable:
        raise RuntimeError(f"CUDA is not available here: {why}")
    import cupy as cp

    return cp


def _is_cupy(x):
    return type(x).__module__.startswith("cupy")


def array_module(x):
    """``numpy`` for NumPy arrays, scalars and Python data; ``cupy`` for CuPy arrays."""
    if x.__class__ is _ndarray or not _is_cupy(x):
        return np
    import cupy as cp

    return cp


def _kind(a):
    """"cpu" / "cuda" for a NumPy / CuPy array, None for None, numbers and NumPy scalars."""
    if a.__class__ is _ndarray:
        return "cpu"
    return "cuda" if _is_cupy(a) else None


def device_name(x):
    """``"cuda"`` for a CuPy array, ``"cpu"`` for anything else (NumPy, a number)."""
    return _kind(x) or "cpu"


def mixed_device_error(op, *arrays):
    """The RuntimeError of an op given arrays on two devices (PyTorch's words, plus the op)."""
    found = list(dict.fromkeys(k for k in map(_kind, arrays) if k is not None)) + ["?", "?"]
    return RuntimeError(f"{op}: Expected all tensors to be on the same device, but found at least two devices, "
                        f"{found[0]} and {found[1]}!")


def check_same_device(op, *arrays):
    """Raise :func:`mixed_device_error` when the arrays (None and numbers skipped) are on two devices.

    All-NumPy costs one class test per array, so CPU paths can afford it.
    """
    seen = None
    for a in arrays:
        kind = _kind(a)
        if kind is None:
            continue
        if seen is None:
            seen = kind
        elif kind != seen:
            raise mixed_device_error(op, *arrays)


def to_device(x, dev):
    """Array ``x`` on device type ``dev`` ("cpu" or "cuda"): itself when it is there already."""
    if dev == "cpu":
        return x if x.__class__ is _ndarray or not _is_cupy(x) else x.get()
    cp = cupy()
    return cp.asarray(x)


def asarray_on(like, data, dtype=None):
    """``data`` (a number, a list, an array) as an array on the device of array ``like``."""
    if like.__class__ is _ndarray or not _is_cupy(like):
        return np.asarray(data, dtype=dtype)
    import cupy as cp

    return cp.asarray(data, dtype=dtype)


def add_at(target, index, values):
    """``np.add.at`` on NumPy or CuPy arrays: an unbuffered scatter-add (repeated indices add up)."""
    if target.__class__ is _ndarray:
        np.add.at(target, index, values)
        return
    import cupy as cp

    at = getattr(cp.add, "at", None)
    if at is not None:
        at(target, index, values)
    else:  # CuPy before ufunc.at
        import cupyx

        cupyx.scatter_add(target, index, values)
