"""Augmentations that mix pairs of images *and* their labels, on a whole batch.

Mixup blends two images and their labels with one weight; CutMix pastes a box of one image
into another and weights the labels by the box's area. Both turn class indices into class
probabilities (N, num_classes), which ``F.cross_entropy`` takes as targets. Randomness
comes from the data generator (see :mod:`pydl.data._random`) unless ``generator`` is given.
"""
import math

import numpy as np

from . import _random
from ._arrays import _unwrap, _wrap

__all__ = ["CutMix", "MixUp", "cutmix", "mixup"]


def _soft_targets(y, num_classes, op, dtype):
    if y.ndim == 2 and y.dtype.kind == "f":
        return y.astype(dtype, copy=False)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must be class indices (N,) or probabilities (N, C), got {y.dtype} "
                         f"{y.shape}")
    if num_classes is None:
        raise ValueError(f"{op}: num_classes is needed to turn class indices into probabilities")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{op}: target values must lie in [0, {num_classes}), got {y.min()}..{y.max()}")
    return np.eye(num_classes, dtype=dtype)[y]


def _mix_inputs(x, y, op):
    xa, xt = _unwrap(x, op)
    ya, yt = _unwrap(y, op)
    if xa.ndim < 2 or ya.shape[0] != xa.shape[0]:
        raise ValueError(f"{op}: input {xa.shape} and target {ya.shape} must share their first dimension")
    return xa, xt, ya, yt


def mixup(input, target, alpha=1.0, num_classes=None, generator=None):
    """Mixup (Zhang et al., 2018): blend each image with another of the batch,
    ``lam * x + (1 - lam) * x[perm]``, and their labels the same way; lam ~ Beta(alpha, alpha),
    one per batch. Returns (mixed input, target probabilities (N, num_classes) float32).

    >>> x, y = mixup(np.eye(2, dtype=np.float32), np.array([0, 1]), num_classes=2, generator=0)
    >>> bool(np.allclose(y.sum(1), 1)), bool(np.allclose(x, y))
    (True, True)
    """
    op = "mixup"
    xa, xt, ya, yt = _mix_inputs(input, target, op)
    gen = _random.generator() if generator is None else _random.as_generator(generator, op)
    dtype = xa.dtype if xa.dtype.kind == "f" else np.float32
    soft = _soft_targets(ya, num_classes, op, dtype)
    lam = float(gen.beta(alpha, alpha)) if alpha > 0 else 1.0
    perm = gen.permutation(xa.shape[0])
    mixed = lam * xa.astype(dtype, copy=False) + (1 - lam) * xa[perm].astype(dtype, copy=False)
    return _wrap(mixed.astype(dtype, copy=False), xt), _wrap(lam * soft + (1 - lam) * soft[perm], yt)


def cutmix(input, target, alpha=1.0, num_classes=None, generator=None):
    """CutMix (Yun et al., 2019): paste a random box from another image of the batch into each
    image, and mix the labels in proportion to the pasted area. The box covers about
    ``1 - lam`` of the image, lam ~ Beta(alpha, alpha); lam is then corrected to the box's
    real (clipped) area. Input (N, C, H, W). Returns (mixed input, target probabilities)."""
    op = "cutmix"
    xa, xt, ya, yt = _mix_inputs(input, target, op)
    if xa.ndim != 4:
        raise ValueError(f"{op}: input must be a batch of images (N, C, H, W), got shape {xa.shape}")
    gen = _random.generator() if generator is None else _random.as_generator(generator, op)
    dtype = xa.dtype if xa.dtype.kind == "f" else np.float32
    soft = _soft_targets(ya, num_classes, op, dtype)
    N, _, H, W = xa.shape
    lam = float(gen.beta(alpha, alpha)) if alpha > 0 else 1.0
    perm = gen.permutation(N)
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(H * cut), int(W * cut)
    cy, cx = int(gen.integers(0, H)), int(gen.integers(0, W))
    y0, y1 = np.clip(cy - ch // 2, 0, H), np.clip(cy + ch // 2, 0, H)
    x0, x1 = np.clip(cx - cw // 2, 0, W), np.clip(cx + cw // 2, 0, W)
    mixed = xa.astype(dtype, copy=True)
    mixed[:, :, y0:y1, x0:x1] = xa[perm][:, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(H * W)
    return _wrap(mixed, xt), _wrap(lam * soft + (1 - lam) * soft[perm], yt)


class MixUp:
    """Batch transform ``(input, target) -> (mixed input, target probabilities)`` (see :func:`mixup`)."""

    def __init__(self, alpha=1.0, num_classes=None):
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(self, input, target):
        return mixup(input, target, self.alpha, self.num_classes)

    def __repr__(self):
        return f"MixUp(alpha={self.alpha}, num_classes={self.num_classes})"


class CutMix:
    """Batch transform ``(input, target) -> (mixed input, target probabilities)`` (see :func:`cutmix`)."""

    def __init__(self, alpha=1.0, num_classes=None):
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(self, input, target):
        return cutmix(input, target, self.alpha, self.num_classes)

    def __repr__(self):
        return f"CutMix(alpha={self.alpha}, num_classes={self.num_classes})"
