"""Synthetic data sets: made on the spot from a seed, for tests, demos and sanity checks.

* spirals -- the seeds' (CS231n's) K interleaved 2-D spirals: not linearly separable, a
  two-layer network separates them;
* Gaussian blobs -- K clusters in D dimensions: a linear classifier suffices;
* shapes -- small greyscale images of a circle, a square, a triangle or a cross at random
  sizes and places: a tiny image-classification problem with no files at all;
* ``FakeData`` -- torchvision's: uniform random images with random labels (for timing and
  plumbing; nothing to learn).

Train and test splits of the same set use different seeds (``seed`` and ``seed + 1``).
"""
import numpy as np

from ..dataset import TensorDataset
from ._base import ImageDataset

__all__ = ["Blobs", "FakeData", "SHAPE_CLASSES", "Shapes", "Spirals", "make_blobs", "make_shapes", "make_spirals"]


def make_spirals(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """Points (n_per_class * n_classes, 2) float32 on ``n_classes`` spiral arms, and labels.

    >>> x, y = make_spirals(5, 3)
    >>> x.shape, y.tolist()
    ((15, 2), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    """
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes), n_per_class)
    t = (np.linspace(0.0, 4.0, n_per_class)[None, :] + 4.0 * np.arange(n_classes)[:, None]).ravel()
    t = t + rng.standard_normal(t.shape) * noise
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    return x.astype(np.float32), y.astype(np.int64)


def make_blobs(n_samples=300, n_classes=3, n_features=2, std=1.0, spread=10.0, seed=0, centers_seed=None):
    """Gaussian clusters: centres uniform in [-spread, spread]^n_features (drawn from
    ``centers_seed``, default ``seed``), ``std`` around each; labels balanced.

    >>> x, y = make_blobs(6, 2, 3)
    >>> x.shape, sorted(y.tolist())
    ((6, 3), [0, 0, 0, 1, 1, 1])
    """
    centers_rng = np.random.default_rng([seed if centers_seed is None else centers_seed, 7])
    centers = centers_rng.uniform(-spread, spread, size=(n_classes, n_features))
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_samples) % n_classes)
    x = centers[y] + std * rng.standard_normal((n_samples, n_features))
    return x.astype(np.float32), y.astype(np.int64)


SHAPE_CLASSES = ["circle", "square", "triangle", "cross"]


def make_shapes(n_samples=1000, size=28, seed=0, noise=0.05):
    """Greyscale images (n_samples, 1, size, size) float32 in [0, 1] of one filled shape each
    (circle, square, triangle, cross; radius 20-40 % of the image side, random centre) plus a
    little Gaussian noise, and the labels (index into ``SHAPE_CLASSES``)."""
    if size < 8:
        raise ValueError(f"make_shapes: size must be at least 8, got {size}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(SHAPE_CLASSES), size=n_samples)
    radius = rng.uniform(0.2, 0.4, size=n_samples) * size
    cy = rng.uniform(radius, size - radius)
    cx = rng.uniform(radius, size - radius)
    grid = np.arange(size, dtype=np.float64) + 0.5
    dy = grid[None, :, None] - cy[:, None, None]             # (N, size, 1)
    dx = grid[None, None, :] - cx[:, None, None]             # (N, 1, size)
    r = radius[:, None, None]
    circle = dy ** 2 + dx ** 2 <= r ** 2
    square = (np.abs(dy) <= 0.8 * r) & (np.abs(dx) <= 0.8 * r)
    triangle = (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55)
    arm = 0.3 * r
    cross = ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    masks = np.stack(np.broadcast_arrays(circle, square, triangle, cross))     # (4, N, size, size)
    images = masks[y, np.arange(n_samples)].astype(np.float32)
    images += noise * rng.standard_normal(images.shape).astype(np.float32)
    return np.clip(images, 0.0, 1.0)[:, None], y.astype(np.int64)


class Spirals(TensorDataset):
    """``make_spirals`` as a data set of ``(point (2,) float32, label int)``."""

    def __init__(self, train=True, n_per_class=100, n_classes=3, noise=0.2, seed=0):
        self.train = bool(train)
        super().__init__(*make_spirals(n_per_class, n_classes, noise, seed if train else seed + 1))


class Blobs(TensorDataset):
    """``make_blobs`` as a data set of ``(point (n_features,) float32, label int)``."""

    def __init__(self, train=True, n_samples=300, n_classes=3, n_features=2, std=1.0, seed=0):
        self.train = bool(train)
        super().__init__(*make_blobs(n_samples, n_classes, n_features, std, seed=seed if train else seed + 1,
                                     centers_seed=seed))


class Shapes(ImageDataset):
    """``make_shapes`` as an image data set of ``(image (1, size, size), label int)``; 4 classes."""

    classes = SHAPE_CLASSES

    def __init__(self, train=True, n_samples=1000, size=28, seed=0, transform=None, target_transform=None):
        self.train = bool(train)
        images, labels = make_shapes(n_samples, size, seed if train else seed + 1)
        super().__init__(images, labels, transform, target_transform, scale=1.0)


class FakeData(ImageDataset):
    """torchvision's FakeData: ``size`` uniform random images of ``image_size`` (C, H, W) with
    random labels in [0, num_classes); image i depends only on ``i + random_offset``."""

    def __init__(self, size=1000, image_size=(3, 224, 224), num_classes=10, transform=None, target_transform=None,
                 random_offset=0):
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 3 or min(image_size) <= 0:
            raise ValueError(f"FakeData: image_size must be (C, H, W), got {image_size}")
        if int(num_classes) < 1 or int(size) < 0:
            raise ValueError(f"FakeData: need size >= 0 and num_classes >= 1, got {size}, {num_classes}")
        images = np.empty((int(size),) + image_size, dtype=np.float32)
        labels = np.empty(int(size), dtype=np.int64)
        for i in range(int(size)):
            rng = np.random.default_rng(i + int(random_offset))
            images[i] = rng.random(image_size, dtype=np.float32)
            labels[i] = rng.integers(0, int(num_classes))
        self.classes = [str(c) for c in range(int(num_classes))]
        super().__init__(images, labels, transform, target_transform, scale=1.0)
