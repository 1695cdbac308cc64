"""Pretext tasks as data transforms that make their own labels (lecture 9).

Images are NumPy arrays (C, H, W) (or Tensors, converted); every random choice takes a
``numpy.random.Generator`` so a seeded run repeats. Each function returns the input the
network sees and the target it must predict.
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["Jigsaw", "Rotation", "colorization_pair", "inpainting", "jigsaw", "lab_to_rgb", "relative_patch",
           "rgb_to_lab", "rotate", "rotation_batch", "simclr_augment"]

# relative patch position: the 8 neighbours of the centre cell of a 3x3 grid, row by row
NEIGHBOURS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]


def _image(x, op, ndim=3):
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.ndim != ndim:
        raise ValueError(f"{op}: expected an image of {ndim} dims ({'(C, H, W)' if ndim == 3 else '(N, C, H, W)'}), "
                         f"got shape {arr.shape}")
    return arr


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def rotate(img, k):
    """Rotate (C, H, W) by k * 90 degrees counter-clockwise (k in 0..3: the label)."""
    if int(k) not in (0, 1, 2, 3):
        raise ValueError(f"rotate: k must be 0, 1, 2 or 3 (quarter turns), got {k}")
    return np.rot90(_image(img, "rotate"), int(k), axes=(-2, -1)).copy()


class Rotation:
    """Rotation prediction: ``Rotation()(img) -> (rotated, k)``, k in {0, 1, 2, 3} for
    0 / 90 / 180 / 270 degrees, drawn at random."""

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def __call__(self, img):
        k = int(self.rng.integers(4))
        return rotate(img, k), k


def rotation_batch(x):
    """All four rotations of a batch: (N, C, H, H) -> ((4N, C, H, H), labels (4N,)), the
    rotation index as the label (k-major order)."""
    x = _image(x, "rotation_batch", 4)
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"rotation_batch: images must be square, got {x.shape[2:]}")
    imgs = np.concatenate([np.rot90(x, k, axes=(2, 3)) for k in range(4)])
    return np.ascontiguousarray(imgs), np.repeat(np.arange(4, dtype=np.int64), len(x))


def _cells(img, op):
    C, H, W = img.shape
    if H < 3 or W < 3:
        raise ValueError(f"{op}: the image ({H}x{W}) is too small for a 3x3 grid")
    h, w = H // 3, W // 3
    return [[img[:, r * h:(r + 1) * h, c * w:(c + 1) * w] for c in range(3)] for r in range(3)]


def relative_patch(img, rng=None, label=None):
    """Relative patch location on a 3x3 grid: -> (centre patch, neighbour patch, label in 0..7).

    The label indexes ``NEIGHBOURS`` (top-left, top, top-right, left, right, bottom-left,
    bottom, bottom-right); cells are H // 3 x W // 3 (leftover rows/columns dropped).
    """
    cells = _cells(_image(img, "relative_patch"), "relative_patch")
    label = int(_rng(rng).integers(8)) if label is None else int(label)
    if not 0 <= label < 8:
        raise ValueError(f"relative_patch: label must be in 0..7, got {label}")
    r, c = NEIGHBOURS[label]
    return cells[1][1].copy(), cells[r][c].copy(), label


def permutation_set(num_permutations=100, seed=0):
    """A fixed set of permutations of 9 tiles (the identity first, the rest a seeded sample)."""
    if not 1 <= num_permutations <= 362880:
        raise ValueError(f"permutation_set: num_permutations must be in 1..9!, got {num_permutations}")
    rng = np.random.default_rng(seed)
    perms = {tuple(range(9))}
    while len(perms) < num_permutations:
        perms.add(tuple(rng.permutation(9).tolist()))
    rest = sorted(perms - {tuple(range(9))})
    return np.array([tuple(range(9))] + rest, dtype=np.int64)


def jigsaw(img, index, permutations):
    """Shuffle the 3x3 tiles of (C, H, W) by ``permutations[index]``: -> tiles (9, C, h, w).

    Tile i of the output is the image's tile ``permutations[index][i]`` (row-major); the
    network predicts ``index``.
    """
    cells = _cells(_image(img, "jigsaw"), "jigsaw")
    perms = np.asarray(permutations)
    if not 0 <= index < len(perms):
        raise ValueError(f"jigsaw: index must be in [0, {len(perms)}), got {index}")
    flat = [cells[i // 3][i % 3] for i in range(9)]
    return np.stack([flat[j] for j in perms[index]])


def unjigsaw(tiles, index, permutations):
    """Put jigsaw tiles (9, C, h, w) back in order: -> (C, 3h, 3w)."""
    perm = np.asarray(permutations)[index]
    ordered = [None] * 9
    for i, j in enumerate(perm):
        ordered[j] = tiles[i]
    rows = [np.concatenate(ordered[3 * r:3 * r + 3], axis=2) for r in range(3)]
    return np.concatenate(rows, axis=1)


class Jigsaw:
    """Jigsaw transform: ``Jigsaw()(img) -> (tiles (9, C, h, w), permutation index)``."""

    def __init__(self, num_permutations=100, seed=0):
        self.permutations = permutation_set(num_permutations, seed)
        self.rng = np.random.default_rng(seed + 1)

    def __call__(self, img):
        index = int(self.rng.integers(len(self.permutations)))
        return jigsaw(img, index, self.permutations), index


def inpainting(img, size, rng=None, top=None, left=None, fill=0.0):
    """Mask a ``size`` x ``size`` square: -> (masked image, the hidden patch, mask (H, W) bool).

    The network sees the masked image and predicts the patch (its loss on the mask only).
    """
    img = _image(img, "inpainting")
    C, H, W = img.shape
    if not 1 <= size <= min(H, W):
        raise ValueError(f"inpainting: size must be in [1, {min(H, W)}], got {size}")
    rng = _rng(rng)
    top = int(rng.integers(H - size + 1)) if top is None else int(top)
    left = int(rng.integers(W - size + 1)) if left is None else int(left)
    mask = np.zeros((H, W), dtype=bool)
    mask[top:top + size, left:left + size] = True
    patch = img[:, top:top + size, left:left + size].copy()
    masked = img.copy()
    masked[:, mask] = fill
    return masked, patch, mask


# sRGB (D65) <-> CIE Lab, the standard formulas
_RGB2XYZ = np.array([[0.412453, 0.357580, 0.180423],
                     [0.212671, 0.715160, 0.072169],
                     [0.019334, 0.119193, 0.950227]])
_WHITE = np.array([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb):
    """sRGB in [0, 1], (3, H, W) -> CIE Lab (3, H, W): L in [0, 100], a and b about [-128, 127].

    >>> np.round(rgb_to_lab(np.ones((3, 1, 1)))[:, 0, 0], 2).tolist()
    [100.0, 0.0, 0.0]
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[0] != 3:
        raise ValueError(f"rgb_to_lab: expected 3 channels first (3, H, W), got {rgb.shape}")
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.tensordot(_RGB2XYZ, lin, axes=1) / _WHITE.reshape(3, *([1] * (rgb.ndim - 1)))
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    L = 116 * f[1] - 16
    a = 500 * (f[0] - f[1])
    b = 200 * (f[1] - f[2])
    return np.stack([L, a, b])


def lab_to_rgb(lab):
    """CIE Lab (3, H, W) -> sRGB (3, H, W), clipped to [0, 1] (inverse of :func:`rgb_to_lab`)."""
    lab = np.asarray(lab, dtype=np.float64)
    if lab.shape[0] != 3:
        raise ValueError(f"lab_to_rgb: expected 3 channels first (3, H, W), got {lab.shape}")
    fy = (lab[0] + 16) / 116
    f = np.stack([fy + lab[1] / 500, fy, fy - lab[2] / 200])
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    xyz = xyz * _WHITE.reshape(3, *([1] * (lab.ndim - 1)))
    lin = np.tensordot(np.linalg.inv(_RGB2XYZ), xyz, axes=1)
    lin = np.clip(lin, 0, None)
    rgb = np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)
    return np.clip(rgb, 0.0, 1.0)


def colorization_pair(rgb):
    """Colourisation: RGB (3, H, W) -> (L (1, H, W) the input, ab (2, H, W) the target)."""
    lab = rgb_to_lab(rgb)
    return lab[:1], lab[1:]


def simclr_augment(x, rng=None, scale=(0.6, 1.0), noise=0.05, erase=0.3):
    """A SimCLR view of a batch (N, C, H, W): random resized crop, random gray-level jitter,
    Gaussian noise and (with probability ``erase``) a small erased box; NumPy in and out.
    Call it twice on the same batch for the two views."""
    from ..data._resize import resized_crop
    x = _image(x, "simclr_augment", 4).astype(np.float32)
    rng = _rng(rng)
    N, C, H, W = x.shape
    area = rng.uniform(*scale, size=N)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3), size=N))
    h = np.clip(np.round(H * np.sqrt(area / ratio)), 2, H).astype(np.int64)
    w = np.clip(np.round(W * np.sqrt(area * ratio)), 2, W).astype(np.int64)
    top = (rng.uniform(size=N) * (H - h + 1)).astype(np.int64)
    left = (rng.uniform(size=N) * (W - w + 1)).astype(np.int64)
    out = resized_crop(x, top, left, h, w, (H, W)).astype(np.float32)
    out = out * rng.uniform(0.6, 1.4, size=(N, 1, 1, 1)).astype(np.float32)
    out = out + rng.uniform(-0.2, 0.2, size=(N, 1, 1, 1)).astype(np.float32)
    out = out + noise * rng.standard_normal(out.shape).astype(np.float32)
    for n in np.nonzero(rng.uniform(size=N) < erase)[0]:
        s = max(1, H // 4)
        r, c = rng.integers(H - s + 1), rng.integers(W - s + 1)
        out[n, :, r:r + s, c:c + s] = 0.0
    return out
