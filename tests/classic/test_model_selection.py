"""k-fold indices, cross_validate, train_test_split."""
import numpy as np
import pytest

from pydl.classic import KNearestNeighbors, cross_validate, kfold_indices, train_test_split


def test_kfold_partitions_the_samples():
    folds = kfold_indices(23, 5, seed=1)
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(23))
    assert sorted(len(v) for _, v in folds) == [4, 4, 5, 5, 5]
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 23
    assert [v.tolist() for _, v in kfold_indices(4, 2, shuffle=False)] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="between 2"):
        kfold_indices(5, 1)


def test_cross_validate_calls_fit_and_score_per_fold():
    calls = []

    class Model:
        def fit(self, X, y):
            calls.append(len(X))

        def score(self, X, y):
            return float(len(X))

    r = cross_validate(Model, np.zeros((10, 2)), np.zeros(10, np.int64), k=5)
    assert calls == [8] * 5 and r["scores"] == [2.0] * 5 and r["mean"] == 2.0 and r["std"] == 0.0
    r = cross_validate(lambda: KNearestNeighbors(1), np.arange(12.0)[:, None], np.arange(12) // 6, k=3,
                       scoring=lambda m, X, y: (m.predict(X) == y).mean())
    assert r["mean"] > 0.8
    with pytest.raises(ValueError, match="labels"):
        cross_validate(Model, np.zeros((10, 2)), np.zeros(9))


def test_train_test_split():
    a, b = np.arange(10), np.arange(10) * 10
    a_tr, a_te, b_tr, b_te = train_test_split(a, b, test_size=0.3, seed=2)
    assert len(a_te) == 3 and np.array_equal(b_te, a_te * 10) and sorted(np.concatenate([a_tr, a_te])) == list(a)
    with pytest.raises(ValueError, match="same first dimension"):
        train_test_split(a, b[:5])


def test_docstrings():
    import doctest
    import importlib

    import pydl

    for name in ["pydl.classic.knn", "pydl.classic.linear", "pydl.classic.model_selection", "pydl.classic"]:
        if name == "pydl.classic":
            pytest.importorskip("sklearn")
        result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                                 optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, name
