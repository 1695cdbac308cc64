"""Data sets: Digits (bundled), MNIST (IDX files), CIFAR-10 (python batches), synthetic sets.

The file-based ones read small files that the tests write in the real formats.
"""
import gzip
import os
import pickle
import struct

import numpy as np
import pytest

import pydl
from pydl.data import CIFAR10, MNIST, DataLoader, Digits, FakeData, FashionMNIST, Shapes, Spirals, transforms as T
from pydl.data.datasets import (SHAPE_CLASSES, Blobs, dataset_info, get_dataset, list_datasets, make_blobs,
                                make_shapes, make_spirals, read_idx)


# ------------------------------------------------------------------ Digits
@pytest.fixture(scope="module")
def sklearn():
    return pytest.importorskip("sklearn")


def test_digits_splits_are_fixed_disjoint_and_stratified(sklearn):
    from pydl.data.datasets.digits import _raw_digits, _split

    images, labels = _raw_digits()
    assert images.shape == (1797, 8, 8) and images.max() == 16 and images.min() == 0
    train_idx, test_idx = _split(labels, 0.2, 0)
    assert len(np.intersect1d(train_idx, test_idx)) == 0 and len(train_idx) + len(test_idx) == 1797
    assert np.array_equal(_split(labels, 0.2, 0)[1], test_idx)
    counts = np.bincount(labels[test_idx], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37          # ~20 % of each class of ~180
    tr, te = Digits(train=True), Digits(train=False)
    assert (len(tr), len(te)) == (1438, 359)


def test_digits_matches_scikit_learn(sklearn):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    from pydl.data.datasets.digits import _raw_digits

    images, labels = _raw_digits()
    np.testing.assert_array_equal(images.reshape(-1, 64), bunch.data.astype(np.uint8))
    np.testing.assert_array_equal(labels, bunch.target)


def test_digits_28_is_the_bilinear_resize_of_the_8x8(sklearn):
    from pydl import kernels

    small = Digits(train=False, size=8).arrays()[0]
    big = Digits(train=False, size=28).arrays()[0]
    assert small.shape == (359, 1, 8, 8) and big.shape == (359, 1, 28, 28)
    assert small.dtype == big.dtype == np.float32
    ref = kernels.get("upsample_bilinear2d_forward", "reference")(small, (28, 28), align_corners=False)
    np.testing.assert_allclose(big, np.clip(ref, 0, 1), atol=1e-6)
    image, label = Digits(train=False, size=28)[3]
    assert image.shape == (1, 28, 28) and 0 <= image.min() and image.max() <= 1 and isinstance(label, int)


def test_digits_bad_size(sklearn):
    with pytest.raises(ValueError, match="size must be an integer >= 8"):
        Digits(size=4)


def test_digits_batched_transform_runs_once_per_batch(sklearn):
    calls = []

    class Count(T.Lambda):
        def __call__(self, x):
            calls.append(x.shape)
            return x

    ds = Digits(train=False, transform=Count(lambda x: x))
    x, y = next(iter(DataLoader(ds, batch_size=32)))
    assert x.shape == (32, 1, 8, 8) and calls == [(32, 1, 8, 8)]


# ------------------------------------------------------------------ MNIST
def _idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write(path, data, gz=False):
    if gz:
        path = str(path) + ".gz"
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


@pytest.fixture
def mnist_root(tmp_path, rng):
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12, dtype=np.uint8)
    test_images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    test_labels = np.arange(5, dtype=np.uint8)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(images), gz=True)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labels), gz=True)
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(test_images))
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(test_labels))
    return tmp_path, images, labels, test_images, test_labels


def test_mnist_reads_gzipped_and_raw_idx(mnist_root):
    root, images, labels, test_images, test_labels = mnist_root
    train = MNIST(root)
    assert len(train) == 12
    x, y = train[3]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == labels[3]
    np.testing.assert_allclose(x[0], images[3] / 255.0, rtol=1e-6)
    test = MNIST(str(root), train=False)
    assert [test[i][1] for i in range(5)] == test_labels.tolist()
    assert len(FashionMNIST(root, train=False)) == 5


def test_mnist_torchvision_layout(tmp_path, mnist_root):
    root = mnist_root[0]
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in os.listdir(root):
        if "idx" in name:
            (raw / name).write_bytes((root / name).read_bytes())
    assert len(MNIST(tmp_path / "tv")) == 12


def test_read_idx_other_types(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = _write(tmp_path / "f.idx", _idx_bytes(arr, code=0x0D))
    out = read_idx(path)
    assert out.dtype == np.float32 and np.array_equal(out, arr)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:100], "has 100 bytes but its header"),
    (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
    (lambda b: b[:6], "truncated"),
    (lambda b: b"", "empty file"),
])
def test_mnist_malformed_files_name_the_file(mnist_root, damage, message):
    root = mnist_root[0]
    path = root / "t10k-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message) as e:
        MNIST(root, train=False)
    assert "t10k-images-idx3-ubyte" in str(e.value)


def test_mnist_missing_and_inconsistent_files(mnist_root, rng):
    root = mnist_root[0]
    with pytest.raises(ValueError, match="download=True is not supported"):
        MNIST(root, download=True)
    _write(root / "t10k-labels-idx1-ubyte", _idx_bytes(np.arange(4, dtype=np.uint8)))
    with pytest.raises(ValueError, match="has 5 images but .* has 4 labels"):
        MNIST(root, train=False)
    _write(root / "t10k-labels-idx1-ubyte", _idx_bytes(np.array([0, 1, 2, 3, 12], dtype=np.uint8)))
    with pytest.raises(ValueError, match="label 12"):
        MNIST(root, train=False)
    _write(root / "t10k-images-idx3-ubyte", _idx_bytes(np.zeros((5, 28), np.uint8)))
    with pytest.raises(ValueError, match=r"should hold uint8 images \(N, H, W\)"):
        MNIST(root, train=False)
    os.remove(root / "t10k-images-idx3-ubyte")
    with pytest.raises(FileNotFoundError, match="cannot find t10k-images-idx3-ubyte"):
        MNIST(root, train=False)


# ------------------------------------------------------------------ CIFAR-10
def _cifar_batch(path, n, rng, protocol=2, labels=None):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = list(rng.integers(0, 10, size=n).tolist()) if labels is None else labels
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch", b"labels": labels, b"data": data,
                     b"filenames": [b"x.png"] * n}, f, protocol=protocol)
    return data, labels


@pytest.fixture
def cifar_root(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    parts = [_cifar_batch(folder / f"data_batch_{i}", 3, rng, protocol=2 if i % 2 else 5) for i in range(1, 6)]
    test = _cifar_batch(folder / "test_batch", 4, rng)
    return tmp_path, parts, test


def test_cifar10_reads_python_batches(cifar_root):
    root, parts, (test_data, test_labels) = cifar_root
    train = CIFAR10(root)
    assert len(train) == 15
    x, y = train[4]                                   # batch 2, row 1
    data, labels = parts[1]
    assert x.shape == (3, 32, 32) and y == labels[1]
    np.testing.assert_allclose(x, data[1].reshape(3, 32, 32) / 255.0, rtol=1e-6)
    test = CIFAR10(root / "cifar-10-batches-py", train=False)    # the folder itself also works
    assert [test[i][1] for i in range(4)] == list(test_labels)
    assert CIFAR10.classes[0] == "airplane"


def test_cifar10_refuses_pickles_that_would_run_code(cifar_root):
    root = cifar_root[0]
    marker = root / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(ValueError, match="refusing"):
        CIFAR10(root, train=False)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"not a pickle at all", "test_batch"),
    (pickle.dumps([1, 2, 3]), "should hold a dict"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"\(N, 3072\)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "'labels' should be 2 integers"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "labels should lie in 0..9"),
    (pickle.dumps({b"pixels": 1}), "keys 'data' and 'labels'"),
])
def test_cifar10_malformed_batches(cifar_root, content, message):
    root = cifar_root[0]
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(ValueError, match=message) as e:
        CIFAR10(root, train=False)
    assert "test_batch" in str(e.value)


def test_cifar10_missing_files(cifar_root):
    root = cifar_root[0]
    os.remove(root / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="missing data_batch_3"):
        CIFAR10(root)
    with pytest.raises(ValueError, match="download"):
        CIFAR10(root, download=True)


# ------------------------------------------------------------------ synthetic
def test_spirals_and_blobs():
    x, y = make_spirals(50, 3, seed=1)
    assert x.shape == (150, 2) and x.dtype == np.float32 and np.bincount(y).tolist() == [50, 50, 50]
    assert np.abs(x).max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(make_spirals(50, 3, seed=1)[0], x)
    xb, yb = make_blobs(90, 3, 4, seed=2)
    assert xb.shape == (90, 4) and np.bincount(yb).tolist() == [30, 30, 30]
    train, test = Blobs(train=True), Blobs(train=False)
    assert len(train) == len(test) == 300
    # the two splits share the centres: class means agree
    for c in range(3):
        a = train.tensors[0][train.tensors[1] == c].mean(0)
        b = test.tensors[0][test.tensors[1] == c].mean(0)
        assert np.abs(a - b).max() < 0.5
    assert len(Spirals(train=False)) == 300


def test_shapes_are_distinguishable_images():
    x, y = make_shapes(200, size=20, seed=0)
    assert x.shape == (200, 1, 20, 20) and x.min() >= 0 and x.max() <= 1
    assert set(y.tolist()) == set(range(len(SHAPE_CLASSES)))
    ink = (x > 0.5).reshape(200, -1).mean(1)
    assert ink.min() > 0.02                                   # every image shows a shape
    ds = Shapes(train=False, n_samples=10)
    assert len(ds) == 10 and ds[0][0].shape == (1, 28, 28)
    with pytest.raises(ValueError, match="at least 8"):
        make_shapes(4, size=5)


def test_fakedata_depends_only_on_the_index():
    a = FakeData(size=6, image_size=(3, 8, 8), num_classes=4)
    b = FakeData(size=3, image_size=(3, 8, 8), num_classes=4, random_offset=3)
    np.testing.assert_array_equal(a[4][0], b[1][0])
    assert a[4][1] == b[1][1] and 0 <= a[0][1] < 4
    with pytest.raises(ValueError, match="image_size"):
        FakeData(image_size=(8, 8))


# ------------------------------------------------------------------ registry
def test_registry_lists_and_builds(mnist_root):
    names = list_datasets()
    assert {"digits", "digits28", "mnist", "cifar10", "spirals", "blobs", "shapes", "fakedata"} <= set(names)
    assert dataset_info("digits-28").name == "digits28"
    assert dataset_info("mnist").needs_root and dataset_info("mnist").input_shape == (1, 28, 28)
    assert len(get_dataset("mnist", train=False, root=mnist_root[0])) == 5
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; known: blobs, cifar10"):
        get_dataset("imagenet")
    with pytest.raises(ValueError, match="read from local files"):
        get_dataset("cifar10")
    assert pydl.data.get_dataset("fakedata", train=False)[0][0].shape == (3, 32, 32)
