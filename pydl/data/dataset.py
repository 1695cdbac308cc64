"""Datasets: anything with ``__getitem__(i) -> sample`` and ``__len__`` (PyTorch's map-style).

``TensorDataset`` wraps arrays or tensors sharing a first dimension; ``Subset`` picks some
indices of another data set; ``random_split`` cuts one into non-overlapping seeded parts
(the seeds' train / validation / test split); ``ConcatDataset`` joins several.

A data set may also define ``__getitems__(indices) -> list of samples`` (as PyTorch 2 does)
to fetch a whole batch at once; the DataLoader uses it when present. pydl's array-backed
data sets use it to run their transform on the whole batch, vectorised.
"""
import bisect
import math

import numpy as np

from ..tensor import Tensor
from ._random import as_generator

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]


class Dataset:
    """Base class of map-style data sets: subclass it and define ``__getitem__`` and ``__len__``.

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return i, i * i
    >>> [Squares()[i] for i in range(3)]
    [(0, 0), (1, 1), (2, 4)]
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


def _check_index(index, n, name):
    i = int(index)
    if i < -n or i >= n:
        raise IndexError(f"{name}: index {index} is out of range for a data set of {n} samples")
    return i + n if i < 0 else i


class TensorDataset(Dataset):
    """Samples are the i-th rows of tensors (or NumPy arrays) that share their first dimension.

    ``dataset[i]`` is ``tuple(t[i] for t in tensors)``: rows of pydl Tensors come back as
    Tensors, rows of arrays as arrays (NumPy scalars for 1-D ones); the DataLoader stacks
    either into Tensor batches of the same dtype.

    >>> ds = TensorDataset(np.arange(6).reshape(3, 2), np.array([0, 1, 0]))
    >>> x, y = ds[1]
    >>> len(ds), x, int(y)
    (3, array([2, 3]), 1)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor or array")
        for i, t in enumerate(tensors):
            if not isinstance(t, (Tensor, np.ndarray)):
                raise TypeError(f"TensorDataset: argument {i} must be a pydl Tensor or a NumPy array, "
                                f"got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is 0-dimensional; samples are taken along dim 0")
        n = tensors[0].shape[0]
        sizes = [t.shape[0] for t in tensors]
        if any(s != n for s in sizes):
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tensors
        self._arrays = [t.data if isinstance(t, Tensor) else t for t in tensors]
        self._is_tensor = [isinstance(t, Tensor) for t in tensors]

    def __len__(self):
        return self.tensors[0].shape[0]

    def _row(self, k, i):
        row = self._arrays[k][i]
        return Tensor._make(np.asarray(row)) if self._is_tensor[k] else row

    def __getitem__(self, index):
        i = _check_index(index, len(self), "TensorDataset")
        return tuple(self._row(k, i) for k in range(len(self._arrays)))

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        cols = [a[idx] for a in self._arrays]
        out = []
        for j in range(len(idx)):
            out.append(tuple(Tensor._make(np.asarray(c[j])) if t else c[j] for c, t in zip(cols, self._is_tensor)))
        return out


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> sub = Subset(TensorDataset(np.arange(5)), [4, 0])
    >>> len(sub), int(sub[0][0])
    (2, 4)
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if i < -n or i >= n]
        if bad:
            raise IndexError(f"Subset: indices {bad[:5]} are out of range for a data set of {n} samples")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[_check_index(index, len(self), "Subset")]]

    def __getitems__(self, indices):
        inner = [self.indices[int(i)] for i in indices]
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(inner)
        return [self.dataset[i] for i in inner]


class ConcatDataset(Dataset):
    """Several data sets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self):
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index):
        i = _check_index(index, len(self), "ConcatDataset")
        k = bisect.bisect_right(self.cumulative_sizes, i)
        start = 0 if k == 0 else int(self.cumulative_sizes[k - 1])
        return self.datasets[k][i - start]


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping ``Subset``\\ s of the given lengths, at random.

    ``lengths`` are sizes summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder after flooring goes round-robin to the first parts, as in PyTorch).
    ``generator``: a ``numpy.random.Generator``, an int seed, or None for pydl's global one.

    >>> train, val = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], generator=0)
    >>> len(train), len(val), sorted(train.indices + val.indices) == list(range(10))
    (8, 2, True)
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1.0 + 1e-9:
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(isinstance(x, float) and not float(x).is_integer() for x in lengths):
        raise ValueError(f"random_split: lengths must be integers summing to {n} or fractions summing to 1, "
                         f"got {lengths}")
    lengths = [int(x) for x in lengths]
    if any(x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of the "
                         f"input dataset ({n})")
    perm = as_generator(generator, "random_split").permutation(n).tolist()
    parts, start = [], 0
    for length in lengths:
        parts.append(Subset(dataset, perm[start:start + length]))
        start += length
    return parts
