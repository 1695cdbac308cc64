"""Where the data pipeline draws its random numbers from.

Outside a DataLoader, transforms draw from pydl's global generator (``pydl.manual_seed``
fixes them). Inside one, each batch gets its own generator, seeded from one number the
loader draws when an epoch starts plus the batch's index, and installed for the thread
that loads the batch. So a seeded run sees the same augmentations whatever
``num_workers`` is and whichever thread loads which batch.
"""
import contextlib
import threading

import numpy as np

from .. import random as _pydl_random

__all__ = ["as_generator", "batch_generator", "generator", "using_generator"]

_local = threading.local()


def generator():
    """The NumPy Generator a transform should draw from in this thread, now."""
    g = getattr(_local, "generator", None)
    return g if g is not None else _pydl_random.default_generator()


@contextlib.contextmanager
def using_generator(gen):
    """Make ``gen`` this thread's data generator for the duration of a ``with`` block."""
    previous = getattr(_local, "generator", None)
    _local.generator = gen
    try:
        yield gen
    finally:
        _local.generator = previous


def batch_generator(base_seed, index):
    """The generator of batch ``index`` in an epoch whose loader drew ``base_seed``."""
    return np.random.default_rng([int(index), int(base_seed)])


def as_generator(generator_or_seed, op):
    """A NumPy Generator from ``None`` (pydl's global one, looked up now), an int seed or a Generator."""
    if generator_or_seed is None:
        return _pydl_random.default_generator()
    if isinstance(generator_or_seed, np.random.Generator):
        return generator_or_seed
    if isinstance(generator_or_seed, (int, np.integer)) and not isinstance(generator_or_seed, bool):
        return np.random.default_rng(int(generator_or_seed))
    raise TypeError(f"{op}: generator must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator_or_seed).__name__}")
