"""Semantic segmentation: a small fully convolutional network and mean IoU.

:class:`ShapesFCN` shows every down- and up-sampling the lecture lists: down by 2x2 max
pooling (its arg-max indices kept) and by a stride-2 convolution; up by "bed of nails"
max-unpooling (each value returns to the position its pooling arg-max came from, zeros
elsewhere), by nearest-neighbour up-sampling and by a stride-2 transposed convolution.
Every pixel gets class scores; the loss is per-pixel cross-entropy.

>>> mean_iou(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]), num_classes=2)
0.5833333333333333
"""
import numpy as np

from .. import nn
from ..nn import functional as F

__all__ = ["ShapesFCN", "mean_iou", "confusion_matrix"]


def confusion_matrix(pred, target, num_classes):
    """(K, K) counts: row = true class, column = predicted class (pixels with a target
    outside [0, K) are ignored)."""
    p, t = np.asarray(pred).reshape(-1), np.asarray(target).reshape(-1)
    ok = (t >= 0) & (t < num_classes)
    return np.bincount(num_classes * t[ok] + p[ok], minlength=num_classes ** 2).reshape(num_classes, num_classes)


def mean_iou(pred, target, num_classes):
    """Mean over classes of |pred = k and target = k| / |pred = k or target = k| (classes
    absent from both are left out)."""
    cm = confusion_matrix(pred, target, num_classes).astype(np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    return float(np.mean(inter[union > 0] / union[union > 0]))


def _conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class ShapesFCN(nn.Module):
    """(N, 3, H, W) -> (N, num_classes, H, W) logits; H and W multiples of 8.

    down: conv -> max pool 2x2 (indices kept) -> conv -> two stride-2 convs (to H/8: the
          context that tells a disc's inside from a rectangle's)
    up:   two stride-2 transposed convs (H/8 -> H/4 -> H/2, each adding the encoder's map)
          -> conv -> max-unpool with the kept indices (bed of nails) to H, plus a nearest
          up-sampled (x8) skip of the coarsest features -> conv -> 1x1 classifier
    """

    def __init__(self, num_classes=3, width=16):
        super().__init__()
        w = width
        self.enc1 = _conv(3, w)
        self.enc2 = _conv(w, 2 * w)
        self.down4 = _conv(2 * w, 2 * w, stride=2)
        self.down8 = nn.Sequential(_conv(2 * w, 4 * w, stride=2), _conv(4 * w, 4 * w))
        self.up8 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.up4 = nn.ConvTranspose2d(2 * w, 2 * w, 2, stride=2)
        self.dec2 = _conv(2 * w, w)
        self.dec1 = _conv(w, w)
        self.skip = nn.Conv2d(4 * w, w, 1)
        self.classifier = nn.Conv2d(w, num_classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)                                          # (N, w, H, W)
        p1, idx = F.max_pool2d(e1, 2, return_indices=True)         # (N, w, H/2, W/2) + arg-max
        e2 = self.enc2(p1)                                         # (N, 2w, H/2, W/2)
        d4 = self.down4(e2)                                        # (N, 2w, H/4, W/4)
        d8 = self.down8(d4)                                        # (N, 4w, H/8, W/8)
        u4 = F.relu(self.up8(d8)) + d4                             # transposed conv up to H/4
        u2 = F.relu(self.up4(u4)) + e2                             # and to H/2
        u1 = F.max_unpool2d(self.dec2(u2), idx, 2)                 # bed of nails up to H
        coarse = F.interpolate(self.skip(d8), scale_factor=8, mode="nearest")  # nearest up to H
        return self.classifier(self.dec1(u1 + coarse))
