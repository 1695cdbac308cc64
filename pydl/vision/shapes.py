"""Synthetic "find the shapes" images, generated on the fly: coloured rectangles and discs
on noise, with their boxes, labels and per-pixel masks (for detection and segmentation).

>>> images, targets, masks = make_shapes(2, size=32, seed=0)
>>> images.shape, masks.shape, sorted(targets[0])
((2, 3, 32, 32), (2, 32, 32), ['boxes', 'labels'])
"""
import numpy as np

__all__ = ["CLASSES", "make_shapes"]

CLASSES = ("rectangle", "disc")  # label 0, 1; segmentation masks use 0 for background, 1 + label


def make_shapes(n, size=64, max_shapes=3, min_side=10, max_side=28, noise=0.25, seed=None, rng=None):
    """``n`` images (n, 3, size, size) float32 in about [0, 1], a list of n target dicts
    ({"boxes": (G, 4) xyxy float32, "labels": (G,) int64}) and masks (n, size, size) int64
    (0 background, 1 rectangle, 2 disc). Shapes never overlap (nor touch): every box is
    the full extent of its shape; a shape that finds no free room in 20 tries is left out."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    images = (0.5 + noise * rng.standard_normal((n, 3, size, size))).astype(np.float32)
    masks = np.zeros((n, size, size), np.int64)
    yy, xx = np.mgrid[0:size, 0:size]
    targets = []
    for i in range(n):
        boxes, labels = [], []
        taken = np.zeros((size, size), bool)  # shapes do not overlap: each one is fully visible
        for _ in range(rng.integers(1, max_shapes + 1)):
            label = int(rng.integers(0, 2))
            colour = rng.uniform(0, 1, 3)
            colour[rng.integers(0, 3)] = rng.choice([0.0, 1.0])  # saturated: stands out of the noise
            for _attempt in range(20):
                if label == 0:
                    w, h = rng.integers(min_side, max_side + 1, 2)
                    x0, y0 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
                    inside = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
                    box = [x0, y0, x0 + w, y0 + h]
                else:
                    r = rng.integers(min_side, max_side + 1) / 2
                    cx, cy = rng.uniform(r, size - r, 2)
                    inside = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r
                    ys, xs = np.nonzero(inside)
                    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                x0, y0, x1, y1 = (int(v) for v in box)
                if not taken[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1].any():
                    break
            else:
                continue  # no free room left for this shape
            taken[y0:y1, x0:x1] = True
            images[i][:, inside] = colour[:, None]
            masks[i][inside] = 1 + label
            boxes.append(box)
            labels.append(label)
        targets.append({"boxes": np.array(boxes, np.float32).reshape(-1, 4), "labels": np.array(labels, np.int64)})
    images += (0.05 * rng.standard_normal(images.shape)).astype(np.float32)
    return images, targets, masks
