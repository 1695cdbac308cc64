"""The kernel registry: every hot operation in three backends with one signature.

=============  =========================================  ==============================
backend        module                                     arrays
=============  =========================================  ==============================
``reference``  :mod:`pydl.kernels.reference` (NumPy)      any; computes in float64
``cpu``        :mod:`pydl.kernels.cpu` (C++, ``pydl._C``)  NumPy float32 / float64
``cuda``       :mod:`pydl.kernels.cuda` (``pydl._C_cuda``)  CuPy float32 / float64
=============  =========================================  ==============================

The reference is the specification: the readable textbook version, the oracle of every
parity test. Tests and benchmarks iterate over backends::

    >>> from pydl import kernels
    >>> kernels.available("gemm")  # doctest: +SKIP
    ['reference', 'cpu']
    >>> kernels.get("gemm", "cpu")  # doctest: +SKIP
    <built-in method gemm of PyCapsule object at ...>
"""
import importlib

__all__ = ["BACKENDS", "available", "backend", "get", "ops"]

BACKENDS = ("reference", "cpu", "cuda")


def backend(name):
    """The module of backend ``name``; ``cuda`` raises RuntimeError where it cannot run."""
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "cuda":
        from .. import cuda

        usable, why = cuda.status()
        if not usable:
            raise RuntimeError(f"the cuda kernel backend cannot run here: {why}")
    return importlib.import_module(f"{__name__}.{name}")


def _runs_here(name):
    if name != "cuda":
        return True
    from .. import cuda

    return cuda.is_available()


def ops(name="reference"):
    """The operations a backend implements, in the order its module lists them."""
    return tuple(importlib.import_module(f"{__name__}.{name}").OPS)


def available(op):
    """Backends that implement ``op`` and can run on this machine, reference first."""
    names = [b for b in BACKENDS if _runs_here(b) and op in ops(b)]
    if not names and op not in ops("reference"):
        raise ValueError(f"unknown kernel {op!r}; known: {', '.join(ops('reference'))}")
    return names


def get(op, backend_name="cpu"):
    """The function implementing ``op`` in ``backend_name``."""
    mod = backend(backend_name)
    if op not in mod.OPS:
        raise ValueError(f"kernel {op!r} has no {backend_name} implementation (available: {available(op)})")
    return getattr(mod, op)
