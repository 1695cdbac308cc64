"""DataLoader: batches of samples from a data set, shuffled, collated into Tensors.

The seeds' mini-batch loop: each epoch visits every sample once, in a fresh random order
when ``shuffle=True``, ``batch_size`` at a time. The order comes from a NumPy generator
(pydl's global one unless the loader is given its own), so ``pydl.manual_seed`` makes it
reproducible. ``num_workers > 0`` loads the next batches in that many threads while the
model trains on the current one (NumPy releases the GIL in its array code); every batch
draws its augmentations from its own generator (see :mod:`pydl.data._random`), so the
batches are the same whatever the number of workers.
"""
import collections.abc
import concurrent.futures
import numbers

import numpy as np

from ..tensor import Tensor
from . import _random

__all__ = ["BatchSampler", "DataLoader", "RandomSampler", "SequentialSampler", "default_collate"]


class SequentialSampler:
    """Indices 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler:
    """A random permutation of the indices, drawn anew on each pass, from ``generator``
    (a ``numpy.random.Generator``) or pydl's global generator when it is None."""

    def __init__(self, data_source, generator=None):
        self.data_source = data_source
        self.generator = generator

    def __iter__(self):
        gen = _random.as_generator(self.generator, "RandomSampler")
        return iter(gen.permutation(len(self.data_source)).tolist())

    def __len__(self):
        return len(self.data_source)


class BatchSampler:
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter
    unless ``drop_last``).

    >>> list(BatchSampler(range(5), 2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def default_collate(batch):
    """Stack a list of samples into a batch: arrays and Tensors -> one Tensor with a new first
    dimension; NumPy scalars -> a Tensor of their dtype; Python ints -> int64, floats ->
    float64 (PyTorch's rule); tuples, lists and dicts are collated field by field; strings
    stay a list.

    >>> x, y = default_collate([(np.zeros(2, np.float32), 1), (np.ones(2, np.float32), 0)])
    >>> x.shape, y.tolist()
    ((2, 2), [1, 0])
    """
    if not batch:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._make(np.stack([_check_same(b, Tensor, elem).data for b in batch]))
    if isinstance(elem, np.ndarray):
        return Tensor._make(np.stack([_check_same(b, np.ndarray, elem) for b in batch]))
    if isinstance(elem, np.generic) and elem.dtype.kind in "biuf":
        return Tensor._make(np.asarray(batch, dtype=elem.dtype))
    if isinstance(elem, (bool, np.bool_)):
        return Tensor._make(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, (numbers.Integral, np.integer)):
        return Tensor._make(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, (numbers.Real, np.floating)):
        return Tensor._make(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)] if isinstance(elem, list) else \
            tuple(default_collate(list(s)) for s in zip(*batch))
    raise TypeError(f"default_collate: batch must contain Tensors, NumPy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def _check_same(b, kind, first):
    if not isinstance(b, kind) or b.shape != first.shape:
        got = b.shape if isinstance(b, (Tensor, np.ndarray)) else type(b).__name__
        raise RuntimeError(f"default_collate: samples of one batch must have equal shapes, got {tuple(first.shape)} "
                           f"and {got}")
    return b


class DataLoader:
    """Iterate over ``dataset`` in batches.

    dataset: a map-style data set (``__getitem__``, ``__len__``).
    batch_size: samples per batch (None: no batching, the samples themselves).
    shuffle: visit the samples in a new random order each epoch.
    sampler / batch_sampler: give the order (or the batches) yourself instead.
    num_workers: 0 loads in the calling thread; n > 0 uses n threads, ``prefetch_factor``
        batches ahead each.
    collate_fn: list of samples -> batch (default :func:`default_collate`).
    drop_last: drop the last batch when it is smaller than ``batch_size``.
    generator: a ``numpy.random.Generator`` for the order and the augmentations (default:
        pydl's global generator, looked up when each epoch starts).

    >>> from pydl.data import TensorDataset
    >>> loader = DataLoader(TensorDataset(np.arange(5.0)), batch_size=2)
    >>> [b[0].tolist() for b in loader]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 generator=None, *, prefetch_factor=2, persistent_workers=False):
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative integer, got {num_workers!r}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator or None, "
                            f"got {type(generator).__name__}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must define __getitem__ and __len__, got {type(dataset).__name__}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        if prefetch_factor is None or int(prefetch_factor) < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be a positive integer, got {prefetch_factor!r}")
        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.prefetch_factor = int(prefetch_factor)
        self.pin_memory = pin_memory  # nothing to pin on the CPU; kept for PyTorch compatibility
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.drop_last = bool(drop_last)
        if sampler is None:
            sampler = RandomSampler(dataset, generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else (lambda sample: sample))

    def __len__(self):
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    def _index_stream(self):
        return iter(self.batch_sampler) if self.batch_sampler is not None else ([i] for i in self.sampler)

    def _fetch(self, indices, base_seed, number):
        with _random.using_generator(_random.batch_generator(base_seed, number)):
            if self.batch_sampler is None:
                return self.collate_fn(self.dataset[indices[0]])
            getitems = getattr(self.dataset, "__getitems__", None)
            samples = getitems(indices) if getitems is not None else [self.dataset[i] for i in indices]
            return self.collate_fn(samples)

    def __iter__(self):
        gen = _random.as_generator(self.generator, "DataLoader")
        # The order is drawn first (as PyTorch's RandomSampler does), then the seed of the
        # augmentations: one draw each per epoch from the generator, whatever the workers.
        batches = list(self._index_stream())
        base_seed = int(gen.integers(0, 2**63 - 1))
        if self.num_workers == 0:
            return (self._fetch(b, base_seed, k) for k, b in enumerate(batches))
        return self._threaded(batches, base_seed)

    def _threaded(self, batches, base_seed):
        pool = concurrent.futures.ThreadPoolExecutor(self.num_workers, thread_name_prefix="pydl-data",
                                                     initializer=self._init_worker)
        pending = collections.deque()
        try:
            batches = enumerate(batches)
            ahead = self.num_workers * self.prefetch_factor
            for k, b in batches:
                pending.append(pool.submit(self._fetch, b, base_seed, k))
                if len(pending) >= ahead:
                    break
            while pending:
                batch = pending.popleft().result(timeout=self.timeout or None)
                nxt = next(batches, None)
                if nxt is not None:
                    pending.append(pool.submit(self._fetch, nxt[1], base_seed, nxt[0]))
                yield batch
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True)

    def _init_worker(self):
        if self.worker_init_fn is not None:
            import threading

            self.worker_init_fn(int(threading.current_thread().name.rsplit("_", 1)[-1]))
