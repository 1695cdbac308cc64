"""The global random generator: ``manual_seed`` makes a run reproducible.

One NumPy ``Generator`` (PCG64) serves ``randn``, ``rand``, ``randint``, dropout and the
``nn.init`` functions, so ``pydl.manual_seed(0)`` fixes all of them at once. Draws made on
a GPU (``randn(..., device="cuda")``, dropout of a GPU tensor) come from a CuPy
``RandomState`` seeded by the same ``manual_seed`` (created on first use, so seeding never
imports CuPy); ``manual_seed`` also seeds CuPy's own global generator when CuPy is loaded.
"""
import sys

import numpy as np

__all__ = ["cuda_generator", "default_generator", "initial_seed", "manual_seed", "seed"]


class _State:
    seed = 0x5EED
    generator = np.random.default_rng(0x5EED)
    cuda_generator = None  # built from ``seed`` on first use


def default_generator():
    """The NumPy Generator every pydl random function draws from."""
    return _State.generator


def manual_seed(seed):
    """Seed the global generator (and return it).

    >>> import pydl
    >>> _ = pydl.manual_seed(0); a = pydl.rand(2)
    >>> _ = pydl.manual_seed(0); b = pydl.rand(2)
    >>> bool((a == b).all())
    True
    """
    seed = int(seed)
    _State.seed = seed
    _State.generator = np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF)
    _State.cuda_generator = None
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        from . import cuda

        if cuda.is_available():  # CuPy may be loaded on a machine without a device
            cupy.random.seed(seed & 0xFFFFFFFF)
    return _State.generator


def cuda_generator():
    """The CuPy ``RandomState`` of draws on the GPU, seeded from the last ``manual_seed``."""
    if _State.cuda_generator is None:
        import cupy

        _State.cuda_generator = cupy.random.RandomState(_State.seed & 0xFFFFFFFF)
    return _State.cuda_generator


def seed():
    """Seed the generator from the operating system's entropy; returns the seed used."""
    s = int(np.random.SeedSequence().entropy) & 0x7FFFFFFFFFFFFFFF
    manual_seed(s)
    return s


def initial_seed():
    """The seed last given to ``manual_seed`` (or ``seed``)."""
    return _State.seed
