"""What every CUDA family module shares: CuPy, the compiled module, argument checks.

The package imports without CuPy or the CUDA build (``cp`` and ``_C_cuda`` are then None)
so that its ``OPS`` can be listed anywhere; :func:`pydl.kernels.backend` checks that the
backend can run before handing it out.
"""
try:
    import cupy as cp

    from ... import _C_cuda
except ImportError:  # no CuPy or no CUDA build: pydl.cuda.status() says which
    cp = _C_cuda = None


def stream():
    """The raw handle of CuPy's current stream: every kernel is launched on it."""
    return cp.cuda.get_current_stream().ptr


def float_array(x, op, name):
    """``x`` itself when it is a float32 / float64 CuPy array; TypeError naming op and name else."""
    if not isinstance(x, cp.ndarray):
        raise TypeError(f"{op}: {name} must be a cupy.ndarray, got {type(x).__name__}")
    if x.dtype not in (cp.float32, cp.float64):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")
    return x


def element_strides(x):
    """``(x, strides in elements)``, copying x first when its strides are not whole elements."""
    if any(s % x.itemsize for s in x.strides):
        x = cp.ascontiguousarray(x)
    return x, [s // x.itemsize for s in x.strides]


def ptr(x):
    """The device pointer of ``x``, or 0 for None (an absent optional array)."""
    return 0 if x is None else x.data.ptr


def launcher(name, dtype):
    """The compiled entry ``<name>_f32`` or ``<name>_f64`` of ``_C_cuda`` for ``dtype``."""
    return getattr(_C_cuda, f"{name}_f32" if dtype == cp.float32 else f"{name}_f64")
