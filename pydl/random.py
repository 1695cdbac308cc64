"""The global random generator: ``manual_seed`` makes a run reproducible.

One NumPy ``Generator`` (PCG64) serves ``randn``, ``rand``, ``randint``, dropout and the
``nn.init`` functions, so ``pydl.manual_seed(0)`` fixes all of them at once.
"""
import numpy as np

__all__ = ["default_generator", "initial_seed", "manual_seed", "seed"]


class _State:
    seed = 0x5EED
    generator = np.random.default_rng(0x5EED)


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
    return _State.generator


def seed():
    """Seed the generator from the operating system's entropy; returns the seed used."""
    s = int(np.random.SeedSequence().entropy) & 0x7FFFFFFFFFFFFFFF
    manual_seed(s)
    return s


def initial_seed():
    """The seed last given to ``manual_seed`` (or ``seed``)."""
    return _State.seed
