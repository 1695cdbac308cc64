"""Data sets that need no network: bundled, read from standard local files, or synthetic.

===============  ==========================================  ======================
name             what                                        sample
===============  ==========================================  ======================
``digits``       scikit-learn's 1,797 digits (8x8)           (1, 8, 8), 10 classes
``digits28``     the same resized to 28x28 (LeNet-5's size)  (1, 28, 28), 10 classes
``mnist``        MNIST IDX files in ``root``                 (1, 28, 28), 10 classes
``fashionmnist`` Fashion-MNIST IDX files in ``root``         (1, 28, 28), 10 classes
``cifar10``      CIFAR-10 python batches in ``root``         (3, 32, 32), 10 classes
``shapes``       synthetic circles, squares, triangles, ...  (1, 28, 28), 4 classes
``spirals``      the seeds' 3 interleaved 2-D spirals        (2,), 3 classes
``blobs``        3 Gaussian clusters in 2-D                  (2,), 3 classes
``fakedata``     random images, random labels                (3, 32, 32), 10 classes
===============  ==========================================  ======================

:func:`get_dataset` builds one by name (what ``pydl train --data NAME`` uses);
:func:`list_datasets` lists the names.
"""
from collections import namedtuple

from .cifar import CIFAR10, load_cifar_batch
from .digits import Digits, load_digits_arrays
from .mnist import MNIST, FashionMNIST, read_idx
from .synthetic import (SHAPE_CLASSES, Blobs, FakeData, Shapes, Spirals, make_blobs, make_shapes, make_spirals)

__all__ = ["Blobs", "CIFAR10", "DatasetInfo", "Digits", "FakeData", "FashionMNIST", "MNIST", "SHAPE_CLASSES",
           "Shapes", "Spirals", "dataset_info", "get_dataset", "list_datasets", "load_cifar_batch",
           "load_digits_arrays", "make_blobs", "make_shapes", "make_spirals", "read_idx"]

DatasetInfo = namedtuple("DatasetInfo", ["name", "build", "input_shape", "num_classes", "needs_root",
                                         "description"])

_REGISTRY = {}


def _register(name, build, input_shape, num_classes, needs_root, description, aliases=()):
    info = DatasetInfo(name, build, tuple(input_shape), num_classes, needs_root, description)
    for key in (name,) + tuple(aliases):
        _REGISTRY[key] = info


_register("digits", lambda train, root, tf: Digits(train, 8, tf), (1, 8, 8), 10, False,
          "scikit-learn's handwritten digits, 8x8 (1,438 train / 359 test)")
_register("digits28", lambda train, root, tf: Digits(train, 28, tf), (1, 28, 28), 10, False,
          "the digits resized to 28x28 for LeNet-5", aliases=("digits-28",))
_register("mnist", lambda train, root, tf: MNIST(root, train, tf), (1, 28, 28), 10, True,
          "MNIST from the IDX files in --data-root")
_register("fashionmnist", lambda train, root, tf: FashionMNIST(root, train, tf), (1, 28, 28), 10, True,
          "Fashion-MNIST from the IDX files in --data-root", aliases=("fashion-mnist",))
_register("cifar10", lambda train, root, tf: CIFAR10(root, train, tf), (3, 32, 32), 10, True,
          "CIFAR-10 from the python batches in --data-root", aliases=("cifar-10",))
_register("shapes", lambda train, root, tf: Shapes(train, 2000 if train else 500, transform=tf), (1, 28, 28), 4,
          False, "synthetic shapes (circle, square, triangle, cross), 2,000 train / 500 test")
_register("spirals", lambda train, root, tf: Spirals(train), (2,), 3, False,
          "3 interleaved spirals in 2-D, 300 points per split")
_register("blobs", lambda train, root, tf: Blobs(train), (2,), 3, False,
          "3 Gaussian clusters in 2-D, 300 points per split")
_register("fakedata", lambda train, root, tf: FakeData(1000 if train else 200, (3, 32, 32), 10, tf,
                                                       random_offset=0 if train else 10**6),
          (3, 32, 32), 10, False, "random 3x32x32 images with random labels (plumbing and timing)",
          aliases=("fake",))


def list_datasets():
    """The names :func:`get_dataset` knows (without aliases), sorted."""
    return sorted({info.name for info in _REGISTRY.values()})


def dataset_info(name):
    """The :class:`DatasetInfo` of ``name``: input shape, number of classes, whether it needs a root."""
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}")
    return _REGISTRY[key]


def get_dataset(name, train=True, root=None, transform=None):
    """Build the data set called ``name`` (see the table above); ``root`` is the folder for
    the ones read from files.

    >>> len(get_dataset("spirals"))
    300
    """
    info = dataset_info(name)
    if info.needs_root and root is None:
        raise ValueError(f"data set {info.name!r} is read from local files: give the folder that holds them "
                         f"(root=..., or --data-root on the command line)")
    return info.build(bool(train), root, transform)
