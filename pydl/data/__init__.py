"""pydl.data: data sets, batching and augmentation (PyTorch's ``torch.utils.data`` and
torchvision's data sets and transforms, NumPy underneath).

=====================  ==================================================================
``Dataset``            map-style base class (``__getitem__``, ``__len__``)
``TensorDataset``      rows of arrays / tensors sharing a first dimension
``Subset``             some indices of a data set; ``random_split`` makes seeded ones
``DataLoader``         batches, shuffling (seeded), ``drop_last``, ``collate_fn``, worker threads
``datasets``           Digits (bundled), MNIST, CIFAR10 (local files), synthetic sets
``transforms``         crops, flips, colour jitter, erasing, mixup / cutmix, TTA, normalisation
``preprocessing``      per-channel statistics, zero-centring, PCA and ZCA whitening
=====================  ==================================================================

>>> import pydl
>>> from pydl.data import DataLoader, TensorDataset
>>> _ = pydl.manual_seed(0)
>>> ds = TensorDataset(pydl.randn(10, 3), pydl.arange(10))
>>> [tuple(x.shape) for x, y in DataLoader(ds, batch_size=4, shuffle=True)]
[(4, 3), (4, 3), (2, 3)]
"""
from . import datasets, preprocessing, transforms
from .dataloader import BatchSampler, DataLoader, RandomSampler, SequentialSampler, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .datasets import CIFAR10, MNIST, Blobs, Digits, FakeData, FashionMNIST, Shapes, Spirals, get_dataset, \
    list_datasets

__all__ = ["BatchSampler", "Blobs", "CIFAR10", "ConcatDataset", "DataLoader", "Dataset", "Digits", "FakeData",
           "FashionMNIST", "MNIST", "RandomSampler", "SequentialSampler", "Shapes", "Spirals", "Subset",
           "TensorDataset", "datasets", "default_collate", "get_dataset", "list_datasets", "preprocessing",
           "random_split", "transforms"]
