"""Dataset, TensorDataset, Subset, random_split, ConcatDataset, DataLoader, default_collate."""
import doctest
import importlib

import numpy as np
import pytest

import pydl
from pydl.data import (ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
                       transforms as T)
from pydl.data.datasets import Shapes


# ------------------------------------------------------------------ data sets
def test_tensor_dataset_rows_of_tensors_and_arrays():
    x = pydl.arange(12.0).reshape(6, 2)
    y = np.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    assert isinstance(xi, pydl.Tensor) and xi.tolist() == [8.0, 9.0]
    assert yi == 4
    assert ds[-1][1] == 5


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(TypeError, match="argument 1"):
        TensorDataset(np.zeros(3), [1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(IndexError, match="out of range"):
        TensorDataset(np.zeros(3))[3]


def test_subset_and_concat():
    ds = TensorDataset(np.arange(10))
    sub = Subset(ds, [9, 2, 5])
    assert [sub[i][0] for i in range(3)] == [9, 2, 5]
    both = ConcatDataset([sub, ds])
    assert len(both) == 13 and both[3][0] == 0 and both[12][0] == 9
    assert len(sub + ds) == 13
    with pytest.raises(IndexError):
        Subset(ds, [10])


def test_random_split_lengths_fractions_and_seed():
    ds = TensorDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], generator=0)
    assert sorted(a.indices + b.indices) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    assert a.indices == a2.indices
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(TensorDataset(np.arange(11)), [0.5, 0.5], generator=1)
    assert [len(p) for p in parts] == [6, 5]
    pydl.manual_seed(3)
    c = random_split(ds, [5, 5])[0].indices
    pydl.manual_seed(3)
    assert random_split(ds, [5, 5])[0].indices == c
    with pytest.raises(ValueError, match="does not equal"):
        random_split(ds, [5, 6])
    with pytest.raises(TypeError, match="generator"):
        random_split(ds, [5, 5], generator="seed")


def test_custom_dataset_without_getitems():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.float32(i), i * i

    batches = list(DataLoader(Squares(), batch_size=2))
    assert [b[1].tolist() for b in batches] == [[0, 1], [4, 9], [16]]


# ------------------------------------------------------------------ the loader
def test_batches_cover_the_data_once_in_order():
    ds = TensorDataset(np.arange(10.0, dtype=np.float32), np.arange(10))
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == pydl.float32 and batches[0][1].dtype == pydl.int64
    assert len(DataLoader(ds, batch_size=4)) == 3
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert [len(b[1]) for b in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]


def test_shuffle_is_a_permutation_reproducible_with_manual_seed():
    ds = TensorDataset(np.arange(50))
    loader = DataLoader(ds, batch_size=8, shuffle=True)
    pydl.manual_seed(0)
    first = np.concatenate([b[0].numpy() for b in loader])
    second = np.concatenate([b[0].numpy() for b in loader])      # next epoch: another order
    assert sorted(first.tolist()) == list(range(50))
    assert first.tolist() != second.tolist()
    pydl.manual_seed(0)
    again = np.concatenate([b[0].numpy() for b in loader])
    assert first.tolist() == again.tolist()


def test_own_generator_does_not_touch_the_global_one():
    ds = TensorDataset(np.arange(20))
    g = np.random.default_rng(5)
    pydl.manual_seed(1)
    before = pydl.random.default_generator().bit_generator.state
    order = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=g)]
    assert pydl.random.default_generator().bit_generator.state == before
    order2 = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=np.random.default_rng(5))]
    assert order == order2


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_threads_give_the_same_batches_and_augmentations(workers):
    ds = Shapes(n_samples=100, size=16, transform=T.Compose([T.RandomCrop(16, padding=2), T.RandomErasing(p=0.5)]))

    def epoch(num_workers):
        pydl.manual_seed(7)
        return [(x.numpy().copy(), y.numpy().copy())
                for x, y in DataLoader(ds, batch_size=16, shuffle=True, num_workers=num_workers, prefetch_factor=1)]

    ref, got = epoch(0), epoch(workers)
    assert len(ref) == len(got) == 7
    for (xr, yr), (xg, yg) in zip(ref, got):
        np.testing.assert_array_equal(yr, yg)
        np.testing.assert_array_equal(xr, xg)


def test_worker_errors_reach_the_caller():
    class Broken(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            if i == 5:
                raise KeyError("sample 5 is broken")
            return np.float32(i)

    with pytest.raises(KeyError, match="sample 5"):
        list(DataLoader(Broken(), batch_size=2, num_workers=2))


def test_collate_fn_and_no_batching():
    ds = TensorDataset(np.arange(6))
    sums = [b for b in DataLoader(ds, batch_size=3, collate_fn=lambda samples: sum(s[0] for s in samples))]
    assert sums == [3, 12]
    unbatched = list(DataLoader(ds, batch_size=None))
    assert len(unbatched) == 6 and unbatched[2] == (2,)


def test_loader_argument_errors():
    ds = TensorDataset(np.arange(6))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(TypeError, match="generator"):
        DataLoader(ds, generator=3)
    with pytest.raises(TypeError, match="__getitem__"):
        DataLoader(object())
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=range(6), shuffle=True)


def test_default_collate_types():
    batch = default_collate([{"x": np.ones(2, np.float32), "n": 1, "f": 0.5, "s": "a"},
                             {"x": np.zeros(2, np.float32), "n": 2, "f": 1.5, "s": "b"}])
    assert batch["x"].shape == (2, 2) and batch["n"].dtype == pydl.int64 and batch["f"].dtype == pydl.float64
    assert batch["s"] == ["a", "b"]
    t = default_collate([pydl.ones(3), pydl.zeros(3)])
    assert isinstance(t, pydl.Tensor) and t.shape == (2, 3)
    with pytest.raises(RuntimeError, match="equal shapes"):
        default_collate([np.ones(2), np.ones(3)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object()])


# ------------------------------------------------------------------ docstrings
@pytest.mark.parametrize("name", ["pydl.data", "pydl.data.dataset", "pydl.data.dataloader", "pydl.data._resize",
                                  "pydl.data.transforms", "pydl.data.preprocessing", "pydl.data.datasets",
                                  "pydl.data.datasets.digits", "pydl.data.datasets.synthetic"])
def test_docstring_examples(name):
    if name.endswith("digits") or name == "pydl.data.datasets":
        pytest.importorskip("sklearn")
    result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
