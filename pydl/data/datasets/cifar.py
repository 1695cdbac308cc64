"""CIFAR-10 from its standard "python version" batches (read locally; pydl never downloads).

The folder ``cifar-10-batches-py`` holds ``data_batch_1`` ... ``data_batch_5`` (10,000 training
images each), ``test_batch`` and ``batches.meta``. Each batch is a pickled dict with
``b"data"``, a (10000, 3072) uint8 array (1024 red, then 1024 green, then 1024 blue values
of a 32x32 image, row by row), and ``b"labels"``, a list of ints 0..9.

Safety: pickle can run arbitrary code while loading. pydl reads these files with a
restricted unpickler that only rebuilds plain containers and NumPy arrays (it refuses every
other class or function a file names), and only from the standard batch file names --
still, load CIFAR batches only from a source you trust.
"""
import io
import os
import pickle

import numpy as np

from ._base import ImageDataset

__all__ = ["CIFAR10", "load_cifar_batch"]

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]

# What a CIFAR batch may name: NumPy's array and dtype reconstructors (numpy 1.x and 2.x paths).
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR10: {self._path} asks to load {module}.{name}, which a CIFAR batch "
                                     f"never needs; refusing to load it (pickle could run code)")


def load_cifar_batch(path):
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from one python-version batch file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"CIFAR10: file not found: {path}") from None
    try:
        entry = _RestrictedUnpickler(io.BytesIO(raw), path).load()
    except pickle.UnpicklingError as e:
        raise ValueError(str(e) if "refusing" in str(e) else f"CIFAR10: {path} is not a valid pickle: {e}") from None
    except (EOFError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise ValueError(f"CIFAR10: {path} is not a valid CIFAR-10 batch (truncated or corrupted pickle: "
                         f"{type(e).__name__}: {e})") from None
    if not isinstance(entry, dict):
        raise ValueError(f"CIFAR10: {path} should hold a dict with b'data' and b'labels', got {type(entry).__name__}")
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or ("labels" not in entry and "fine_labels" not in entry):
        raise ValueError(f"CIFAR10: {path} should hold keys 'data' and 'labels', got {sorted(map(str, entry))}")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"CIFAR10: {path}: 'data' should be a uint8 array (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"CIFAR10: {path}: 'labels' should be {data.shape[0]} integers, got {labels.dtype} "
                         f"{labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"CIFAR10: {path}: labels should lie in 0..9, got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


class CIFAR10(ImageDataset):
    """CIFAR-10 from ``root/cifar-10-batches-py`` (or ``root`` itself holding the batch files).
    ``train=True``: the five data batches (50,000 images), else the test batch (10,000).
    Samples are ``(image (3, 32, 32) float32 in [0, 1], label int)``.

    ``download=True`` is refused: pydl does no network access at run time.
    """

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        if download:
            raise ValueError(f"CIFAR10: download=True is not supported (pydl does no network access); "
                             f"put the cifar-10-batches-py folder in {root!r}")
        self.root, self.train = os.fspath(root), bool(train)
        folder = os.path.join(self.root, FOLDER)
        if not os.path.isdir(folder):
            folder = self.root
        names = TRAIN_FILES if self.train else TEST_FILES
        missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
        if missing:
            raise FileNotFoundError(
                f"CIFAR10: missing {', '.join(missing)} in {folder!r}; expected the python version of CIFAR-10 "
                f"({', '.join(TRAIN_FILES + TEST_FILES)}) in {os.path.join(self.root, FOLDER)!r}. "
                f"pydl does not download data")
        parts = [load_cifar_batch(os.path.join(folder, n)) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        super().__init__(images, labels, transform, target_transform)
