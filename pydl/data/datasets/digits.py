"""Digits: the 1,797 handwritten digits bundled with scikit-learn (no download).

8x8 greyscale images with 17 levels (0..16) of the digits 0-9, from the UCI "Optical
Recognition of Handwritten Digits" set. ``size=28`` resizes them by bilinear interpolation
to 1x28x28, the MNIST / LeNet-5 input size. The train / test split is fixed: 20 % of every
class (359 images in all) is held out, chosen with a seeded generator that does not depend on
``pydl.manual_seed``, so every run and every user sees the same test set.
"""
import functools
import gzip
import importlib.util
import os

import numpy as np

from .._resize import resize
from ._base import ImageDataset

__all__ = ["Digits", "load_digits_arrays"]

TEST_FRACTION = 0.2
SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _raw_digits():
    """(images (1797, 8, 8) uint8 0..16, labels (1797,) int64), read from scikit-learn's bundled file."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it (~1 s)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("Digits needs scikit-learn, which bundles the data: pip install scikit-learn "
                          "(or pip install \"pydl[data]\")")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
        if table.ndim != 2 or table.shape[1] != 65:
            raise ValueError(f"Digits: {path} should hold rows of 64 pixels and a label, got shape {table.shape}")
        images, labels = table[:, :64], table[:, 64]
    else:  # a scikit-learn that keeps the file elsewhere: ask it
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels = bunch.data, bunch.target
    return images.reshape(-1, 8, 8).astype(np.uint8), labels.astype(np.int64)


def _split(labels, test_fraction, seed):
    """Stratified, seeded: the indices (train, test), each sorted."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test.extend(rng.permutation(members)[:int(round(test_fraction * len(members)))].tolist())
    test = np.sort(np.asarray(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


@functools.lru_cache(maxsize=4)
def load_digits_arrays(train=True, size=8):
    """Images (N, 1, size, size) float32 in [0, 1] and labels (N,) int64 of one split."""
    images, labels = _raw_digits()
    train_idx, test_idx = _split(labels, TEST_FRACTION, SPLIT_SEED)
    idx = train_idx if train else test_idx
    x = images[idx, None].astype(np.float32) / np.float32(16.0)
    if size != 8:
        x = np.clip(resize(x, (size, size)), 0.0, 1.0).astype(np.float32)
    x.flags.writeable = False
    return x, labels[idx]


class Digits(ImageDataset):
    """scikit-learn's handwritten digits, as 1x8x8 images (``size=8``) or, resized bilinearly,
    1x28x28 (``size=28``, any size >= 8 works). ``train=True``: 1,438 images; ``False``: 359.

    Samples are ``(image (1, size, size) float32 in [0, 1], label int)``. Needs scikit-learn
    (``pip install "pydl[data]"``).

    >>> ds = Digits(train=False, size=28)
    >>> len(ds), ds[0][0].shape, ds[0][1]
    (359, (1, 28, 28), 5)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train=True, size=8, transform=None, target_transform=None):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"Digits: size must be an integer >= 8 (8 for the raw images, 28 for LeNet-5), "
                             f"got {size!r}")
        self.train = bool(train)
        self.size = int(size)
        images, labels = load_digits_arrays(self.train, self.size)
        super().__init__(images, labels, transform, target_transform, scale=1.0)
