"""The one parity helper every kernel test uses.

``assert_close(got, ref, dtype)`` compares shape, then dtype, then values against the
float64 reference with the tolerance of ``dtype`` -- ``|got - ref| <= atol + rtol * |ref|``
-- and on failure names the worst element, its index and how far past the tolerance it is.
``backends(op)`` parametrises a test over every backend of an op, CUDA included (skipped,
visibly, where it cannot run).
"""
import numpy as np
import pytest

import pydl
from pydl import kernels

# DESIGN.md's tolerances against the float64 reference, with headroom for float64 itself.
TOLERANCE = {
    np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),
    np.dtype(np.float64): dict(rtol=1e-9, atol=1e-11),
}

FLOAT_DTYPES = [np.float32, np.float64]


def to_numpy(x):
    """A NumPy array from a NumPy or CuPy array."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


def assert_close(got, ref, dtype, *, rtol=None, atol=None, what="result"):
    got = to_numpy(got)
    ref = np.asarray(ref)
    dtype = np.dtype(dtype)
    tol = TOLERANCE[dtype]
    rtol = tol["rtol"] if rtol is None else rtol
    atol = tol["atol"] if atol is None else atol
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    if got.size == 0:
        return
    ref64 = ref.astype(np.float64)
    got64 = got.astype(np.float64)
    same_nonfinite = (~np.isfinite(ref64)) & ((got64 == ref64) | (np.isnan(got64) & np.isnan(ref64)))
    err = np.where(same_nonfinite, 0.0, np.abs(got64 - ref64))
    allowed = atol + rtol * np.where(np.isfinite(ref64), np.abs(ref64), 0.0)
    excess = np.where(np.isnan(err), np.inf, err - allowed)
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    if excess[worst] > 0:
        raise AssertionError(
            f"{what}: {np.count_nonzero(excess > 0)} of {excess.size} elements past tolerance "
            f"(rtol={rtol}, atol={atol}); worst at index {tuple(int(i) for i in worst)}: "
            f"got {got64[worst]!r}, expected {ref64[worst]!r}, |diff| {err[worst]:.3g} "
            f"is {err[worst] / allowed[worst]:.3g}x the allowed {allowed[worst]:.3g}")


def backends(op, fast_only=True):
    """pytest params over the backends of ``op`` (without the reference when fast_only)."""
    names = [b for b in kernels.BACKENDS if not (fast_only and b == "reference")]
    params = []
    for b in names:
        if b == "cuda":
            if op not in kernels.ops("cuda"):
                continue
            usable, why = pydl.cuda.status()
            params.append(pytest.param(b, marks=[pytest.mark.cuda, pytest.mark.skipif(not usable, reason=why)]))
        elif op in kernels.ops(b):
            params.append(b)
    return params


def xp_for(backend):
    """The array module of a backend: NumPy, or CuPy for cuda."""
    if backend == "cuda":
        import cupy

        return cupy
    return np


def isa_paths():
    """The CPU ISA paths this machine can run, for tests that sweep them."""
    order = ["generic", "avx2", "avx512"]
    return order[: order.index(pydl._C._best_isa()) + 1]
