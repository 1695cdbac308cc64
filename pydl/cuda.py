"""Whether pydl's CUDA backend can run here, and why not when it cannot.

The CUDA module (``pydl._C_cuda``) and CuPy are loaded lazily: ``import pydl`` works on a
machine with neither.
"""
import functools
import importlib

__all__ = ["built", "device_count", "is_available", "status", "synchronize"]


@functools.lru_cache(maxsize=None)
def _module():
    try:
        return importlib.import_module("pydl._C_cuda"), None
    except ImportError as e:
        return None, f"pydl was built without CUDA ({e})"


def built():
    """True when this build of pydl contains the CUDA kernels."""
    return _module()[0] is not None


@functools.lru_cache(maxsize=None)
def status():
    """``(usable, reason)``: whether the CUDA backend can run, with the device or the reason."""
    mod, why = _module()
    if mod is None:
        return False, why
    ok, detail = mod.device_status()
    if not ok:
        return False, f"built for sm {mod.archs}, but {detail}"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False, f"{detail}, but CuPy is not installed (pip install pydl[cuda])"
    return True, detail


def is_available():
    """True when CUDA kernels can run: built with CUDA, a device present, CuPy importable."""
    return status()[0]


def device_count():
    """How many CUDA devices pydl can use here (0 where the backend cannot run)."""
    if not is_available():
        return 0
    import cupy

    return cupy.cuda.runtime.getDeviceCount()


def synchronize():
    """Wait for all work queued on the current CUDA device (what GPU timings need before
    reading a clock); RuntimeError saying why where CUDA cannot run."""
    usable, why = status()
    if not usable:
        raise RuntimeError(f"synchronize: CUDA is not available here: {why}")
    import cupy

    cupy.cuda.Device().synchronize()
