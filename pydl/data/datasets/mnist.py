"""MNIST from its standard IDX files (read locally; pydl never downloads).

The IDX format (LeCun's): a 4-byte magic number -- two zero bytes, a type code (0x08:
unsigned byte) and the number of dimensions -- then each dimension as a big-endian 32-bit
integer, then the values in row-major order. ``train-images-idx3-ubyte`` holds
(60000, 28, 28) pixels, ``train-labels-idx1-ubyte`` (60000,) labels; ``t10k-*`` the 10,000
test ones. Each file may be gzipped (``.gz``).
"""
import gzip
import os

import numpy as np

from ._base import ImageDataset

__all__ = ["FashionMNIST", "MNIST", "read_idx"]

_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """The array stored in the IDX file at ``path`` (gzipped or not), native byte order.

    Raises ``ValueError`` naming the file when the header or the size is wrong.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"MNIST: file not found: {path}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"MNIST: {path} looks gzipped but cannot be decompressed: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"MNIST: {path} is not an IDX file: expected a magic number starting with two zero "
                         f"bytes, got {raw[:4].hex() or 'an empty file'}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"MNIST: {path} has unknown IDX type code 0x{code:02x} "
                         f"(expected one of {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"MNIST: {path} is truncated: its header announces {ndim} dimensions "
                         f"but the file has only {len(raw)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"MNIST: {path} has {len(raw)} bytes but its header (shape {shape}, {dtype.name}) "
                         f"needs {expected}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _find(root, stem, op):
    candidates = [os.path.join(d, stem + ext)
                  for d in (root, os.path.join(root, op, "raw"), os.path.join(root, "raw"))
                  for ext in ("", ".gz")]
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise FileNotFoundError(
        f"{op}: cannot find {stem} (or {stem}.gz) in {root!r} (also looked in {op}/raw/ and raw/). "
        f"pydl does not download data: get the four IDX files (train-images-idx3-ubyte, "
        f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) and put them there")


class MNIST(ImageDataset):
    """The MNIST handwritten digits from the IDX files in ``root`` (or ``root/MNIST/raw``,
    torchvision's layout). ``train=True``: 60,000 images, else 10,000. Samples are
    ``(image (1, 28, 28) float32 in [0, 1], label int)``.

    ``download=True`` is refused: pydl does no network access at run time.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    _prefix = {True: "train", False: "t10k"}

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        op = type(self).__name__
        if download:
            raise ValueError(f"{op}: download=True is not supported (pydl does no network access); "
                             f"put the IDX files in {root!r}")
        self.root, self.train = os.fspath(root), bool(train)
        images_path = _find(self.root, f"{self._prefix[self.train]}-images-idx3-ubyte", op)
        labels_path = _find(self.root, f"{self._prefix[self.train]}-labels-idx1-ubyte", op)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{op}: {images_path} should hold uint8 images (N, H, W), got {images.dtype} "
                             f"{images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(f"{op}: {labels_path} should hold uint8 labels (N,), got {labels.dtype} {labels.shape}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{op}: {images_path} has {images.shape[0]} images but {labels_path} has "
                             f"{labels.shape[0]} labels")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{op}: {labels_path} has label {int(labels.max())}; expected 0..{len(self.classes) - 1}")
        super().__init__(images[:, None], labels.astype(np.int64), transform, target_transform)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): the same IDX files and sizes as MNIST, ten kinds of clothing."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
